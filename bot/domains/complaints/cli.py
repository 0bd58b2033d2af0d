"""``govbot complaints …`` sub-commands for staff.

``register(subparsers, wrap=None)`` adds ``complaints`` with its sub-commands, exactly like
``knowledge_base.cli.register``: each sub-command stores its handler in ``args.complaints_handler`` (an
``async (args, sessionmaker) -> int``) and the permission it needs in ``args.permission``, and
``args.func = wrap(handler)`` when ``wrap`` is given.  The gateway's wrapper signs the person in from their
token and puts them in ``args.actor`` (``govbot login``); the history names them, and a person without
``complaints.supervise`` sees and works only their department's complaints.  Exit codes: 0 done, 1 unknown
number or not allowed in the current state, 2 invalid input.

    govbot complaints list [--status S[,S]] [--overdue] [--department D] [--kind K] [--from D] [--to D]
    govbot complaints show NUMBER
    govbot complaints accept NUMBER [--note TEXT]
    govbot complaints reject NUMBER --reason TEXT
    govbot complaints dispatch NUMBER --department DEPT [--note TEXT]
    govbot complaints return NUMBER --reason TEXT
    govbot complaints start NUMBER [--note TEXT]
    govbot complaints extend NUMBER --days N --reason TEXT --approver NAME
    govbot complaints reply NUMBER --text TEXT
    govbot complaints callback NUMBER --note TEXT [--rating 1-5]
    govbot complaints close NUMBER [--result resolved|explained|unresolved] [--note TEXT]
    govbot complaints merge NUMBER --into NUMBER
    govbot complaints sweep

The CLI has no channel to the citizen: a reply given here is queued in ``complaint_notices`` and sent by the
running gateway's periodic sweep (or at once when ``sender`` is passed to :func:`register`).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import as_utc
from bot.core.masking import mask_phone, mask_sender
from bot.domains.complaints.access import department_scope, visible
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.complaints.delivery import ReplySender
from bot.domains.complaints.errors import ComplaintError, InvalidInputError
from bot.domains.complaints.models import Complaint
from bot.domains.complaints.service import CLOSE_RESULTS, ComplaintService
from bot.domains.complaints.states import ACTION_LABELS, KIND_LABELS, STATUS_LABELS, Action, Kind, Status

Handler = Callable[[argparse.Namespace, async_sessionmaker[AsyncSession]], Awaitable[int]]
Wrap = Callable[[Handler], Callable[[argparse.Namespace], int]]

__all__ = ["Handler", "register"]


def _line(row: Complaint, tz: tzinfo) -> str:
    received = as_utc(row.received_at)
    assert received is not None
    when = received.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    due = row.due or row.accept_due
    flag = f"  督办{row.supervision_level}级" if row.overdue else ""
    desc = row.description if len(row.description) <= 30 else row.description[:29] + "…"
    return (
        f"{row.number}  {when}  {STATUS_LABELS[Status(row.status)]}  {KIND_LABELS[Kind(row.kind)]}  "
        f"期限{due.isoformat()}  {row.owner_department or '-'}{flag}  {desc}"
    )


Body = Callable[[ComplaintService, argparse.Namespace], Awaitable[int]]
Call = Callable[[ComplaintService, argparse.Namespace], Awaitable[Complaint]]


def _handler(body: Body, sender: ReplySender | None) -> Handler:
    """``body`` on a fresh service, with the errors turned into the exit codes."""

    async def handler(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
        service = ComplaintService(sessions, settings=ComplaintSettings.from_env(), sender=sender)
        try:
            return await body(service, args)
        except InvalidInputError as exc:
            print(exc.message)
            return 2
        except ComplaintError as exc:
            print(exc.message)
            return 1
        except ValueError as exc:
            print(f"参数不正确：{exc}")
            return 2

    return handler


def _transition(action: Action, call: Call) -> Body:
    """A staff transition: ``call`` it and print the new state (and the deadline, unless closed)."""

    async def body(service: ComplaintService, args: argparse.Namespace) -> int:
        await visible(service, args.number.upper(), args.actor)
        row = await call(service, args)
        extra = (
            f"，期限 {row.due.isoformat()}" if row.due and Status(row.status) not in (Status.CLOSED,) else ""
        )
        print(f"{row.number} 已{ACTION_LABELS[action]}，当前状态：{STATUS_LABELS[Status(row.status)]}{extra}")
        return 0

    return body


async def _list(service: ComplaintService, args: argparse.Namespace) -> int:
    scope = department_scope(args.actor)
    if scope is not None and args.department not in (None, scope):
        print("没有符合条件的投诉。")
        return 0
    rows, total = await service.search(
        status=[s for s in (args.status or "").split(",") if s] or None,
        overdue=True if args.overdue else None,
        department=scope or args.department,
        kind=args.kind,
        received_from=date.fromisoformat(args.date_from) if args.date_from else None,
        received_to=date.fromisoformat(args.date_to) if args.date_to else None,
        limit=args.limit,
    )
    if not rows:
        print("没有符合条件的投诉。")
        return 0
    for row in rows:
        print(_line(row, service.calendar.tz))
    print(f"共 {total} 件（显示 {len(rows)} 件）")
    return 0


async def _show(service: ComplaintService, args: argparse.Namespace) -> int:
    number = args.number.upper()
    row = await visible(service, number, args.actor)
    tz = service.calendar.tz
    phone = (mask_phone(row.phone) if row.confidential else row.phone) if row.phone else "-"
    print(_line(row, tz))
    print(
        f"来源：{row.channel} {mask_sender(row.sender_id)}  电话：{phone}  "
        f"保密：{'是' if row.confidential else '否'}"
    )
    print(f"被投诉对象：{row.respondent or '-'}  发生时间：{row.occurred or '-'}")
    print(f"内容：{row.description}")
    if row.reply_text:
        print(f"答复：{row.reply_text}")
    if row.rating:
        print(f"评价：{row.rating}{'（差评）' if row.bad_review else ''} {row.rating_comment or ''}")
    print("办理记录：")
    for e in await service.history(number):
        at = as_utc(e.at)
        assert at is not None
        move = f"{e.from_status or '-'}→{e.to_status}" if e.to_status and e.to_status != e.from_status else ""
        dept = f" [{e.department}]" if e.department else ""
        print(
            f"  {e.seq:>2}. {at.astimezone(tz):%Y-%m-%d %H:%M} {e.actor} "
            f"{ACTION_LABELS[Action(e.action)]}"
            f" {move}{dept} {e.note or ''}".rstrip()
        )
    for n in await service.notices(number):
        print(f"  通知（{n.purpose}）：{n.status}{'，' + n.via if n.via else ''}")
    return 0


async def _sweep(service: ComplaintService, args: argparse.Namespace) -> int:
    report = await service.sweep()
    print(
        f"本次督办 {len(report.escalated)} 件：{'、'.join(report.escalated) or '无'}；"
        f"补发通知 {report.delivered} 条"
    )
    return 0


@dataclass(frozen=True)
class _Staff:
    """A staff transition's sub-command: ``NUMBER`` and its ``options``."""

    name: str
    help: str
    action: Action
    call: Call
    options: tuple[tuple[str, dict[str, Any]], ...] = ()


_REQUIRED: dict[str, Any] = {"required": True}
_STAFF = (
    _Staff(
        "accept",
        "受理",
        Action.ACCEPT,
        lambda s, a: s.accept(a.number.upper(), a.actor.name, a.note),
        (("--note", {}),),
    ),
    _Staff(
        "reject",
        "不予受理（须说明理由和告知途径）",
        Action.REJECT,
        lambda s, a: s.reject(a.number.upper(), a.actor.name, a.reason),
        (("--reason", _REQUIRED),),
    ),
    _Staff(
        "dispatch",
        "派单（退单后再派即改派）",
        Action.DISPATCH,
        lambda s, a: s.dispatch(a.number.upper(), a.actor.name, a.department, a.note),
        (("--department", _REQUIRED), ("--note", {})),
    ),
    _Staff(
        "return",
        "退单（须说明理由）",
        Action.RETURN,
        lambda s, a: s.return_(a.number.upper(), a.actor.name, a.reason),
        (("--reason", _REQUIRED),),
    ),
    _Staff(
        "start",
        "承办部门签收，开始办理",
        Action.START,
        lambda s, a: s.start(a.number.upper(), a.actor.name, a.note),
        (("--note", {}),),
    ),
    _Staff(
        "extend",
        "延期（累计不超过10个工作日，须审批）",
        Action.EXTEND,
        lambda s, a: s.extend(a.number.upper(), a.actor.name, a.days, a.reason, a.approver),
        (("--days", {"type": int, "required": True}), ("--reason", _REQUIRED), ("--approver", _REQUIRED)),
    ),
    _Staff(
        "reply",
        "答复群众（经原渠道推送）",
        Action.REPLY,
        lambda s, a: s.reply(a.number.upper(), a.actor.name, a.text),
        (("--text", _REQUIRED),),
    ),
    _Staff(
        "callback",
        "回访",
        Action.CALLBACK,
        lambda s, a: s.callback(a.number.upper(), a.actor.name, a.note, a.rating),
        (("--note", _REQUIRED), ("--rating", {"type": int, "choices": range(1, 6)})),
    ),
    _Staff(
        "close",
        "办结",
        Action.CLOSE,
        lambda s, a: s.close(a.number.upper(), a.actor.name, a.result, a.note),
        (("--result", {"choices": list(CLOSE_RESULTS), "default": "resolved"}), ("--note", {})),
    ),
    _Staff(
        "merge",
        "并单：把本投诉并入另一件",
        Action.MERGE,
        lambda s, a: s.merge(a.number.upper(), a.into.upper(), a.actor.name),
        (("--into", _REQUIRED),),
    ),
)


PERMISSIONS = {"list": "complaints.read", "show": "complaints.read", "sweep": "complaints.supervise",
               "dispatch": "complaints.supervise", "merge": "complaints.supervise"}  # fmt: skip
HANDLE = "complaints.handle"


def _list_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("list", help="列出投诉")
    p.add_argument("--status", help="状态，逗号分隔：" + ",".join(s.value for s in Status))
    p.add_argument("--overdue", action="store_true", help="只看超期（已督办）的")
    p.add_argument("--department", help="承办部门")
    p.add_argument("--kind", choices=[k.value for k in Kind])
    p.add_argument("--from", dest="date_from", help="登记日期起（YYYY-MM-DD）")
    p.add_argument("--to", dest="date_to", help="登记日期止（YYYY-MM-DD）")
    p.add_argument("--limit", type=int, default=100)
    return p


def register(
    subparsers: argparse._SubParsersAction,
    wrap: Wrap | None = None,
    sender: ReplySender | None = None,
) -> None:
    """Add ``complaints`` and its sub-commands (see the module docstring)."""
    root = subparsers.add_parser("complaints", help="投诉工单：查询、受理、派单、答复、办结、督办")
    sub = root.add_subparsers(dest="complaints_command", required=True)

    def handle(p: argparse.ArgumentParser, body: Body) -> None:
        handler = _handler(body, sender)
        name = p.prog.rsplit(" ", 1)[-1]
        p.set_defaults(complaints_handler=handler, permission=PERMISSIONS.get(name, HANDLE))
        if wrap is not None:
            p.set_defaults(func=wrap(handler))

    handle(_list_parser(sub), _list)
    p = sub.add_parser("show", help="查看投诉详情与办理记录")
    p.add_argument("number")
    handle(p, _show)
    for staff in _STAFF:
        p = sub.add_parser(staff.name, help=staff.help)
        p.add_argument("number")
        for flag, options in staff.options:
            p.add_argument(flag, **options)
        handle(p, _transition(staff.action, staff.call))
    handle(sub.add_parser("sweep", help="检查超期并督办，补发未送达的通知"), _sweep)
