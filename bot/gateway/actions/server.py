"""The action server: Rasa's action protocol (``POST /webhook``) on aiohttp, using rasa-sdk's executor.

It runs as its own process (``govbot actions``, 127.0.0.1:ACTIONS_PORT) beside the gateway, on the same
Python and the same domain code.  A separate process keeps it private (Rasa calls it on loopback only),
lets a slow action never stall the gateway's 5-second WeChat path, and lets it restart on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

from bot.core.config import Settings
from bot.core.db import create_engine, session_factory
from bot.core.metrics import Metrics
from bot.core.office_hours import OfficeHours
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.complaints.service import ComplaintService
from bot.domains.progress.factory import build_progress_service
from bot.gateway.actions import grievance
from bot.gateway.actions.complaints import complaint_actions
from bot.gateway.actions.context import ActionContext
from bot.gateway.actions.guide import ActionAnswerGuide, ActionChooseOption
from bot.gateway.actions.misc import (
    ActionDefaultFallback,
    ActionHumanHandoff,
    ActionOutOfScope,
    ActionSmallTalk,
)
from bot.gateway.actions.progress import PROGRESS_ACTIONS
from knowledge_base import lookup as kb_lookup
from knowledge_base.service import KnowledgeBase

log = logging.getLogger(__name__)

EXECUTOR = web.AppKey("executor", ActionExecutor)
KB = web.AppKey("kb", KnowledgeBase)
CONTEXT = web.AppKey("context", ActionContext)
ACTION_CLASSES = (
    ActionAnswerGuide,
    ActionChooseOption,
    ActionHumanHandoff,
    ActionDefaultFallback,
    ActionOutOfScope,
    ActionSmallTalk,
    *PROGRESS_ACTIONS,
)


def build_context(settings: Settings) -> ActionContext:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    redis = aioredis.from_url(settings.redis_url)
    kb = KnowledgeBase(sessions, redis, phone=settings.center_phone, office_hours=settings.office_hours)
    return ActionContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        kb=kb,
        office_hours=OfficeHours.parse(settings.office_hours_spec, settings.timezone, settings.calendar_file),
        clock=lambda: datetime.now(UTC),
        progress=build_progress_service(settings, redis, sessions, kb=kb, metrics=Metrics(redis)),
        # Filing only: notices to citizens are delivered by the gateway's complaint sweep.
        complaints=ComplaintService(sessions, settings=ComplaintSettings.from_env()),
    )


def build_executor(ctx: ActionContext) -> ActionExecutor:
    executor = ActionExecutor()
    for cls in ACTION_CLASSES:
        executor.register_action(cls(ctx))
    for action in complaint_actions(ctx):
        executor.register_action(action)
    return executor


def json_response(payload: Any, status: int = 200) -> web.Response:
    try:
        body = orjson.dumps(payload)
    except TypeError:  # what orjson refuses (e.g. non-string keys, huge ints) the standard library may take
        body = json.dumps(payload, ensure_ascii=False).encode()
    return web.Response(body=body, status=status, content_type="application/json")


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # e.g. NaN, which Python's json (Rasa's encoder) writes and reads
        return json.loads(raw)


async def webhook(request: web.Request) -> web.Response:
    try:
        action_call: dict[str, Any] = parse_json(await request.read())
    except ValueError:
        return json_response({"error": "Invalid body request"}, status=400)
    executor = request.app[EXECUTOR]
    try:
        result = await executor.run(action_call)
    except ActionExecutionRejection as exc:
        return json_response({"error": exc.message, "action_name": exc.action_name}, status=400)
    except ActionNotFoundException as exc:
        log.error("unknown action", extra={"action": exc.action_name})
        return json_response({"error": exc.message, "action_name": exc.action_name}, status=404)
    except Exception:
        log.exception("action failed", extra={"action": action_call.get("next_action")})
        # Rasa turns a failed action into no reply: answer politely instead of crashing the turn.
        ctx = request.app[CONTEXT]
        text = f"抱歉，系统处理您的请求时出了点问题，请稍后再试，或拨打 {ctx.settings.center_phone}。"
        return json_response({"events": [], "responses": [{"text": text}]})
    return json_response(result.model_dump() if result else None)


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def list_actions(request: web.Request) -> web.Response:
    return web.json_response([a.model_dump() for a in request.app[EXECUTOR].list_actions()])


def build_app(ctx: ActionContext) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[CONTEXT] = ctx
    app[KB] = ctx.kb
    kb_lookup.setup_routes(app, KB)  # the gateway's staff search and tester ask this index
    app[EXECUTOR] = build_executor(ctx)
    app.add_routes(
        [web.post("/webhook", webhook), web.get("/health", health), web.get("/actions", list_actions)]
    )

    async def _warm(_app: web.Application) -> None:
        await asyncio.to_thread(grievance.warm_up)  # before the first message, not during it

    app.on_startup.append(_warm)

    async def _close(_app: web.Application) -> None:
        if ctx.progress is not None:
            await ctx.progress.close()
        await ctx.engine.dispose()

    app.on_cleanup.append(_close)
    return app
