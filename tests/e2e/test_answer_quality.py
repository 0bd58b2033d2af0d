"""Answer quality through the whole chat path (the gateway's conversation → the real Rasa server → our
actions → the knowledge base), on the held-out test split of eval/chat_questions.tsv: the figures `make eval`
reports must not fall.  Where the issue's goal is met the goal is the floor; where it is not yet met (the
aspect, out-of-scope declines) the floor is the figure measured when this test was written."""

from __future__ import annotations

import pytest

from eval.chat import GOALS, ask_all, evaluate, load_questions
from eval.stack import Stack

pytestmark = pytest.mark.e2e

FLOORS = {
    "item_first": GOALS["item_first"],  # measured 95.7% (2026-12-07, second measurement)
    "aspect": 0.88,  # measured 89.7% (goal 92%; first measurement 88.9%)
    # measured 87.9% = 29 of 33 (goal 95%); the first measurement was 30 of 33 — one question, within
    # what retraining the NLU moves
    "oos_declined": 0.86,
    "traditional_item_first": 0.90,  # measured 95.2% on 21 questions
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
