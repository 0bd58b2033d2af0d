"""Messages citizens leave for staff outside office hours."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.gateway.models import LeftMessage


class LeftMessageBox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def store(self, sender_id: str, channel: str, text: str) -> int:
        async with self._sessions.begin() as session:
            row = LeftMessage(sender_id=sender_id, channel=channel, text=text)
            session.add(row)
            await session.flush()
            return row.id
