"""The SMS channel: ``POST /sms/<provider>`` (inbound) and ``POST /sms/<provider>/status`` (status reports).

Inbound, in order:

1. The provider verifies the signature against the public URL (``PUBLIC_BASE_URL`` + path and query as
   received, so it also works behind a reverse proxy); anything invalid gets 403.
2. The provider's message id is claimed once in Redis (``sms:in:<provider>:<id>``): a provider retry gets
   the answer of the first request (cached) or an empty acknowledgement, never a second turn.
3. Keywords before the bot: opt-in (START/订阅/恢复) first, then opt-out (T/TD/N/退订/STOP/UNSUBSCRIBE: one
   confirmation, then silence), then silence for an opted-out number, then help (HELP/帮助/?).
4. Everything else goes to the conversation as ``sms:<E.164>`` with channel metadata.
5. The reply is composed (signature, budget, "更多") and written to the ledger; if it was ready within
   ``SMS_SYNC_REPLY_DEADLINE`` it is returned as TwiML ``<Message>`` elements (each with its ledger row's
   status URL), otherwise the webhook gets an empty answer and the reply is sent through the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.service import Conversation, Inbound
from bot.metrics import Metrics
from sms_gateway import texts
from sms_gateway.compose import SmsMessage
from sms_gateway.config import SmsSettings
from sms_gateway.keywords import Keyword, keyword_of
from sms_gateway.models import LedgerStatus, Purpose, Via
from sms_gateway.optout import OptOutStore
from sms_gateway.outbox import SmsOutbox
from sms_gateway.phone import masked, to_e164
from sms_gateway.provider import (
    HttpReply,
    InboundSms,
    MalformedWebhook,
    SmsProvider,
    SyncReply,
    WebhookRejected,
    WebhookRequest,
)

log = logging.getLogger(__name__)

CHANNEL = "sms"


@dataclass
class ReplyPlan:
    messages: list[SmsMessage] = field(default_factory=list)
    purpose: Purpose = Purpose.REPLY
    held_back: list[str] = field(default_factory=list)
    result: str = "reply"  # for metrics: reply | opt_out | opt_in | help | opted_out_silent | ...


class SmsChannel:
    name = CHANNEL

    def __init__(
        self,
        settings: SmsSettings,
        *,
        redis: aioredis.Redis,
        conversation: Conversation,
        provider: SmsProvider,
        outbox: SmsOutbox,
        optouts: OptOutStore,
        metrics: Metrics,
    ) -> None:
        self._s = settings
        self._redis = redis
        self._conversation = conversation
        self.provider = provider
        self.outbox = outbox
        self.optouts = optouts
        self._metrics = metrics
        self._background: set[asyncio.Task[Any]] = set()

    def routes(self) -> list[web.RouteDef]:
        base = f"/sms/{self.provider.name}"
        return [web.post(base, self.receive), web.post(f"{base}/status", self.status)]

    def start(self) -> None:
        self.outbox.start()

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=15)
        await self.outbox.stop()
        await self.provider.close()

    # ------------------------------------------------------------------------------------------ http

    def public_url(self, request: web.Request) -> str:
        """The URL the provider called and signed: the configured public base + path and query as received."""
        return self._s.public_base_url + request.raw_path

    async def _webhook(self, request: web.Request) -> WebhookRequest:
        form = await request.post() if request.content_type == "application/x-www-form-urlencoded" else None
        body = b"" if form is not None else await request.read()
        return WebhookRequest(
            url=self.public_url(request),
            headers=request.headers,
            form=form if form is not None else {},
            body=body,
            query=request.query,
        )

    @staticmethod
    def _response(reply: HttpReply) -> web.Response:
        return web.Response(status=reply.status, text=reply.body, content_type=reply.content_type)

    async def receive(self, request: web.Request) -> web.Response:
        received = time.monotonic()
        outcome = "ok"
        try:
            webhook = await self._webhook(request)
            messages = self.provider.parse_inbound(webhook)
            if len(messages) == 1 and self.provider.supports_sync_reply:
                return self._response(await self._answer(messages[0], received))
            for message in messages:  # batch pushes (domestic providers): every reply goes via the ledger
                if await self._claim(message) is None:
                    self._spawn(self._deliver_late(message, asyncio.ensure_future(self._plan(message))))
            return self._response(self.provider.sync_reply([]))
        except WebhookRejected as exc:
            outcome = "forbidden"
            log.warning("sms webhook rejected", extra={"reason": str(exc), "path": request.path})
            return web.Response(status=403, text="forbidden")
        except MalformedWebhook as exc:
            outcome = "bad_request"
            log.warning("sms webhook malformed", extra={"reason": str(exc)})
            return web.Response(status=400, text="bad request")
        except Exception:
            outcome = "error"  # an empty answer: the provider shows no error to the citizen
            log.exception("sms inbound failed")
            return self._response(self.provider.sync_reply([]))
        finally:
            await self._metrics.inc("govbot_requests_total", {"channel": CHANNEL, "outcome": outcome})
            await self._metrics.observe(
                "govbot_request_seconds", {"channel": CHANNEL}, time.monotonic() - received
            )

    async def status(self, request: web.Request) -> web.Response:
        try:
            webhook = await self._webhook(request)
            updates = self.provider.parse_status(webhook)
        except WebhookRejected as exc:
            log.warning("sms status callback rejected", extra={"reason": str(exc)})
            return web.Response(status=403, text="forbidden")
        except MalformedWebhook as exc:
            log.warning("sms status callback malformed", extra={"reason": str(exc)})
            return web.Response(status=400, text="bad request")
        for update in updates:
            result = await self.outbox.apply(update)
            if result == "unknown_ledger":
                log.warning(
                    "sms status for an unknown ledger row",
                    extra={"ledger_id": update.ledger_id, "sid": update.provider_sid},
                )
        return self._response(self.provider.status_ack())

    # ------------------------------------------------------------------------------------------ inbound

    def _dedup_key(self, message: InboundSms) -> str:
        return f"sms:in:{self.provider.name}:{message.message_id}"

    async def _claim(self, message: InboundSms) -> bytes | None:
        """None when this request owns the message; else the first request's state."""
        key = self._dedup_key(message)
        if await self._redis.set(key, b"p", nx=True, ex=self._s.inbound_dedup_ttl):
            return None
        await self._metrics.inc("govbot_dedup_hits_total", {"channel": CHANNEL})
        log.info("sms inbound repeated", extra={"message_id": message.message_id})
        return await self._redis.get(key) or b"s"

    async def _answer(self, message: InboundSms, received: float) -> HttpReply:
        key = self._dedup_key(message)
        deadline = received + self._s.sync_reply_deadline
        if await self._claim(message) is not None:
            return await self._await_cached(key, deadline)
        task = asyncio.ensure_future(self._plan(message))
        try:
            plan = await asyncio.wait_for(asyncio.shield(task), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            await self._metrics.inc("govbot_deadline_misses_total", {"channel": CHANNEL})
            await self._redis.set(key, b"s", ex=self._s.inbound_dedup_ttl)
            self._spawn(self._deliver_late(message, task))
            return self.provider.sync_reply([])
        except Exception:
            log.exception("sms turn failed", extra={"phone": masked(message.sender)})
            plan = ReplyPlan(
                self.outbox.composer.whole([texts.unavailable(self._s.center_phone)]), result="error"
            )
        try:
            reply = await self._sync(message, plan)
        except Exception:
            await self._redis.set(key, b"s", ex=self._s.inbound_dedup_ttl)
            raise
        await self._redis.set(key, b"r" + reply.body.encode("utf-8"), ex=self._s.inbound_dedup_ttl)
        return reply

    async def _await_cached(self, key: str, deadline: float) -> HttpReply:
        while True:
            state = await self._redis.get(key)
            if state is not None and state.startswith(b"r"):
                content_type = self.provider.sync_reply([]).content_type
                return HttpReply(200, content_type, state[1:].decode("utf-8"))
            if state is None or state == b"s" or time.monotonic() >= deadline:
                return self.provider.sync_reply([])
            await asyncio.sleep(0.02)

    async def _plan(self, message: InboundSms) -> ReplyPlan:
        """Keywords, opt-out state, then the conversation; the messages to answer with."""
        phone = to_e164(message.sender)
        composer = self.outbox.composer
        keyword = keyword_of(message.text)
        if keyword is Keyword.OPT_IN:
            await self.optouts.opt_in(phone)
            return ReplyPlan(composer.whole([texts.opt_in_confirmation()]), result="opt_in")
        if keyword is Keyword.OPT_OUT:
            if await self.optouts.opt_out(phone, source="keyword", keyword=message.text.strip()[:32]):
                return ReplyPlan(
                    composer.whole([texts.opt_out_confirmation(self._s.center_phone)]),
                    Purpose.OPT_OUT_CONFIRMATION,
                    result="opt_out",
                )
            return ReplyPlan(result="opt_out_repeated")
        if await self.optouts.is_opted_out(phone):
            log.info("sms from an opted-out number: no reply", extra={"phone": masked(phone)})
            return ReplyPlan(result="opted_out_silent")
        if keyword is Keyword.HELP:
            return ReplyPlan(composer.whole([texts.help_text(self._s.center_phone)]), result="help")
        sender = f"sms:{phone}"
        inbound = Inbound(
            sender_id=sender,
            channel=CHANNEL,
            text=message.text,
            metadata={
                "phone": phone,
                "provider": self.provider.name,
                "message_id": message.message_id,
                **{k: v for k, v in message.metadata.items() if v is not None},
            },
        )
        outcome = await self._conversation.handle(inbound)
        items = list(outcome.texts)
        if outcome.transfer_to_agent and not items:
            items.append(texts.transfer_by_phone(self._s.center_phone))
        composed = composer.reply(items)
        if composed.held_back:
            await self._conversation.stash_more(sender, composed.held_back)
        return ReplyPlan(composed.messages, held_back=composed.held_back, result="reply")

    async def _sync(self, message: InboundSms, plan: ReplyPlan) -> HttpReply:
        await self._metrics.inc("govbot_sms_inbound_total", {"result": plan.result, "path": "sync"})
        if not plan.messages:
            return self.provider.sync_reply([])
        entries = await self.outbox.write(
            to_e164(message.sender),
            plan.messages,
            purpose=plan.purpose,
            key=f"reply:{self.provider.name}:{message.message_id}",
            reply_to=message.message_id,
            via=Via.SYNC,
        )
        replies = [
            SyncReply(e.body, self.outbox.status_url(e.id, e.attempts))
            for e in entries
            if e.status == LedgerStatus.SENDING and e.via == Via.SYNC
        ]
        return self.provider.sync_reply(replies)

    # ------------------------------------------------------------------------------------------ late

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deliver_late(self, message: InboundSms, task: asyncio.Future[ReplyPlan]) -> None:
        try:
            plan = await task
        except Exception:
            log.exception("late sms turn failed", extra={"phone": masked(message.sender)})
            plan = ReplyPlan(
                self.outbox.composer.whole([texts.unavailable(self._s.center_phone)]), result="error"
            )
        await self._metrics.inc("govbot_sms_inbound_total", {"result": plan.result, "path": "async"})
        if not plan.messages:
            return
        await self.outbox.send_messages(
            message.sender,
            plan.messages,
            purpose=plan.purpose,
            key=f"reply:{self.provider.name}:{message.message_id}",
            reply_to=message.message_id,
        )


def provider_for(settings: SmsSettings, http: aiohttp.ClientSession) -> SmsProvider:
    """The provider ``SMS_PROVIDER`` names (the one place that picks an adapter)."""
    settings.check()
    if settings.provider == "twilio":
        from sms_gateway.twilio.provider import TwilioProvider

        return TwilioProvider(settings, http)
    raise ValueError(f"no SMS provider {settings.provider!r}")


def build_sms_channel(
    settings: SmsSettings,
    *,
    redis: aioredis.Redis,
    conversation: Conversation,
    sessions: async_sessionmaker[AsyncSession],
    metrics: Metrics,
    http: aiohttp.ClientSession,
    provider: SmsProvider | None = None,
    start_worker: bool = True,
) -> SmsChannel:
    """The SMS channel for ``bot.gateway.build_services`` (call inside the running event loop).

    ``provider`` overrides the one named by ``SMS_PROVIDER``; ``start_worker=False`` leaves the ledger's
    background sweep (crash recovery, retries, reconciliation) to the caller (``channel.start()``)."""
    settings.check()
    if provider is None:
        provider = provider_for(settings, http)
    optouts = OptOutStore(sessions)
    outbox = SmsOutbox(settings, sessions, provider, optouts, metrics)
    channel = SmsChannel(
        settings,
        redis=redis,
        conversation=conversation,
        provider=provider,
        outbox=outbox,
        optouts=optouts,
        metrics=metrics,
    )
    if start_worker:
        channel.start()
    return channel
