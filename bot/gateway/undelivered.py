"""Replies that could not be delivered (platform quota, API errors) are recorded for staff follow-up."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.gateway.models import UndeliveredReply


class UndeliveredLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, sender_id: str, channel: str, text: str, reason: str) -> None:
        async with self._sessions.begin() as session:
            session.add(
                UndeliveredReply(sender_id=sender_id, channel=channel, text=text, reason=reason[:120])
            )
