"""The chat evaluation's question sets are well formed: every guide question names a catalogue item and an
aspect the knowledge base knows, every set keeps to its own split and asks each question once."""

from __future__ import annotations

from eval.chat import (
    DEV2_QUESTIONS,
    DEV3_QUESTIONS,
    DEV4_QUESTIONS,
    DEV5_QUESTIONS,
    DEV6_QUESTIONS,
    DEV7_QUESTIONS,
    QUESTIONS,
    ROUTES,
    TEST_QUESTIONS,
    _load,
    complaints_as_first_messages,
)
from knowledge_base.aspects import ASPECTS
from knowledge_base.importer import read_catalogue
from tests.support.kb import SAMPLE_CATALOGUE


def test_the_question_sets_are_well_formed() -> None:
    codes = {it.code for it in read_catalogue(SAMPLE_CATALOGUE).items}
    for path, split in (
        (QUESTIONS, "dev"),
        (TEST_QUESTIONS, "test"),
        (DEV2_QUESTIONS, "dev2"),
        (DEV3_QUESTIONS, "dev3"),
        (DEV4_QUESTIONS, "dev4"),
        (DEV5_QUESTIONS, "dev5"),
        (DEV6_QUESTIONS, "dev6"),
        (DEV7_QUESTIONS, "dev7"),
    ):
        questions = _load(path)
        seen: set[str] = set()
        assert len(questions) >= 300, path
        for q in questions:
            assert q.split == split and q.route in ROUTES and q.script in ("simplified", "traditional"), q
            if q.route == "guide":
                assert q.code in codes and (q.aspect is None or q.aspect in ASPECTS), q
            else:
                assert q.code is None and q.aspect is None, q
            assert q.text not in seen, q
            seen.add(q.text)


def test_the_triage_hold_out_is_sent_as_first_messages() -> None:
    complaints = complaints_as_first_messages()
    assert len(complaints) == 129  # its complaints, reports and suggestions; not its 20 pleas for help
    assert all(q.route == "complaint" and q.split == "complaints" for q in complaints)
