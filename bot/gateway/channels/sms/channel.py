"""The SMS channel: the provider's inbound and status paths (``provider.paths()``: Twilio's
``POST /sms/twilio`` and ``/sms/twilio/status``; Aliyun's pushes ``/sms/aliyun/<token>/up`` and ``…/report``).

Inbound, in order:

1. The provider verifies the signature against the public URL (``PUBLIC_BASE_URL`` + path and query as
   received, so it also works behind a reverse proxy); anything invalid gets 403.
2. The provider's message id is claimed once in Redis (``sms:in:<provider>:<id>``) by the shared webhook
   protocol (:mod:`bot.gateway.channels.webhook`): a provider retry gets the answer of the first request
   (cached) or an empty acknowledgement, never a second turn.
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
from dataclasses import dataclass, field

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.masking import mask_phone
from bot.core.metrics import Metrics
from bot.core.phone import to_e164
from bot.gateway.channels.sms.inbox import RECOVER_AFTER, PushInbox
from bot.gateway.channels.webhook import ACKED, WebhookProtocol
from bot.gateway.conversation.sender_lock import SenderTurns
from bot.gateway.conversation.service import Conversation, Inbound
from sms_gateway import texts
from sms_gateway.compose import SmsMessage, Templated
from sms_gateway.config import SmsSettings
from sms_gateway.keywords import Keyword, keyword_of
from sms_gateway.models import LedgerStatus, Purpose, Via
from sms_gateway.optout import OptOutStore
from sms_gateway.outbox import SmsOutbox
from sms_gateway.provider import (
    HttpReply,
    InboundSms,
    MalformedWebhook,
    SmsProvider,
    SyncReply,
    WebhookRejected,
    WebhookRequest,
)
from sms_gateway.providers import provider_for

log = logging.getLogger(__name__)

CHANNEL = "sms"
INBOX_SWEEP = 30.0  # seconds between looks for pushed messages a dead worker left unanswered


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
        self._protocol: WebhookProtocol[ReplyPlan] = WebhookProtocol(
            CHANNEL,
            redis=redis,
            metrics=metrics,
            deadline=settings.sync_reply_deadline,
            ttl=settings.inbound_dedup_ttl,
            ack=provider.sync_reply([]).body,
            fallback=self._fallback_plan,
        )
        self.inbox = PushInbox(redis, provider.name, ACKED, settings.inbound_dedup_ttl)
        self._queue_turns = SenderTurns(redis)
        self._sweeper: asyncio.Future[None] | None = None

    def _fallback_plan(self) -> ReplyPlan:
        """The polite answer when a turn failed: try again later, or call the center."""
        return ReplyPlan(
            self.outbox.composer.whole([texts.unavailable(self._s.center_phone)]), result="error"
        )

    @property
    def settings(self) -> SmsSettings:
        return self._s

    def routes(self) -> list[web.RouteDef]:
        inbound, status = self.provider.paths()
        return [web.post(inbound, self.receive), web.post(status, self.status)]

    def start(self) -> None:
        self.outbox.start()
        if not self.provider.supports_sync_reply and self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_inbox())

    @property
    def busy(self) -> bool:
        """Whether late replies are still being delivered."""
        return self._protocol.busy

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self._protocol.close()
        await self.outbox.stop()
        await self.provider.close()

    # ------------------------------------------------------------------------------------------ http

    def public_url(self, request: web.Request) -> str:
        """The URL the provider called and signed: the configured public base + path and query as received."""
        return self._s.public_base_url + request.raw_path

    async def _webhook(self, request: web.Request) -> WebhookRequest:
        urlencoded = request.content_type == "application/x-www-form-urlencoded"
        try:
            form = await request.post() if urlencoded else None
        except (ValueError, LookupError) as exc:  # bytes not in the declared charset, or an unknown charset
            # a form that cannot be read cannot be verified either: the provider never sends one
            raise WebhookRejected(f"undecodable form: {type(exc).__name__}") from exc
        body = b"" if form is not None else await request.read()
        return WebhookRequest(
            url=self.public_url(request),
            headers=request.headers,
            form=form if form is not None else {},
            body=body,
            query=request.query,
            path_params=dict(request.match_info),
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
            for each in messages:
                _check_sender(each)
            if len(messages) == 1 and self.provider.supports_sync_reply:
                message = messages[0]
                body = await self._protocol.answer(
                    self._dedup_key(message),
                    received,
                    turn=lambda: self._plan(message),
                    render=lambda plan: self._sync(message, plan),
                    deliver=lambda plan: self._deliver_late(message, plan),
                    log_extra={"phone": mask_phone(message.sender)},
                )
                return self._response(self._http_reply(body))
            # Batch pushes (domestic providers): each new message is stored before the push is answered,
            # then answered through the ledger in the background, each sender's messages in order.
            try:
                fresh = [m for m in messages if await self.inbox.accept(self._dedup_key(m), m)]
            except (RedisError, OSError) as exc:  # not stored: not acknowledged, the provider pushes again
                outcome = "unavailable"
                log.warning("sms push not stored: Redis unavailable", extra={"error": type(exc).__name__})
                return web.Response(status=503, text="try again")
            for group in _by_sender(fresh).values():
                self._protocol.spawn(self._answer_in_order(group))
            return self._response(self.provider.sync_reply([]))
        except WebhookRejected as exc:
            outcome = "forbidden"
            log.warning("sms webhook rejected", extra={"reason": str(exc), "path": request.path})
            return web.Response(status=403, text="forbidden")
        except MalformedWebhook as exc:
            outcome = "bad_request"
            log.warning("sms webhook malformed", extra={"reason": str(exc)})
            return web.Response(status=400, text="bad request")
        except web.HTTPRequestEntityTooLarge:
            outcome = "too_large"  # no provider sends this much: say so instead of an empty 200
            log.warning("sms webhook too large", extra={"path": request.path})
            return web.Response(status=413, text="too large")
        except Exception:
            outcome = "error"  # an empty answer: the provider shows no error to the citizen
            log.exception("sms inbound failed")
            return self._response(self.provider.sync_reply([]))
        finally:
            await self._protocol.record_request(outcome, received)

    async def status(self, request: web.Request) -> web.Response:
        try:
            webhook = await self._webhook(request)
            updates = self.provider.parse_status(webhook)
        except web.HTTPRequestEntityTooLarge:
            log.warning("sms status callback too large")
            return web.Response(status=413, text="too large")
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

    def _http_reply(self, body: str) -> HttpReply:
        return HttpReply(200, self.provider.sync_reply([]).content_type, body)

    async def _plan(self, message: InboundSms) -> ReplyPlan:
        """Keywords, opt-out state, then the conversation; the messages to answer with."""
        phone = to_e164(message.sender)
        composer = self.outbox.composer
        keyword = keyword_of(message.text)
        phone_var = {"phone": self._s.center_phone}  # the keyword templates' one variable
        if keyword is Keyword.OPT_IN:
            await self.optouts.opt_in(phone)
            confirmation = composer.whole(
                [texts.opt_in_confirmation()], templated=Templated("opt_in_confirmation", phone_var)
            )
            return ReplyPlan(confirmation, result="opt_in")
        if keyword is Keyword.OPT_OUT:
            if await self.optouts.opt_out(phone, source="keyword", keyword=message.text.strip()[:32]):
                return ReplyPlan(
                    composer.whole(
                        [texts.opt_out_confirmation(self._s.center_phone)],
                        templated=Templated("opt_out_confirmation", phone_var),
                    ),
                    Purpose.OPT_OUT_CONFIRMATION,
                    result="opt_out",
                )
            return ReplyPlan(result="opt_out_repeated")
        if await self.optouts.is_opted_out(phone):
            log.info("sms from an opted-out number: no reply", extra={"phone": mask_phone(phone)})
            return ReplyPlan(result="opted_out_silent")
        if keyword is Keyword.HELP:
            help_ = composer.whole(
                [texts.help_text(self._s.center_phone)], templated=Templated("keyword_help", phone_var)
            )
            return ReplyPlan(help_, result="help")
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
        composed = composer.reply(items, _templated(outcome.signals.get("sms_template")))
        if composed.held_back:
            await self._conversation.stash_more(sender, composed.held_back)
        return ReplyPlan(composed.messages, held_back=composed.held_back, result="reply")

    async def _answer_in_order(self, messages: list[InboundSms]) -> None:
        """Answer one sender's pushed messages in the order they came, after any of that sender's earlier
        messages still being answered by any worker (an opt-out must take effect before the next text)."""
        async with self._queue_turns.turn(f"sms-inbox:{to_e164(messages[0].sender)}"):
            for message in messages:
                if not await self.inbox.lease(message.message_id):
                    continue  # another worker is answering it
                try:
                    plan = await self._plan(message)
                except Exception:
                    log.exception("sms turn failed", extra={"phone": mask_phone(message.sender)})
                    plan = self._fallback_plan()
                await self._deliver_late(message, plan)
                await self.inbox.done(message.message_id)

    async def recover_inbox(self, older_than: float = RECOVER_AFTER) -> int:
        """Answer pushed messages a worker accepted but did not answer (it died): the sweep's job."""
        stale = await self.inbox.unanswered(older_than)
        for group in _by_sender(stale).values():
            await self._answer_in_order(group)
        return len(stale)

    async def _sweep_inbox(self) -> None:
        while True:
            await asyncio.sleep(INBOX_SWEEP)
            try:
                if recovered := await self.recover_inbox():
                    log.warning("sms inbox: answered messages a worker left", extra={"count": recovered})
            except Exception:
                log.exception("sms inbox sweep failed")

    async def _sync(self, message: InboundSms, plan: ReplyPlan) -> str:
        """The reply as the webhook's synchronous answer (TwiML), its messages written to the ledger."""
        await self._metrics.inc("govbot_sms_inbound_total", {"result": plan.result, "path": "sync"})
        if not plan.messages:
            return self.provider.sync_reply([]).body
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
        return self.provider.sync_reply(replies).body

    # ------------------------------------------------------------------------------------------ late

    async def _deliver_late(self, message: InboundSms, plan: ReplyPlan) -> None:
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


def _by_sender(messages: list[InboundSms]) -> dict[str, list[InboundSms]]:
    """The messages grouped by sender, each group in arrival order."""
    groups: dict[str, list[InboundSms]] = {}
    for message in messages:
        groups.setdefault(to_e164(message.sender), []).append(message)
    return groups


def _templated(raw: object) -> Templated | None:
    """The reply in a template's terms, as the actions gave it (``{"kind": ..., "values": {...}}``)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("kind"), str):
        return None
    values = raw.get("values")
    if not isinstance(values, dict):
        return None
    return Templated(raw["kind"], {str(k): str(v) for k, v in values.items()})


def _check_sender(message: InboundSms) -> None:
    """The sender must be a number an SMS can be sent to (the reply goes there); anything else (a signed but
    garbled ``From``) is a malformed webhook, not a turn that fails and leaves the webhook unanswered."""
    try:
        to_e164(message.sender)
    except ValueError as exc:
        raise MalformedWebhook(str(exc)) from exc


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
    """The SMS channel for ``bot.gateway.app.build_services`` (call inside the running event loop).

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
