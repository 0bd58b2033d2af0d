"""``govbot kb`` sub-commands: argparse registration and the async handlers on a real database."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from knowledge_base import cli
from knowledge_base.service import KnowledgeBase
from tests.support.kb import SAMPLE_ALIASES, SAMPLE_GBK, sample_rows, write_csv


def _parse(argv: list[str], wrap: cli.Wrap | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="govbot")
    cli.register(parser.add_subparsers(dest="command", required=True), wrap)
    return parser.parse_args(argv)


async def _run(argv: list[str], sessions) -> int:
    args = _parse(argv)
    return await args.kb_handler(args, sessions)


async def test_cli_commands(kb_sessions, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _run(["kb", "import", str(SAMPLE_GBK), "--dry-run"], kb_sessions) == 0
    assert "将新增事项 110 个" in capsys.readouterr().out
    assert await _run(["kb", "import", str(SAMPLE_GBK)], kb_sessions) == 0
    assert "目录版本已更新为 1" in capsys.readouterr().out
    assert await _run(["kb", "aliases", str(SAMPLE_ALIASES)], kb_sessions) == 0
    assert "已新增别名 80 个" in capsys.readouterr().out

    rows = sample_rows()
    rows[1][0] = "bad-code"
    assert await _run(["kb", "import", str(write_csv(tmp_path / "bad.csv", rows))], kb_sessions) == 1
    out = capsys.readouterr().out
    assert "第2行【事项编码】" in out and "未做任何修改" in out

    assert await _run(["kb", "search", "身份证", "丢了", "咋整"], kb_sessions) == 0
    out = capsys.readouterr().out
    assert " 1. " in out and "居民身份证补领" in out and "机器人回复（直接回答" in out

    assert await _run(["kb", "export", str(tmp_path / "out.xlsx")], kb_sessions) == 0
    assert (tmp_path / "out.xlsx").is_file() and "已导出 110 个事项" in capsys.readouterr().out
    assert await _run(["kb", "export", str(tmp_path / "out.csv")], kb_sessions) == 2

    assert await _run(["kb", "unanswered"], kb_sessions) == 0
    assert "暂无未解答的问题" in capsys.readouterr().out
    await KnowledgeBase(kb_sessions).answer("今天天气怎么样", channel="sms")
    assert await _run(["kb", "unanswered", "--limit", "5"], kb_sessions) == 0
    out = capsys.readouterr().out
    assert "今天天气怎么样" in out and "sms" in out and "未找到" in out


def test_register_with_wrap() -> None:
    seen: list[cli.Handler] = []

    def wrap(handler: cli.Handler):
        seen.append(handler)
        return lambda args: 0

    args = _parse(["kb", "unanswered", "--limit", "3"], wrap)
    assert args.kb_handler is cli.cmd_unanswered and args.limit == 3 and args.func(args) == 0
    assert len(seen) == 6
    with pytest.raises(SystemExit):
        _parse(["kb"])
