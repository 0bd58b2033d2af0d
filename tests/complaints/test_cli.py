"""``govbot complaints …``: argparse registration and the handlers on a real database."""

from __future__ import annotations

import argparse

import pytest

from bot.core.actor import Actor
from bot.domains.complaints import cli
from bot.domains.complaints.service import ComplaintService
from bot.domains.staff.roles import permissions_of
from tests.support.complaints import Recorder, new


def who(name: str, department: str = "行政服务中心办公室", role: str = "complaint_supervisor") -> Actor:
    """The signed-in person the gateway's CLI wrapper would put in ``args.actor``."""
    roles = frozenset({role})
    return Actor(hash(name) % 1000, name, name, department, roles, permissions_of(roles), via="cli")


PEOPLE = {
    "张科员": who("张科员"),
    "王主任": who("王主任"),
    "公安局": who("公安局", "县公安局", "complaint_handler"),
    "交通局": who("交通局", "县交通局", "complaint_handler"),
}


def _parse(
    argv: list[str], wrap: cli.Wrap | None = None, sender: Recorder | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="govbot")
    cli.register(parser.add_subparsers(dest="command", required=True), wrap, sender)
    return parser.parse_args(argv)


async def test_cli_commands(sessions, capsys: pytest.CaptureFixture[str]) -> None:
    async def run(*argv: str) -> tuple[int, str]:
        rest = list(argv)
        by = "张科员"
        if "--by" in rest:  # who runs the command (their sign-in), not an argument any more
            at = rest.index("--by")
            by = rest[at + 1]
            del rest[at : at + 2]
        args = _parse(["complaints", *rest])
        assert args.permission
        args.actor = PEOPLE[by]
        code = await args.complaints_handler(args, sessions)
        return code, capsys.readouterr().out

    service = ComplaintService(sessions)
    a = (await service.create(new(phone="13812345678"), idempotency_key="a")).complaint.number
    b = (await service.create(new(respondent="6号窗口"), idempotency_key="b")).complaint.number
    c = (await service.create(new(respondent="7号窗口"), idempotency_key="c")).complaint.number

    code, out = await run("list")
    assert code == 0 and a in out and b in out and "共 3 件" in out and "已登记" in out
    code, out = await run("accept", a.lower(), "--by", "张科员")
    assert code == 0 and f"{a} 已受理" in out and "期限" in out
    assert (await run("accept", a, "--by", "张科员"))[0] == 1  # not allowed twice
    code, out = await run("reject", b, "--by", "王主任", "--reason", "属于行政复议事项，请依法申请复议。")
    assert code == 0 and "不予受理" in out
    assert (await run("reject", c, "--by", "王主任", "--reason", " "))[0] == 2
    assert (await run("dispatch", a, "--by", "张科员", "--department", "县公安局"))[0] == 0
    assert (await run("return", a, "--by", "公安局", "--reason", "非本单位"))[0] == 0
    assert (await run("dispatch", a, "--by", "张科员", "--department", "县交通局"))[0] == 0
    assert (await run("start", a, "--by", "交通局"))[0] == 0
    code, out = await run(
        "extend", a, "--by", "张科员", "--days", "12", "--reason", "复杂", "--approver", "王"
    )
    assert code == 2 and "10个工作日" in out
    assert (await run("extend", a, "--by", "张科员", "--days", "3", "--reason", "复杂", "--approver", "王"))[
        0
    ] == 0
    assert (await run("reply", a, "--by", "交通局", "--text", "已整改。"))[0] == 0
    assert (await run("close", a, "--by", "王主任"))[0] == 1
    assert (await run("callback", a, "--by", "张科员", "--note", "满意", "--rating", "4"))[0] == 0
    code, out = await run("close", a, "--by", "王主任", "--result", "explained")
    assert code == 0 and "已办结" in out
    assert (await run("merge", c, "--into", a, "--by", "张科员"))[0] == 2  # closed target
    code, out = await run("show", a)
    assert code == 0 and "138****1234" not in out and "13812345678" in out
    for step in ("登记", "受理", "派单", "退单", "签收办理", "延期", "答复", "回访", "办结"):
        assert step in out
    assert "[县交通局]" in out and "通知（reply）：pending" in out  # no channel here: queued for the gateway
    assert (await run("show", "TS2345678ABC"))[0] == 1
    code, out = await run("list", "--status", "closed,rejected")
    assert code == 0 and a in out and b in out and c not in out
    code, out = await run("list", "--overdue")
    assert code == 0 and "没有符合条件的投诉" in out
    code, out = await run("sweep")
    assert code == 0 and "本次督办" in out
    assert (await run("list", "--status", "nope"))[0] == 2


async def test_cli_reply_with_sender_delivers(sessions, capsys: pytest.CaptureFixture[str]) -> None:
    recorder = Recorder()
    service = ComplaintService(sessions)
    number = (await service.create(new(), idempotency_key="x")).complaint.number
    await service.accept(number, "a")
    await service.dispatch(number, "a", "县人社局")
    await service.start(number, "b")
    args = _parse(["complaints", "reply", number, "--text", "已办理。"], sender=recorder)
    args.actor = who("人社局", "县人社局", "complaint_handler")
    assert await args.complaints_handler(args, sessions) == 0
    assert recorder.sent and recorder.sent[0][1].startswith(f"您的投诉（{number}）已答复")


def test_register_with_wrap() -> None:
    seen: list[cli.Handler] = []

    def wrap(handler: cli.Handler):
        seen.append(handler)
        return lambda args: 0

    args = _parse(["complaints", "sweep"], wrap)
    assert args.func(args) == 0 and args.complaints_handler in seen
    commands = {
        "list": [],
        "show": ["TS2345678ABC"],
        "accept": ["TS2345678ABC"],
        "reject": ["TS2345678ABC", "--reason", "r"],
        "dispatch": ["TS2345678ABC", "--department", "d"],
        "return": ["TS2345678ABC", "--reason", "r"],
        "reply": ["TS2345678ABC", "--text", "t"],
        "close": ["TS2345678ABC"],
        "extend": ["TS2345678ABC", "--days", "1", "--reason", "r", "--approver", "a"],
        "sweep": [],
    }
    handlers = {
        name: _parse(["complaints", name, *rest], wrap).complaints_handler for name, rest in commands.items()
    }
    assert len(set(handlers.values())) == len(commands)
    parser = argparse.ArgumentParser(prog="govbot")
    cli.register(parser.add_subparsers(dest="command"), wrap)
    with pytest.raises(SystemExit):
        parser.parse_args(["complaints", "accept", "TS2345678ABC", "--by", "x"])  # no --by: the sign-in says
    assert _parse(["complaints", "dispatch", "TS2345678ABC", "--department", "d"]).permission == (
        "complaints.supervise"
    )
    assert _parse(["complaints", "reply", "TS2345678ABC", "--text", "t"]).permission == "complaints.handle"
    assert _parse(["complaints", "list"]).permission == "complaints.read"
