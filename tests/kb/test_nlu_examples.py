"""The NLU's service-question examples written from the catalogue: the committed file is what the catalogue
gives, every item is named in it, nothing in it repeats a hand-written example, and the command writes it
from the catalogue in the database."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from knowledge_base import cli
from knowledge_base.importer import read_aliases, read_catalogue
from knowledge_base.nlu_examples import guide_examples, hand_written_examples, write_examples
from tests.support.kb import SAMPLE_ALIASES, SAMPLE_CATALOGUE, load_sample

DATA = Path(__file__).resolve().parents[2] / "dialogues" / "data"
COMMITTED = DATA / "nlu_catalogue.yml"


def test_the_committed_examples_are_what_the_sample_catalogue_gives(tmp_path: Path) -> None:
    shutil.copy(DATA / "nlu.yml", tmp_path / "nlu.yml")
    items = read_catalogue(SAMPLE_CATALOGUE).items
    write_examples(tmp_path / "nlu_catalogue.yml", items, read_aliases(SAMPLE_ALIASES).aliases)
    assert (tmp_path / "nlu_catalogue.yml").read_text(encoding="utf-8") == COMMITTED.read_text(
        encoding="utf-8"
    ), "run: govbot kb nlu-examples dialogues/data/nlu_catalogue.yml (and govbot train)"


def test_every_item_is_named_and_no_hand_written_example_is_repeated() -> None:
    generated = hand_written_examples(COMMITTED.read_text(encoding="utf-8"))
    assert len(generated) == len(set(generated)) > 500
    for item in read_catalogue(SAMPLE_CATALOGUE).items:
        # (好差评及投诉受理: a message about complaining is left to the complaint intent)
        assert item.name in generated or "投诉" in item.name, item.name
    assert not [e for e in generated if "投诉" in e or "举报" in e]
    assert not set(generated) & set(hand_written_examples((DATA / "nlu.yml").read_text(encoding="utf-8")))
    examples = guide_examples(read_catalogue(SAMPLE_CATALOGUE).items, read_aliases(SAMPLE_ALIASES).aliases)
    assert "办营业执照要带什么材料" in examples and all("\n" not in e and e == e.strip() for e in examples)


async def test_the_command_writes_them_from_the_database(
    kb_sessions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="govbot")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["kb", "nlu-examples", str(tmp_path / "nlu_catalogue.yml")])
    assert await args.kb_handler(args, kb_sessions) == 1  # an empty catalogue
    assert "目录为空" in capsys.readouterr().out
    await load_sample(kb_sessions)
    assert await args.kb_handler(args, kb_sessions) == 0
    assert "govbot train" in capsys.readouterr().out
    text = (tmp_path / "nlu_catalogue.yml").read_text(encoding="utf-8")
    assert "- intent: ask_service_guide" in text and "    - 个体工商户设立登记\n" in text
    # never over a hand-written file, nor into a folder that is not there
    (tmp_path / "nlu.yml").write_text('version: "3.1"\n', encoding="utf-8")
    for path in (tmp_path / "nlu.yml", tmp_path / "missing" / "x.yml"):
        args = parser.parse_args(["kb", "nlu-examples", str(path)])
        assert await args.kb_handler(args, kb_sessions) == 2
    assert (tmp_path / "nlu.yml").read_text(encoding="utf-8") == 'version: "3.1"\n'
    assert "不能覆盖" in capsys.readouterr().out
