"""The hand-written question sets run through the bot's answer path, with floors."""

from __future__ import annotations

from eval.run_eval import QUESTIONS, format_result, load_questions, run


def test_question_set_shape() -> None:
    questions = load_questions()
    in_scope = [q for q in questions if q.code]
    assert len(in_scope) >= 200 and len({q.code for q in in_scope}) >= 80
    assert sum(1 for q in questions if q.code is None) >= 20
    assert sum(1 for q in questions if q.context) >= 10  # follow-ups


async def test_eval_floors() -> None:
    res = await run(QUESTIONS)
    report = format_result(res)
    assert res.top1 >= 0.95, report
    assert res.top3 >= 0.99, report
    assert res.aspect_accuracy >= 0.90, report
    assert res.oos_decline_rate >= 0.85, report
    assert res.wrong_answers <= 0.02, report


async def test_holdout_floors() -> None:
    res = await run(QUESTIONS.with_name("questions_holdout.tsv"))
    report = format_result(res)
    assert res.top1 >= 0.90, report
    assert res.top3 >= 0.97, report
    assert res.aspect_accuracy >= 0.90, report
