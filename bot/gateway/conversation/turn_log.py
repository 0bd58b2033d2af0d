"""One row per citizen turn in ``conversation_turns`` for the console's dashboard: when, which channel, a
keyed hash of the sender (never the id itself), how the turn was answered (``kb`` | ``fallback`` |
``handoff`` | ``other``), the item the knowledge base answered, and the length of the text.

Recording never delays or fails a citizen's turn: the insert runs in the background and an error is logged
and forgotten.  ``drain()`` waits for the inserts in flight (shutdown, tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.gateway.models import ConversationTurn

log = logging.getLogger(__name__)

OUTCOMES = ("kb", "fallback", "handoff", "other")


def sender_hash(sender_id: str, key: bytes) -> str:
    """A keyed hash: a phone number's hash cannot be found by hashing every phone number."""
    return hmac.new(key, sender_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


class TurnLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], key: bytes) -> None:
        self._sessions = sessions
        self._key = key or b"govbot-turns"
        self._pending: set[asyncio.Task[None]] = set()

    def record(self, sender_id: str, channel: str, outcome: str, item_code: str | None, text: str) -> None:
        row = ConversationTurn(
            at=utcnow(),
            channel=channel[:16],
            sender_hash=sender_hash(sender_id, self._key),
            outcome=outcome if outcome in OUTCOMES else "other",
            item_code=(item_code or None) and str(item_code)[:32],
            text_length=len(text),
        )
        task = asyncio.create_task(self._insert(row))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _insert(self, row: ConversationTurn) -> None:
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except Exception as exc:  # a statistic must never break a turn
            log.warning("turn not recorded", extra={"error": f"{type(exc).__name__}: {str(exc)[:200]}"})

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
