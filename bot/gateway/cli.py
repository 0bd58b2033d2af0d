"""``govbot``: the command line for operators and staff.

govbot run                     start everything (what `make run` calls)
govbot serve                   one gateway worker (SO_REUSEPORT: start several on one port)
govbot actions                 the Rasa action server
govbot rasa [--port N]         one Rasa server on 127.0.0.1 (what a systemd unit runs; `run` starts its own)
govbot train                   train the Rasa model if the training data changed
govbot db upgrade              apply database migrations
govbot chat                    talk to the running system from the terminal
govbot wechat menu push|show   push the custom menu in menu.json to WeChat
govbot kb ...                  knowledge base (import, aliases, export, search, unanswered)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bot.core.config import get_settings
from bot.core.logs import setup_logging


def _cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.gateway.app import build_app, build_services
    from bot.gateway.slow_clients import runner_options
    from bot.gateway.startup import check_startup, prepare_staff

    settings = get_settings()
    check_startup(settings)
    setup_logging(settings.log_level)

    async def _start() -> None:
        services = await build_services(settings)
        if services.staff is not None:
            await prepare_staff(settings, services.staff)
        app = build_app(services)
        runner = web.AppRunner(app, **runner_options(settings))
        await runner.setup()
        site = web.TCPSite(runner, settings.host, args.port or settings.port, reuse_port=True)
        await site.start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    from bot.core import eventloop

    try:
        eventloop.run(_start())
    except KeyboardInterrupt:
        pass
    return 0


def _cmd_actions(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.gateway.actions.server import build_app, build_context

    settings = get_settings()
    setup_logging(settings.log_level)
    web.run_app(
        build_app(build_context(settings)),
        host="127.0.0.1",
        port=args.port or settings.actions_port,
        access_log=None,
        print=None,
    )
    return 0


def _cmd_rasa(args: argparse.Namespace) -> int:
    """Replace this process with ``rasa run`` as ``govbot run`` starts it (same fast paths, same
    endpoints environment), so systemd supervises Rasa itself."""
    import os
    from urllib.parse import urlparse

    from bot.gateway.launcher import DIALOGUES, rasa_command, rasa_env

    settings = get_settings()
    port = args.port or urlparse(settings.rasa_urls[0]).port or 5005
    command = rasa_command(port)
    os.chdir(DIALOGUES)
    os.execve(command[0], command, {**os.environ, **rasa_env(settings)})
    return 0  # not reached


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.core.migrate import upgrade_sync

    upgrade_sync(args.url or get_settings().database_url, args.revision)
    print("数据库已升级到最新版本 (database upgraded)")
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from bot.gateway.console import chat

    settings = get_settings()
    url = args.url or f"http://127.0.0.1:{settings.port}"
    from bot.gateway.staff.cli import saved_token

    token = saved_token()
    if not token:
        print("请先登录：govbot login（或设置 GOVBOT_TOKEN）", file=sys.stderr)
        return 2
    return asyncio.run(chat(url, token, args.sender))


def _cmd_menu(args: argparse.Namespace) -> int:
    import aiohttp
    import redis.asyncio as aioredis

    from bot.adapters.wechat.api_client import WeChatApiClient
    from bot.adapters.wechat.token_service import TokenService
    from bot.gateway.channels.wechat.menu import MenuConfig

    settings = get_settings()
    menu = MenuConfig.load()
    if args.action == "show":
        print(json.dumps(menu.menu, ensure_ascii=False, indent=2))
        return 0

    async def _push() -> None:
        redis = aioredis.from_url(settings.redis_url)
        async with aiohttp.ClientSession() as http:
            tokens = TokenService(
                redis,
                http,
                settings.wechat_app_id,
                settings.wechat_app_secret.get_secret_value(),
                settings.wechat_api_base,
            )
            await WeChatApiClient(http, tokens, settings.wechat_api_base).create_menu(menu.menu)
        await redis.aclose()

    asyncio.run(_push())
    print("自定义菜单已推送 (menu pushed)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from bot.gateway.launcher import run_all

    return run_all()


def _cmd_train(args: argparse.Namespace) -> int:
    from bot.gateway.launcher import train_if_needed

    train_if_needed(force=args.force)
    return 0


def _database_command(handler: Callable[..., Awaitable[Any]]) -> Callable[[argparse.Namespace], int]:
    """Run a command handler ``async (args, sessions)`` on a migrated database."""

    def run(args: argparse.Namespace) -> int:
        from bot.core.db import create_engine, session_factory
        from bot.core.migrate import upgrade

        settings = get_settings()

        async def _go() -> Any:
            await upgrade(settings.database_url)
            engine = create_engine(settings.database_url)
            try:
                return await handler(args, session_factory(engine))
            finally:
                await engine.dispose()

        result = asyncio.run(_go())
        return result if isinstance(result, int) else 0

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govbot", description="政务服务助手 (Government Service Assistant)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="set up and start every process (Ctrl-C stops all)").set_defaults(
        func=_cmd_run
    )

    p = sub.add_parser("train", help="train the Rasa model when the training data changed")
    p.add_argument("--force", action="store_true", help="train even when the model is current")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("serve", help="run one gateway worker")
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("actions", help="run the Rasa action server")
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=_cmd_actions)

    p = sub.add_parser("rasa", help="run one Rasa server on 127.0.0.1 (for a process supervisor)")
    p.add_argument("--port", type=int, default=None, help="default: RASA_URL's port")
    p.set_defaults(func=_cmd_rasa)

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="apply migrations")
    p.add_argument("--url", default=None, help="database URL (default: DATABASE_URL)")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=_cmd_db_upgrade)

    p = sub.add_parser("chat", help="chat with the running system")
    p.add_argument("--url", default=None, help="gateway base URL (default: http://127.0.0.1:$PORT)")
    p.add_argument("--sender", default="staff", help="conversation id to use")
    p.set_defaults(func=_cmd_chat)

    wx = sub.add_parser("wechat", help="WeChat official account").add_subparsers(
        dest="wx_command", required=True
    )
    p = wx.add_parser("menu", help="custom menu")
    p.add_argument("action", choices=["push", "show"])
    p.set_defaults(func=_cmd_menu)

    from bot.domains.complaints import cli as complaints_cli
    from bot.gateway.staff import cli as staff_cli
    from knowledge_base import cli as kb_cli
    from sms_gateway.broadcast import cli as broadcast_cli

    def signed_in(handler: staff_cli.Handler) -> Callable[[argparse.Namespace], int]:
        return _database_command(staff_cli.as_staff(handler))

    staff_cli.register(sub, _database_command)
    kb_cli.register(sub, signed_in)
    complaints_cli.register(sub, signed_in)
    broadcast_cli.register(sub, signed_in)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
