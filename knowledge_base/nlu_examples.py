"""Training examples for the NLU's ``ask_service_guide`` intent, written from the catalogue itself.

The hand-written examples in ``dialogues/data/nlu.yml`` teach the intent the *shape* of a service question;
they name few services, so a question about one they never name ("生孩子的生育津贴怎么领",
"农村新房子通电，网上能申请不") looked to the classifier like the other provinces' and private services of
``out_of_scope``, with full confidence.  These examples give every item its own words: its name and the
parts of it citizens use (``features.name_variants``), its aliases, its FAQ questions as written, and a few
everyday questions about its aspects.  The templates rotate over the items, so each item gets a different few.

``govbot kb nlu-examples PATH`` writes them from the catalogue in the database (after an import, then
``govbot train``); ``dialogues/data/nlu_catalogue.yml`` holds them for the sample catalogue, and a test keeps
that file equal to what this module writes from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from knowledge_base.features import name_variants
from knowledge_base.schema import GuideItem

# Everyday questions about one aspect of a service; {s} is what the citizen calls it.
TEMPLATES: tuple[str, ...] = (
    "{s}要带什么材料",
    "{s}要多少钱",
    "{s}多久能办好",
    "{s}在哪个窗口办",
    "{s}网上能办吗",
    "{s}怎么办理",
    "{s}需要什么条件",
    "办{s}要准备啥",
    "想问下{s}咋弄",
    "{s}周六能办吗",
    "{s}咨询电话多少",
    "请问{s}的流程",
)
# templated questions per item (three drowned the other intents: complaints were read as questions)
PER_ITEM = 1


# A message about complaining is the complaint intent's, even when it asks how complaints are handled (the
# catalogue's 好差评及投诉受理): the actions decide between the form and the guide from the words.
_COMPLAINT_WORDS = re.compile(r"投诉|举报|差评")


def _clean(text: str) -> str:
    """One line of YAML-safe example text: no line breaks, no characters YAML's block scalar dislikes."""
    return re.sub(r"\s+", " ", text).strip().strip("-").strip()


def guide_examples(items: Sequence[GuideItem], aliases: Iterable[tuple[str, str]]) -> list[str]:
    """Examples for ``ask_service_guide``, in catalogue order, each once."""
    by_code: dict[str, list[str]] = {}
    for alias, code in aliases:
        by_code.setdefault(code, []).append(alias)
    out: dict[str, None] = {}
    turn = 0
    for item in items:
        if not item.name:
            continue
        # the parts of a name that name something on their own (not "更名", "非涉港澳台")
        names = [item.name, *(v for v in name_variants(item.name) if len(v) >= 3 and not v.startswith("非"))]
        said = [*by_code.get(item.code, []), *names[1:], item.name]  # what citizens call it, plainest first
        for text in (*names, *by_code.get(item.code, []), *(f.question for f in item.faq_list)):
            out.setdefault(_clean(text))
        for k in range(PER_ITEM):
            subject = said[k % len(said)]
            out.setdefault(_clean(TEMPLATES[turn % len(TEMPLATES)].format(s=subject)))
            turn += 1
    return [text for text in out if text and not _COMPLAINT_WORDS.search(text)]


HEADER = "# Written by `govbot kb nlu-examples` from the catalogue (knowledge_base/nlu_examples.py)."


def render_yaml(examples: Iterable[str], *, skip: Iterable[str] = ()) -> str:
    """The examples as a Rasa 3 NLU file (``skip``: examples another file already gives some intent)."""
    taken = set(skip)
    lines = [
        HEADER,
        "# Do not edit: import the catalogue, run the command, then `govbot train`.",
        'version: "3.1"',
        "",
        "nlu:",
        "- intent: ask_service_guide",
        "  examples: |",
    ]
    lines += [f"    - {text}" for text in examples if text not in taken]
    return "\n".join(lines) + "\n"


def hand_written_examples(nlu_yaml: str) -> list[str]:
    """Every example of a Rasa NLU file's ``examples: |`` blocks (to leave out what it already says)."""
    return [m.group(1).strip() for m in re.finditer(r"^\s{4}- (.+)$", nlu_yaml, re.MULTILINE)]


def write_examples(out: Path, items: Sequence[GuideItem], aliases: Iterable[tuple[str, str]]) -> int:
    """Write the examples to ``out``, leaving out what the other NLU files beside it already say (Rasa
    refuses an example given twice); returns how many were written.  Refuses (ValueError) to overwrite a
    file it did not write — the hand-written ``nlu.yml`` — or to write into a folder that does not exist."""
    if not out.parent.is_dir():
        raise ValueError(f"文件夹不存在：{out.parent}")
    if out.exists() and not out.read_text(encoding="utf-8").startswith(HEADER):
        raise ValueError(f"{out} 不是本命令生成的文件，不能覆盖（通常应为 dialogues/data/nlu_catalogue.yml）")
    others = [p for p in sorted(out.parent.glob("*.yml")) if p.resolve() != out.resolve()]
    skip = [text for p in others for text in hand_written_examples(p.read_text(encoding="utf-8"))]
    yaml_text = render_yaml(guide_examples(items, aliases), skip=skip)
    out.write_text(yaml_text, encoding="utf-8")
    return yaml_text.count("\n    - ")
