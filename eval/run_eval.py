"""Evaluate the knowledge base on ``eval/questions.tsv`` and print the metrics.

    python -m eval.run_eval [--questions PATH] [--channel wechat|sms] [--failures] [--json]

The shipped sample catalogue and aliases are imported into a temporary SQLite database and every question is
asked through ``KnowledgeBase.answer`` (the same path as the bot), with ``context_code`` passed as the
conversation's last item for follow-up questions.

Metrics (in-scope = rows whose expected_code is not "none"):
- top-1 / top-3: the expected item is first / among the first three of the bot's ranking (the answered item,
  else the offered choices, followed by the remaining search results);
- answered: the bot answered directly with the expected item; wrong answers: it answered with another item;
- fallback rate: in-scope questions not answered directly (choices or not-found);
- aspect accuracy: the detected aspect equals expected_aspect ("none" = no specific aspect);
- out-of-scope decline rate: out-of-scope questions answered with not-found.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.core.db import Base, create_engine, session_factory
from knowledge_base.importer import ensure_sample_loaded
from knowledge_base.service import KnowledgeBase

QUESTIONS = Path(__file__).resolve().parent / "questions.tsv"


@dataclass(frozen=True)
class Question:
    line: int
    text: str
    code: str | None
    aspect: str | None
    context: str | None


@dataclass
class EvalResult:
    questions: int = 0
    in_scope: int = 0
    out_of_scope: int = 0
    items: int = 0
    top1: float = 0.0
    top3: float = 0.0
    answered: float = 0.0
    wrong_answers: float = 0.0
    fallback_rate: float = 0.0
    aspect_accuracy: float = 0.0
    oos_decline_rate: float = 0.0
    failures: list[str] = field(default_factory=list)


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    out: list[Question] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise ValueError(f"{path}:{lineno}: expected question<TAB>code<TAB>aspect[<TAB>context]")
        text, code, aspect = parts[0].strip(), parts[1].strip(), parts[2].strip()
        context = parts[3].strip() if len(parts) > 3 and parts[3].strip() else None
        out.append(
            Question(
                lineno, text, None if code == "none" else code, None if aspect == "none" else aspect, context
            )
        )
    return out


async def evaluate(kb: KnowledgeBase, questions: list[Question], *, channel: str = "wechat") -> EvalResult:
    res = EvalResult(questions=len(questions))
    top1 = top3 = answered = wrong = fallback = aspect_ok = declined = 0
    items: set[str] = set()
    for q in questions:
        ans = await kb.answer(q.text, channel=channel, last_item_code=q.context)
        hits = await kb.search(q.text, limit=10)
        if ans.kind == "answer" and ans.item_code:
            ranking = [ans.item_code]
        elif ans.kind == "choices":
            ranking = list(ans.choices)
        else:
            ranking = []
        ranking += [h.code for h in hits if h.code not in ranking]
        if q.code is None:
            res.out_of_scope += 1
            if ans.kind == "not_found":
                declined += 1
            else:
                res.failures.append(f"OOS  {q.text} → {ans.kind} {ranking[:1]}")
            continue
        res.in_scope += 1
        items.add(q.code)
        ok1 = ranking[:1] == [q.code]
        top1 += ok1
        top3 += q.code in ranking[:3]
        answered += ans.kind == "answer" and ans.item_code == q.code
        wrong += ans.kind == "answer" and ans.item_code != q.code
        fallback += ans.kind != "answer"
        aspect_ok += ans.aspect == q.aspect
        if not ok1 or ans.kind != "answer" or ans.aspect != q.aspect:
            res.failures.append(
                f"{'TOP1' if ok1 else 'MISS'} {q.text} → {ans.kind} {ranking[:3]} aspect={ans.aspect} "
                f"(expected {q.code} aspect={q.aspect})"
            )
    n = max(1, res.in_scope)
    res.items = len(items)
    res.top1, res.top3 = top1 / n, top3 / n
    res.answered, res.wrong_answers, res.fallback_rate = answered / n, wrong / n, fallback / n
    res.aspect_accuracy = aspect_ok / n
    res.oos_decline_rate = declined / max(1, res.out_of_scope)
    return res


async def run(path: Path = QUESTIONS, *, channel: str = "wechat") -> EvalResult:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/eval.db")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            sessions = session_factory(engine)
            await ensure_sample_loaded(sessions)
            kb = KnowledgeBase(sessions)
            return await evaluate(kb, load_questions(path), channel=channel)
        finally:
            await engine.dispose()


def format_result(res: EvalResult) -> str:
    return "\n".join(
        [
            f"questions: {res.questions} ({res.in_scope} in scope over {res.items} items, "
            f"{res.out_of_scope} out of scope)",
            f"top-1 accuracy:            {res.top1:.1%}",
            f"top-3 accuracy:            {res.top3:.1%}",
            f"answered correctly:        {res.answered:.1%}",
            f"wrong answers:             {res.wrong_answers:.1%}",
            f"fallback rate:             {res.fallback_rate:.1%}",
            f"aspect accuracy:           {res.aspect_accuracy:.1%}",
            f"out-of-scope decline rate: {res.oos_decline_rate:.1%}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--channel", choices=["wechat", "sms"], default="wechat")
    parser.add_argument("--failures", action="store_true", help="list every question that was not perfect")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = parser.parse_args(argv)
    res = asyncio.run(run(args.questions, channel=args.channel))
    if args.json:
        print(json.dumps(asdict(res), ensure_ascii=False, indent=2))
        return 0
    print(format_result(res))
    if args.failures and res.failures:
        print("\nnot perfect:")
        for f in res.failures:
            print("  " + f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
