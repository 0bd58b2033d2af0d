"""Answer quality through the whole chat path (the gateway's conversation → the real Rasa server → our
actions → the knowledge base), on the held-out test split (eval/chat_questions_test.tsv): the figures
`make eval` reports must not fall.  Each floor is the figure measured on 2026-12-08 (the split's ninth
measurement) less the difference between machines: training is deterministic on one machine, but the model is
trained afresh on every machine, and two machines measured the same code at 97.8% and 93.3% out of scope (two
questions) and 96.1% and 95.7% item."""

from __future__ import annotations

import pytest

from eval.chat import ask_all, evaluate, load_questions
from eval.stack import Stack

pytestmark = pytest.mark.e2e

FLOORS = {
    "item_first": 0.945,  # measured 96.1% of 280 on 2026-12-08 (goal 95%)
    "aspect": 0.90,  # measured 91.8% (goal 92%), the steps counting for a general question
    "aspect_strict": 0.71,  # measured 73.6%
    "oos_declined": 0.91,  # measured 97.8% = 44 of 45 (93.3% on another machine; goal 95%; see the README)
    "traditional_item_first": 0.92,  # measured 100% on 26 questions
}


async def test_the_chat_path_holds_its_figures_on_the_test_split(rasa_stack: Stack) -> None:
    questions = [q for q in load_questions() if q.split == "test"]
    assert len(questions) >= 300
    outcomes, names, phone = await ask_all(rasa_stack, questions)
    figures = evaluate(questions, outcomes, names, phone)
    summary = figures.summary()
    assert summary["misroutes"] == 0, figures.failures
    for name, floor in FLOORS.items():
        assert summary[name] >= floor, (name, summary, figures.failures[:20])


COMPLAINTS_TAKEN_FLOOR = 0.75  # measured 78.3-79.8% of 129 on 2026-12-08 (46% before grievances were read)


async def test_complaints_told_as_first_messages_start_the_complaint_form(rasa_stack: Stack) -> None:
    """The triage hold-out's complaints, reports and suggestions, typed as a first message without the word
    投诉: most must start the complaint form, not get a guide answer or a "not ours"."""
    questions = [q for q in load_questions() if q.split == "complaints"]
    assert len(questions) >= 100
    outcomes, names, phone = await ask_all(rasa_stack, questions)
    summary = evaluate(questions, outcomes, names, phone).summary()
    assert summary["complaints_taken"] >= COMPLAINTS_TAKEN_FLOOR, summary
