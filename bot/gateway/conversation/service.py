"""The conversation: one path for every channel.

channel → ``Conversation.handle`` → (pending "更多" parts / a message being left for staff / Rasa turn) →
``Outcome`` → channel formatter.  Turns are serialised per sender across workers (``SenderTurns``); a
failed or slow dialogue engine degrades to a polite answer with the center's phone number.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis

from bot.core.config import Settings
from bot.core.masking import mask_sender
from bot.core.metrics import Metrics
from bot.core.textnorm import normalize
from bot.gateway import messages
from bot.gateway.conversation.dialogue import Dialogue, DialogueUnavailable
from bot.gateway.conversation.sender_lock import SenderTurns
from bot.gateway.conversation.turn_log import TurnLog
from bot.gateway.left_messages import LeftMessageBox

log = logging.getLogger(__name__)

LEAVE_MESSAGE_TTL = 15 * 60
MORE_TTL = 24 * 3600


@dataclass
class Inbound:
    sender_id: str  # "wx:<openid>" | "sms:<E.164>" | "console:<name>"
    channel: str
    text: str = ""
    intent: str | None = None  # set by menu clicks / QR scenes instead of text
    metadata: dict[str, Any] = field(default_factory=dict)


MAX_TURN_CHARS = 1000  # longer messages never reach Rasa (a complaint description fits easily)


@dataclass
class Outcome:
    texts: list[str] = field(default_factory=list)
    transfer_to_agent: bool = False
    degraded: bool = False
    # For the statistics (conversation_turns): how the turn was answered and the item the knowledge base
    # answered, from the actions' reply metadata ({"answered": "kb"|"fallback", "item_code": ...}).
    answered: str = "other"
    item_code: str | None = None
    # Where the actions routed the message (guide, progress, complaint, handoff, out_of_scope, fallback;
    # "other" for small talk) and the aspect a guide answer answered: for the evaluation and the logs.
    route: str = "other"
    aspect: str | None = None
    signals: dict[str, Any] = field(default_factory=dict)  # the last reply's metadata (for logs and eval)


class Conversation:
    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        dialogue: Dialogue,
        left_messages: LeftMessageBox,
        metrics: Metrics,
        turns: SenderTurns | None = None,
        turn_log: TurnLog | None = None,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._dialogue = dialogue
        self._left = left_messages
        self._metrics = metrics
        self._turns = turns or SenderTurns(redis)
        self.turn_log = turn_log

    async def handle(self, inbound: Inbound) -> Outcome:
        async with self._turns.turn(inbound.sender_id):
            outcome = await self._handle(inbound)
        if self.turn_log is not None:
            self.turn_log.record(
                inbound.sender_id, inbound.channel, outcome.answered, outcome.item_code, inbound.text
            )
        return outcome

    async def stash_more(self, sender_id: str, parts: list[str]) -> None:
        """Keep the rest of a long answer; the citizen gets it part by part by replying "更多"."""
        key = f"more:{sender_id}"
        pipe = self._redis.pipeline()
        pipe.delete(key)
        if parts:
            pipe.rpush(key, *parts)
            pipe.expire(key, MORE_TTL)
        await pipe.execute()

    async def _handle(self, inbound: Inbound) -> Outcome:
        text = normalize(inbound.text)
        if inbound.intent is None:
            if text.lower() in messages.MORE_KEYWORDS:
                # redis-py types lpop for its ``count`` form too (a list); without a count it is one item.
                part = cast(bytes | str | None, await self._redis.lpop(f"more:{inbound.sender_id}"))
                if part is not None:
                    return Outcome([part.decode() if isinstance(part, bytes) else part])
                if await self._redis.getdel(f"more-done:{inbound.sender_id}"):
                    return Outcome([messages.ALL_SHOWN])  # the last answer was already complete
            leave_key = f"leave:{inbound.sender_id}"
            if text and await self._redis.getdel(leave_key):
                if text in messages.LEAVE_MESSAGE_CANCEL:
                    return Outcome([messages.LEAVE_MESSAGE_CANCELLED])
                await self._left.store(inbound.sender_id, inbound.channel, inbound.text.strip())
                return Outcome([messages.message_left(self._settings)], answered="handoff")
            if not text:
                return Outcome([messages.no_reply(self._settings)])
            if len(text) > MAX_TURN_CHARS:  # Rasa's cost grows with the length; no question is this long
                return Outcome([messages.too_long(MAX_TURN_CHARS)])
            # A citizen's text must never be read as a Rasa "/intent{...}" command.
            text = text.lstrip("/") or text
        message = f"/{inbound.intent}" if inbound.intent else text
        metadata = {"channel": inbound.channel, **inbound.metadata}
        started = time.monotonic()
        try:
            bot_messages = await self._dialogue.turn(inbound.sender_id, message, metadata)
        except DialogueUnavailable as exc:
            await self._metrics.inc("govbot_rasa_errors_total", {"channel": inbound.channel})
            log.warning(
                "dialogue unavailable",
                extra={"sender": mask_sender(inbound.sender_id), "error": str(exc)[:200]},
            )
            return Outcome(
                [messages.fallback_unavailable(self._settings)], degraded=True, answered="fallback"
            )
        log.info(
            "turn",
            extra={
                "sender": mask_sender(inbound.sender_id),
                "channel": inbound.channel,
                "ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        outcome = Outcome()
        for msg in bot_messages:
            if msg.text:
                outcome.texts.append(msg.text)
            answered, handoff = msg.custom.get("answered"), msg.custom.get("handoff")
            route, aspect = msg.custom.get("route"), msg.custom.get("aspect")
            if isinstance(route, str):
                outcome.route = route
                outcome.aspect = aspect if isinstance(aspect, str) else None
                outcome.signals = dict(msg.custom)
            if answered in ("kb", "fallback") and outcome.answered != "handoff":
                outcome.answered = answered
                item_code = msg.custom.get("item_code")
                outcome.item_code = item_code if answered == "kb" and isinstance(item_code, str) else None
            if handoff:
                outcome.answered, outcome.item_code = "handoff", None
            if handoff == "transfer":
                outcome.transfer_to_agent = True
            elif handoff == "leave_message":
                await self._redis.set(f"leave:{inbound.sender_id}", json.dumps(True), ex=LEAVE_MESSAGE_TTL)
        if not outcome.texts and not outcome.transfer_to_agent:
            outcome.texts.append(messages.no_reply(self._settings))
        if outcome.answered == "kb":  # "更多" after it: the rest the channel kept, else "that was all"
            await self._redis.set(f"more-done:{inbound.sender_id}", 1, ex=MORE_TTL)
        return outcome
