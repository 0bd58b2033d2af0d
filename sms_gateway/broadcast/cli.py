"""``govbot broadcast …`` sub-commands (register like ``knowledge_base.cli``: ``register(subparsers, wrap)``;
the gateway's ``wrap`` signs the person in from their token (``govbot login``), checks the sub-command's
``args.permission``, puts them in ``args.actor``, migrates the database and passes a sessionmaker).

    govbot broadcast create --name N --template T [--purpose 通知|普法|提醒] [--rate R]
                            [--window 08:00-21:00] [--recipients FILE] [--map 变量=列名 …]
                            [--group GROUP_ID …]
    govbot broadcast recipients ID FILE [--map 变量=列名 …] [--group GROUP_ID …]
    govbot broadcast group-import NAME FILE
    govbot broadcast preview ID
    govbot broadcast submit|approve|reject ID
    govbot broadcast start ID [--at 2026-06-01T09:00+08:00]
    govbot broadcast pause|resume|cancel ID
    govbot broadcast status [ID] [--follow]       live progress bar until the campaign ends
    govbot broadcast export ID PATH.xlsx          per-recipient results

The acting staff member is the signed-in person.  Exit codes: 0 ok, 1 refused / rejected
file, 2 usage error.  Sending is done by the worker processes (``python -m sms_gateway.broadcast.worker``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.export import write_xlsx
from sms_gateway.broadcast.models import FINAL_STATES
from sms_gateway.broadcast.preview import Preview
from sms_gateway.broadcast.recipients import RecipientFileError
from sms_gateway.broadcast.service import BroadcastError, BroadcastService
from sms_gateway.broadcast.views import duration
from sms_gateway.compose import Composer
from sms_gateway.config import SmsSettings

Handler = Callable[[argparse.Namespace, async_sessionmaker[AsyncSession]], Awaitable[int]]
Wrap = Callable[[Handler], Callable[[argparse.Namespace], int]]

EXCLUSION_TEXT = {"invalid": "号码无效", "duplicate": "号码重复", "opted_out": "已退订"}


def make_service(
    sessions: async_sessionmaker[AsyncSession], env: Mapping[str, str] | None = None
) -> BroadcastService:
    sms = SmsSettings.from_env(env)
    composer = Composer(
        sms.signature,
        reply_budget=sms.reply_segment_budget,
        max_segments_per_message=sms.max_segments_per_message,
    )
    return BroadcastService(BroadcastSettings.from_env(env), sessions, composer)


def _map(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        var, sep, col = item.partition("=")
        if not sep or not var.strip() or not col.strip():
            raise BroadcastError(f"--map 应写作 变量=列名，而不是 {item!r}", 400)
        out[var.strip().strip("{}")] = col.strip()
    return out


def _upload(path: str) -> tuple[str, bytes]:
    p = Path(path)
    if not p.is_file():
        raise BroadcastError(f"文件不存在：{p}", 400)
    return p.name, p.read_bytes()


def print_preview(p: Preview, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(f"群发任务 {p.campaign_id}（{p.state}）", file=out)
    print(f"  收件人：{p.recipients} 人（名单共 {p.total_rows} 行）", file=out)
    excl = "，".join(f"{EXCLUSION_TEXT[k]} {v}" for k, v in p.exclusions.items())
    print(f"  排除：{excl}", file=out)
    for row in p.exclusion_rows[:10]:
        print(
            f"    - {row['label']}：{_where(row['source'])} {row['raw']}",
            file=out,
        )
    seg = p.segments_per_message
    print(f"  每条短信 {seg['min']}–{seg['max']} 段，共 {p.segments_total} 段", file=out)
    print(f"  速率 {p.rate:g} 段/秒，预计用时 {duration(p.estimated_seconds)}；发送时段 {p.window}", file=out)
    for s in p.samples:
        print(f"  示例（{s['to']}，{s['segments']} 段）：{s['body']}", file=out)
    for w in p.warnings:
        print(f"  注意：{w}", file=out)
    if p.blockers:
        print("  不能发送：", file=out)
        for b in p.blockers:
            print(f"    ✗ {b}", file=out)
    else:
        print("  ✓ 可以提交审核 / 发送", file=out)


def _where(source: str) -> str:
    kind, _, ref = source.partition(":")
    return f"第{ref}行" if kind == "upload" else f"分组 {ref}"


def progress_line(p: dict[str, Any], width: int = 30) -> str:
    eligible = max(1, p["eligible"])
    filled = int(width * min(1.0, p["done"] / eligible))
    bar = "█" * filled + "░" * (width - filled)
    failed = p["failed"]
    line = (
        f"[{bar}] {p['percent']:5.1f}%  {p['state']}  已发 {p['sent']}（送达 {p['delivered']}）"
        f" 排队 {p['queued']} 进行中 {p['in_flight']} 失败 {failed} 中途退订 {p['opted_out_during']}"
    )
    if p.get("waiting_for_window"):
        line += f"  {p['waiting_for_window']}"
    return line


async def cmd_create(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    svc = make_service(sessions)
    template = args.template or ""
    if args.template_file:
        template = await asyncio.to_thread(Path(args.template_file).read_text, "utf-8")
    c = await svc.create(
        name=args.name,
        template=template,
        purpose=args.purpose,
        rate=args.rate,
        window=args.window,
        created_by=args.actor.name,
        created_by_account=args.actor.account_id,
    )
    print(f"已创建群发任务 {c['id']}（草稿）")
    if args.recipients or args.group:
        await _set_recipients(svc, c["id"], args)
    return 0


async def _set_recipients(svc: BroadcastService, cid: str, args: argparse.Namespace) -> None:
    r = await svc.set_recipients(
        cid,
        actor=args.actor.name,
        upload=_upload(args.recipients) if args.recipients else None,
        column_map=_map(args.map),
        group_ids=args.group or [],
    )
    enc = f"（编码 {r['encoding']}）" if r["encoding"] else ""
    print(
        f"收件人已导入{enc}：共 {r['total']} 行，可发送 {r['eligible']}，"
        + "，".join(f"{EXCLUSION_TEXT[k]} {r[k]}" for k in EXCLUSION_TEXT)
    )


async def cmd_recipients(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    await _set_recipients(make_service(sessions), args.id, args)
    return 0


async def cmd_group_import(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    r = await make_service(sessions).save_group(
        name=args.name, actor=args.actor.name, upload=_upload(args.path)
    )
    print(f"已保存分组 {r['group_id']}（{r['name']}）：{r['members']} 个号码")
    return 0


async def cmd_preview(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    p = await make_service(sessions).preview(args.id)
    print_preview(p)
    return 1 if p.blockers else 0


def _action(name: str) -> Handler:
    async def run(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
        svc = make_service(sessions)
        if name == "start":
            at = datetime.fromisoformat(args.at) if args.at else None
            if at is not None and at.tzinfo is None:
                raise BroadcastError("--at 须带时区，如 2026-06-01T09:00+08:00", 400)
            c = await svc.start(args.id, args.actor.name, at=at)
        elif name == "approve":
            c = await svc.approve(args.id, args.actor.name, args.actor.account_id)
        elif name in ("cancel", "reject"):
            c = await getattr(svc, name)(args.id, args.actor.name, args.reason or "")
        else:
            c = await getattr(svc, name)(args.id, args.actor.name)
        print(f"群发任务 {c['id']}：{c['state']}")
        return 0

    return run


async def cmd_status(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    svc = make_service(sessions)
    if not args.id:
        for c in await svc.campaigns():
            print(
                f"{c['id']}  {c['state']:<4}  {c['name']}  收件人 {c['recipients_total']}  "
                f"起草 {c['created_by']}"
            )
        return 0
    tty = sys.stdout.isatty()
    while True:
        p = await svc.progress(args.id)
        line = progress_line(p)
        if args.follow and tty:
            print("\r" + line, end="", flush=True)
        else:
            print(line, flush=True)
        if not args.follow or p["state"] in FINAL_STATES:
            break
        await asyncio.sleep(args.interval)
    if args.follow and tty:
        print()
    if p["failed_by_reason"]:
        print("失败原因：" + "，".join(f"{k} × {v}" for k, v in p["failed_by_reason"].items()))
    return 0


async def cmd_export(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    n = write_xlsx(await make_service(sessions).results(args.id), args.path)
    print(f"已导出 {n} 个收件人的发送结果：{args.path}")
    return 0


def _safe(handler: Handler) -> Handler:
    async def run(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
        try:
            return await handler(args, sessions)
        except (BroadcastError, RecipientFileError, ValueError) as exc:
            print(f"错误：{getattr(exc, 'message', None) or exc}", file=sys.stderr)
            return 2 if getattr(exc, "status", 409) == 400 and isinstance(exc, BroadcastError) else 1
        except KeyboardInterrupt:
            return 0

    return run


# The permission each sub-command needs (as the HTTP routes: bot/gateway/staff/routes.py).
PERMISSIONS = {
    "create": "broadcast.compose", "recipients": "broadcast.compose", "group-import": "broadcast.compose",
    "preview": "broadcast.read", "submit": "broadcast.compose", "approve": "broadcast.approve",
    "reject": "broadcast.approve", "start": "broadcast.operate", "pause": "broadcast.operate",
    "resume": "broadcast.operate", "cancel": "broadcast.operate", "status": "broadcast.read",
    "export": "broadcast.export",
}  # fmt: skip


def register(subparsers: Any, wrap: Wrap | None = None) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("broadcast", help="群发通知：创建、预览、审核、发送、进度、导出")
    sub = parser.add_subparsers(dest="broadcast_command", required=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        safe = _safe(handler)
        p.set_defaults(broadcast_handler=safe, permission=PERMISSIONS[name])
        if wrap is not None:
            p.set_defaults(func=wrap(safe))
        return p

    def recipients_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--map", action="append", metavar="变量=列名", help="模板变量对应的列（默认同名列）")
        p.add_argument("--group", action="append", metavar="GROUP_ID", help="已保存的分组（可多次）")

    p = add("create", cmd_create, "新建群发任务（草稿）")
    p.add_argument("--name", required=True)
    p.add_argument("--template")
    p.add_argument("--template-file")
    p.add_argument("--purpose", default="通知", choices=["通知", "普法", "提醒"])
    p.add_argument("--rate", type=float, default=None, help="段/秒（默认 BROADCAST_RATE）")
    p.add_argument("--window", default=None, help="发送时段，默认 08:00-21:00")
    p.add_argument("--recipients", help="收件人名单 .xlsx/.csv")
    recipients_args(p)
    p = add("recipients", cmd_recipients, "替换草稿的收件人名单")
    p.add_argument("id")
    p.add_argument("recipients", nargs="?")
    recipients_args(p)
    p = add("group-import", cmd_group_import, "从文件保存一个收件人分组")
    p.add_argument("name")
    p.add_argument("path")
    add("preview", cmd_preview, "预览：示例、人数、排除、条段数、用时、阻止项").add_argument("id")
    for name, text in (
        ("submit", "提交审核"),
        ("approve", "审核通过（须由起草人以外的人员）"),
        ("reject", "退回修改"),
        ("start", "开始发送（或 --at 定时）"),
        ("pause", "暂停"),
        ("resume", "继续"),
        ("cancel", "取消"),
    ):
        p = add(name, _action(name), text)
        p.add_argument("id")
        if name == "start":
            p.add_argument("--at", default=None)
        if name in ("cancel", "reject"):
            p.add_argument("--reason", default="")
    p = add("status", cmd_status, "进度（--follow 实时进度条）")
    p.add_argument("id", nargs="?")
    p.add_argument("--follow", action="store_true")
    p.add_argument("--interval", type=float, default=1.0)
    p = add("export", cmd_export, "导出每个收件人的发送结果（XLSX）")
    p.add_argument("id")
    p.add_argument("path")
    return parser
