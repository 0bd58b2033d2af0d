"""The aiohttp gateway: channels, staff API, health and metrics, wired from Settings.

``build_app(settings)`` is used by ``govbot serve`` (one process per ``GATEWAY_WORKERS``, all on one port
with SO_REUSEPORT) and by the tests.  No state another worker needs lives only in this process: dedup,
turn order, tokens, quotas, metrics and "更多" parts are in Redis; records are in the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import cast

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.adapters.wechat.api_client import WeChatAPI, WeChatApiClient
from bot.adapters.wechat.templates import TemplateSender
from bot.adapters.wechat.token_service import TokenService
from bot.core.config import Settings
from bot.core.db import create_engine, session_factory
from bot.core.metrics import Metrics
from bot.core.ratelimit import WindowLimit
from bot.domains.complaints import app as complaints_app
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.complaints.delivery import (
    ChannelReplySender,
    SmsReplySender,
    WeChatReplySender,
)
from bot.domains.complaints.service import ComplaintService
from bot.domains.mass_send.notices import NoticeSender, NoticeSettings
from bot.domains.mass_send.service import MassSendAPI, MassSendRunner
from bot.domains.progress.audience import BoundFollowers
from bot.domains.progress.config import ProgressSettings
from bot.domains.progress.factory import build_progress_notifier
from bot.domains.progress.notifier import ProgressNotifier
from bot.domains.staff import Staff
from bot.domains.staff.config import StaffSettings
from bot.gateway import openapi
from bot.gateway import web as web_console
from bot.gateway.channels.base import Channel
from bot.gateway.channels.sms import build_sms_channel
from bot.gateway.channels.wechat.cs_quota import CsQuota
from bot.gateway.channels.wechat.followers import FollowerStore
from bot.gateway.channels.wechat.handler import WeChatChannel
from bot.gateway.conversation.dialogue import Dialogue, RasaRestDialogue
from bot.gateway.conversation.service import Conversation, Inbound
from bot.gateway.conversation.turn_log import TurnLog
from bot.gateway.left_messages import LeftMessageBox
from bot.gateway.slow_clients import body_timeout_middleware
from bot.gateway.staff import admin as staff_admin
from bot.gateway.staff import views as staff_views
from bot.gateway.staff.auth import STAFF, actor_of, staff_auth_middleware
from bot.gateway.undelivered import UndeliveredLog
from knowledge_base import staff_api as kb_staff_api
from knowledge_base.lookup import KbLookup, RemoteKnowledgeBase
from knowledge_base.service import KnowledgeBase
from sms_gateway import SmsSettings
from sms_gateway.broadcast import api as broadcast_api
from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.engine import live_workers
from sms_gateway.broadcast.limiter import Priority, RateLimitedProvider, RateLimiter
from sms_gateway.broadcast.service import BroadcastService
from sms_gateway.outbox import SmsOutbox
from sms_gateway.providers import provider_for

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: aiohttp.ClientSession
    dialogue: Dialogue
    metrics: Metrics
    conversation: Conversation
    wechat_api: WeChatAPI
    kb: KnowledgeBase  # the catalogue's data (items, edits); its search is asked of the action server:
    kb_lookup: KbLookup  # (knowledge_base/lookup.py) so that no gateway worker builds a second index
    channels: list[Channel] = field(default_factory=list)
    complaints: ComplaintService | None = None
    broadcasts: BroadcastService | None = None
    mass_send: MassSendRunner | None = None  # WeChat campaigns (with broadcasts and a real WeChat client)
    progress_notifier: ProgressNotifier | None = None
    staff: Staff | None = None


SERVICES = web.AppKey("services", Services)
KB = web.AppKey("kb", KbLookup)
BROADCASTS = web.AppKey("broadcasts", BroadcastService)
NOTIFIER_TASK = web.AppKey("progress_notifier_task", asyncio.Task)
MASS_SEND_TASK = web.AppKey("mass_send_task", asyncio.Task)


async def build_services(
    settings: Settings,
    *,
    redis: aioredis.Redis | None = None,
    dialogue: Dialogue | None = None,
    wechat_api: WeChatAPI | None = None,
    sms_settings: SmsSettings | None = None,
) -> Services:
    """Everything a gateway worker needs.  The SMS channel is on when SMS_PROVIDER is set up (the demo
    configuration points it at the Twilio fake); with SMS_PROVIDER=none, or without the provider's
    credentials, it is off and a warning says so."""
    redis = redis or aioredis.from_url(settings.redis_url, decode_responses=False)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    http = aiohttp.ClientSession()
    metrics = Metrics(redis)
    dialogue = dialogue or RasaRestDialogue(http, settings.rasa_url, settings.rasa_timeout)
    turn_log = TurnLog(sessions, settings.wechat_token.get_secret_value().encode())
    conversation = Conversation(
        settings, redis, dialogue, LeftMessageBox(sessions), metrics, turn_log=turn_log
    )
    wechat_api = wechat_api or _wechat_api(settings, redis, http)
    kb = KnowledgeBase(sessions, redis, phone=settings.center_phone, office_hours=settings.office_hours)
    lookup = RemoteKnowledgeBase(http, f"http://127.0.0.1:{settings.actions_port}")
    services = Services(
        settings, redis, engine, sessions, http, dialogue, metrics, conversation, wechat_api, kb, lookup
    )
    services.staff = Staff.build(sessions, redis, StaffSettings.from_env())
    wechat = WeChatChannel(
        settings,
        redis,
        conversation,
        wechat_api,
        CsQuota(redis, settings.wechat_app_id),
        FollowerStore(sessions),
        UndeliveredLog(sessions),
        metrics,
    )
    services.channels.append(wechat)
    sms_outbox = _add_sms(services, sms_settings)
    if services.broadcasts is not None and hasattr(wechat_api, "mass_send_text"):
        audience, notice_settings = BoundFollowers(sessions), NoticeSettings.from_env()
        services.broadcasts.case_audience = audience  # campaigns to citizens bound to a case
        services.broadcasts.notice_template_ready = bool(notice_settings.template_id)
        notices = NoticeSender(
            services.broadcasts, cast(TemplateSender, wechat_api), audience, notice_settings
        )
        services.mass_send = MassSendRunner(
            services.broadcasts, cast(MassSendAPI, wechat_api), notices=notices
        )
        wechat.on_mass_finished = services.mass_send.finished
        wechat.on_template_finished = notices.finished
        services.broadcasts.wechat_tags = cast(MassSendAPI, wechat_api).tags
    services.complaints = _complaints(sessions, wechat_api, sms_outbox)
    if ProgressSettings.from_env().notifier_enabled:
        services.progress_notifier = build_progress_notifier(
            settings, redis, sessions, wechat=wechat_api, sms=sms_outbox, kb=kb, metrics=metrics, http=http
        )
    return services


def _wechat_api(settings: Settings, redis: aioredis.Redis, http: aiohttp.ClientSession) -> WeChatAPI:
    secret = settings.wechat_app_secret.get_secret_value()
    tokens = TokenService(redis, http, settings.wechat_app_id, secret, settings.wechat_api_base)
    return WeChatApiClient(http, tokens, settings.wechat_api_base)


def _add_sms(services: Services, sms_settings: SmsSettings | None) -> SmsOutbox | None:
    """The SMS channel and broadcasts, when SMS is configured; the outbox for notices (or None)."""
    sms = sms_settings or SmsSettings.from_env()
    if not sms.enabled:
        return None
    if not (sms.configured or sms_settings is not None):
        log.warning(
            "SMS channel off: the provider's credentials are not set (SMS_PROVIDER=none silences this)",
            extra={"provider": sms.provider},
        )
        return None
    bulk = BroadcastSettings.from_env()
    # Replies and notifications share the broadcast workers' segment budget, ahead of bulk sends.
    limiter = RateLimiter(services.redis, bulk.rate, bulk.burst)
    provider = RateLimitedProvider(provider_for(sms, services.http), limiter, Priority.HIGH)
    channel = build_sms_channel(
        sms,
        redis=services.redis,
        conversation=services.conversation,
        sessions=services.sessions,
        metrics=services.metrics,
        http=services.http,
        provider=provider,
    )
    services.channels.append(channel)
    services.broadcasts = BroadcastService(bulk, services.sessions, channel.outbox.composer)
    return channel.outbox


def _complaints(
    sessions: async_sessionmaker[AsyncSession], wechat_api: WeChatAPI, sms_outbox: SmsOutbox | None
) -> ComplaintService:
    settings = ComplaintSettings.from_env()
    wechat = WeChatReplySender(wechat_api, settings.template_id or None, fields=settings.template_fields)
    sms = SmsReplySender(sms_outbox) if sms_outbox is not None else None
    return ComplaintService(sessions, settings=settings, sender=ChannelReplySender(wechat=wechat, sms=sms))


async def close_services(services: Services) -> None:
    if services.conversation.turn_log is not None:
        await services.conversation.turn_log.drain()
    for channel in services.channels:
        await channel.close()
    await services.http.close()
    await services.engine.dispose()
    await services.redis.aclose()


async def healthz(request: web.Request) -> web.Response:
    """What this gateway worker depends on, each ``ok`` or what is wrong: Redis, the database, and — when
    the dialogue is Rasa — the Rasa servers and the action server; when campaigns are on, the broadcast
    workers' heartbeats.  Any of them wrong: ``degraded`` and 503 (citizens still get polite replies)."""
    services = request.app[SERVICES]
    checks: dict[str, str] = {}
    try:
        await services.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    try:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    healthy = getattr(services.dialogue, "healthy", None)
    if healthy is not None:
        checks["rasa"] = "ok" if await healthy() else "error: unreachable"
        checks["actions"] = await _action_server_check(services)
    if services.broadcasts is not None and checks["redis"] == "ok":
        live = await live_workers(services.redis)
        checks["broadcast_workers"] = "ok" if live else "error: no live worker"
    ok = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if ok else "degraded", "checks": checks}, status=200 if ok else 503
    )


async def _action_server_check(services: Services) -> str:
    url = f"http://127.0.0.1:{services.settings.actions_port}/health"
    try:
        async with services.http.get(url, timeout=aiohttp.ClientTimeout(total=1.0)) as resp:
            return "ok" if resp.status == 200 else f"error: HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError):
        return "error: unreachable"


async def metrics_view(request: web.Request) -> web.Response:
    body = await request.app[SERVICES].metrics.render()
    return web.Response(
        text=body, content_type="text/plain", charset="utf-8", headers={"Cache-Control": "no-store"}
    )


async def chat_view(request: web.Request) -> web.Response:
    """``POST /api/chat {"sender": "...", "text": "..."}``: the console's way into the conversation (for
    staff with ``chat.test``; the conversation's sender is ``console:<username>:<sender>``)."""
    services = request.app[SERVICES]
    try:
        body = await request.json()
        sender, text_in = str(body["sender"]), str(body["text"])
    except (ValueError, KeyError, TypeError):
        return web.json_response(
            {"error": "bad_request", "message": "需要 JSON 字段 sender 和 text"}, status=400
        )
    started = time.monotonic()
    who = actor_of(request).username
    inbound = Inbound(f"console:{who}:{sender}", "console", text=text_in)
    outcome = await services.conversation.handle(inbound)
    await services.metrics.observe(
        "govbot_request_seconds", {"channel": "console"}, time.monotonic() - started
    )
    return web.json_response(
        {"texts": outcome.texts, "transfer_to_agent": outcome.transfer_to_agent, "degraded": outcome.degraded}
    )


def _max_body(services: Services) -> int:
    """The largest request body: recipient and catalogue uploads (BROADCAST_MAX_UPLOAD_MB) plus room for
    the form around them; the WeChat and SMS webhooks enforce their own, smaller limits."""
    uploads = services.broadcasts.settings.max_upload_bytes if services.broadcasts is not None else 0
    return max(services.settings.wechat_max_body_bytes * 2, uploads + 1024 * 1024, 1024 * 1024)


def build_app(services: Services) -> web.Application:
    settings = services.settings
    app = web.Application(
        client_max_size=_max_body(services),
        middlewares=[
            body_timeout_middleware(settings.http_body_timeout),
            staff_auth_middleware(settings.public_base_url),
        ],
    )
    app[SERVICES] = services
    app[STAFF] = services.staff or Staff.build(services.sessions, services.redis)
    staff_views.setup_routes(app, settings.public_base_url)
    staff_admin.setup_routes(app)
    openapi.setup_routes(app)
    web_console.setup(app, settings.center_name)
    app[KB] = services.kb_lookup
    kb_staff_api.setup_routes(app, KB)
    if services.broadcasts is not None:
        app[BROADCASTS] = services.broadcasts
        broadcast_api.setup_routes(app, BROADCASTS)
    if services.complaints is not None:
        interval = services.complaints.settings.sweep_interval
        per_minute = services.complaints.settings.open311_posts_per_minute
        complaints_app.setup(
            app,
            services.complaints,
            sweep_interval=interval,
            open311_keys=app[STAFF].tokens.authenticate,
            open311_limit=WindowLimit(services.redis, "govbot:open311:posts", per_minute, 60.0),
        )
    for channel in services.channels:
        app.add_routes(channel.routes())
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/metrics", metrics_view),
            web.post("/api/chat", chat_view),
        ]
    )

    notifier = services.progress_notifier
    stop_notifier = asyncio.Event()

    async def _start_notifier(app: web.Application) -> None:
        if notifier is not None:
            app[NOTIFIER_TASK] = asyncio.create_task(notifier.run_forever(stop_notifier))
        if services.mass_send is not None:
            app[MASS_SEND_TASK] = asyncio.create_task(services.mass_send.run_forever(stop_notifier))

    async def _close(app: web.Application) -> None:
        stop_notifier.set()
        tasks = [t for t in (app.get(NOTIFIER_TASK), app.get(MASS_SEND_TASK)) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if notifier is not None:
            await notifier.close()
        await close_services(services)

    app.on_startup.append(_start_notifier)
    app.on_cleanup.append(_close)
    return app


async def create_app(settings: Settings) -> web.Application:
    return build_app(await build_services(settings))
