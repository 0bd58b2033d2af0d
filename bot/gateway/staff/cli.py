"""Staff identity on the command line.

    govbot login                 sign in (password, and TOTP code when bound); stores a 30-day personal
                                 API token in ~/.config/govbot/token (mode 600)
    govbot logout                revoke that token and delete the file
    govbot staff create-admin    create an administrator (the first one, on a new installation)
    govbot staff accounts        list accounts (administrators)
    govbot staff audit [--since ISO] [--until ISO] [--action A] [--account ID] [--format table|csv|xlsx]
                       [--out FILE]
    govbot staff purge-audit     remove audit rows older than STAFF_AUDIT_RETENTION_DAYS (never < 180 days)

Every other staff command (``govbot complaints …``, ``govbot broadcast …``, ``govbot kb import …``) acts as
the person whose token it finds: ``GOVBOT_TOKEN`` when set, else the file ``govbot login`` wrote.  The
command checks that person's permission and writes the audit log, like the HTTP API.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.actor import Actor
from bot.core.config import get_settings
from bot.core.env import Env
from bot.domains.staff import Staff
from bot.domains.staff.accounts import AccountError, actor_for
from bot.domains.staff.audit import AuditFilter, RequestInfo, export_csv, export_xlsx
from bot.domains.staff.config import StaffSettings
from bot.domains.staff.roles import PERMISSIONS, permissions_of

CLI_TOKEN_DAYS = 30
Handler = Callable[[argparse.Namespace, async_sessionmaker[AsyncSession]], Awaitable[Any]]


def token_file() -> Path:
    base = Env().text("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "govbot" / "token"


def saved_token() -> str:
    given = Env().secret("GOVBOT_TOKEN").get_secret_value()
    if given:
        return given
    path = token_file()
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


async def ask(prompt: str, *, secret: bool = False) -> str:
    """A line from the terminal (hidden for secrets), read off the event loop."""
    return await asyncio.to_thread(getpass.getpass if secret else input, prompt)


async def ask_password(args: argparse.Namespace, prompt: str) -> str:
    if getattr(args, "password_stdin", False):
        return (await asyncio.to_thread(sys.stdin.readline)).rstrip("\n")
    return await ask(prompt, secret=True)


def cli_request() -> RequestInfo:
    return RequestInfo(client_ip="cli", user_agent=f"govbot-cli/{getpass.getuser()}", request_id="")


def _staff(sessions: async_sessionmaker[AsyncSession]) -> Staff:
    import redis.asyncio as aioredis

    redis = aioredis.from_url(get_settings().redis_url, decode_responses=False)
    return Staff.build(sessions, redis, StaffSettings.from_env())


async def signed_in(staff: Staff) -> Actor | None:
    token = saved_token()
    return await staff.tokens.authenticate(token, "cli") if token else None


def as_staff(handler: Handler) -> Handler:
    """Wrap a staff command: find the signed-in person, check ``args.permission`` (set by the sub-command),
    put the :class:`Actor` in ``args.actor``, run the command and audit it (exit code 2: not signed in,
    3: not allowed)."""

    async def run(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> Any:
        staff = _staff(sessions)
        actor = await signed_in(staff)
        command = f"cli.{args.command}.{getattr(args, 'cli_action', '') or ''}".rstrip(".")
        if actor is None:
            print("请先登录：govbot login（或设置 GOVBOT_TOKEN）", file=sys.stderr)
            return 2
        permission = getattr(args, "permission", None)
        if permission is None or not actor.can(permission):
            await staff.audit.record(command, actor=actor, outcome="denied", request=cli_request())
            print(f"您没有权限：{PERMISSIONS.get(permission or '', '此操作')}", file=sys.stderr)
            return 3
        args.actor = actor
        code = await handler(args, sessions)
        outcome = "ok" if not code else "failed"
        summary = {"argv": sys.argv[1:][:20], "exit": code if isinstance(code, int) else 0}
        await staff.audit.record(
            command, actor=actor, outcome=outcome, summary=summary, request=cli_request()
        )
        return code

    return run


# ---------------------------------------------------------------------------------------------- commands


async def _login(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    staff = _staff(sessions)
    username = args.username or await ask("用户名: ")
    password = await ask_password(args, "密码: ")
    result = await staff.accounts.sign_in(username, password, "cli", args.totp or "")
    if result.reason == "totp_required":
        result = await staff.accounts.sign_in(username, password, "cli", await ask("两步验证码: "))
    if result.account is None:
        await staff.audit.record("login", username=username[:64], outcome="failed", request=cli_request(),
                                 summary={"reason": result.reason, "via": "cli"})  # fmt: skip
        print(f"登录失败（{result.reason}）", file=sys.stderr)
        return 1
    account = result.account
    if account.must_change_password:
        print("请先修改初始密码（网页控制台或 POST /api/staff/password）", file=sys.stderr)
        return 1
    scopes = sorted(permissions_of(actor_for(account).roles))
    token, row = await staff.tokens.create(account, "CLI", scopes, CLI_TOKEN_DAYS, account.id)
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    actor = actor_for(account, via="cli")
    await staff.audit.record(
        "login", actor=actor, object_type="token", object_id=row.id, request=cli_request()
    )
    print(f"已登录为 {actor.name}，令牌有效期 {CLI_TOKEN_DAYS} 天（{path}）")
    return 0


async def _logout(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    staff = _staff(sessions)
    actor = await signed_in(staff)
    if actor is not None and actor.token_id is not None:
        await staff.tokens.revoke(actor.token_id)
        await staff.audit.record("logout", actor=actor, object_type="token", object_id=actor.token_id,
                                 request=cli_request())  # fmt: skip
    token_file().unlink(missing_ok=True)
    print("已退出登录")
    return 0


async def _create_admin(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    """The first administrator needs no sign-in; once one exists, only an administrator may add more."""
    staff = _staff(sessions)
    if await staff.accounts.has_active_admin():
        actor = await signed_in(staff)
        if actor is None or not actor.can("accounts.manage"):
            print("已有管理员：请由管理员登录后创建（govbot login）", file=sys.stderr)
            return 3
    username = args.username or await ask("管理员用户名: ")
    name = args.name or await ask("姓名: ")
    password = await ask_password(args, "密码（至少 12 位）: ")
    if not args.password_stdin and await ask("再次输入密码: ", secret=True) != password:
        print("两次输入的密码不一致", file=sys.stderr)
        return 1
    try:
        account = await staff.accounts.create(
            username, name, password, ["admin"], args.department, must_change_password=False
        )
    except AccountError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    summary = {"after": {"username": account.username, "roles": ["admin"]}}
    await staff.audit.record("account.create", username=getpass.getuser()[:64], object_type="account",
                             object_id=account.id, request=cli_request(), summary=summary)  # fmt: skip
    print(f"已创建管理员 {account.username}")
    return 0


async def _accounts(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    for a in await _staff(sessions).accounts.all():
        state = "启用" if a.active else "停用"
        print(f"{a.id:>4} {a.username:<20} {a.display_name:<10} {a.department:<16} {a.roles:<30} {state}")
    return 0


async def _audit(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    from datetime import datetime

    def moment(raw: str | None) -> datetime | None:
        return datetime.fromisoformat(raw) if raw else None

    f = AuditFilter(moment(args.since), moment(args.until), args.account, args.action, limit=args.limit)
    rows = await _staff(sessions).audit.query(f)
    if args.format == "table":
        for r in rows:
            print(f"{r.at:%Y-%m-%d %H:%M:%S} {r.username:<16} {r.action:<24} {r.object_id:<16} {r.outcome}")
        return 0
    data = export_csv(rows) if args.format == "csv" else export_xlsx(rows)
    if args.out:
        await asyncio.to_thread(Path(args.out).write_bytes, data)
    else:
        sys.stdout.buffer.write(data)
    return 0


async def _purge(args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession]) -> int:
    staff = _staff(sessions)
    removed = await staff.audit.purge(staff.settings.audit_retention_days)
    print(f"已清理 {removed} 条超过保留期的审计记录")
    return 0


def register(sub: Any, wrap: Callable[[Handler], Callable[[argparse.Namespace], int]]) -> None:
    p = sub.add_parser("login", help="sign in and store a personal API token for the CLI")
    p.add_argument("--username", default=None)
    p.add_argument("--totp", default=None, help="the TOTP code, when the account has one")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=wrap(_login))
    sub.add_parser("logout", help="revoke the CLI's token").set_defaults(func=wrap(_logout))

    staff = sub.add_parser("staff", help="staff accounts and the audit log").add_subparsers(
        dest="cli_action", required=True
    )
    p = staff.add_parser("create-admin", help="create an administrator (first set-up; needs no sign-in)")
    p.add_argument("--username", default=None)
    p.add_argument("--name", default=None)
    p.add_argument("--department", default="行政服务中心")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=wrap(_create_admin))
    p = staff.add_parser("accounts", help="list accounts")
    p.set_defaults(func=wrap(as_staff(_accounts)), permission="accounts.manage")
    p = staff.add_parser("audit", help="query or export the audit log")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--action")
    p.add_argument("--account", type=int)
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--format", choices=["table", "csv", "xlsx"], default="table")
    p.add_argument("--out")
    p.set_defaults(func=wrap(as_staff(_audit)), permission="audit.read")
    p = staff.add_parser("purge-audit", help="remove audit rows past the retention period")
    p.set_defaults(func=wrap(as_staff(_purge)), permission="audit.read")
