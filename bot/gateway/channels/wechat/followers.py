"""Follow / unfollow state of WeChat users."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.gateway.models import Follower


class FollowerStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def subscribed(self, openid: str, scene: str | None = None) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(Follower, openid)
            if row is None:
                row = Follower(openid=openid)
                session.add(row)
            row.subscribed = True
            row.subscribed_at = utcnow()
            if scene:
                row.last_scene = scene

    async def unsubscribed(self, openid: str) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(Follower, openid)
            if row is None:
                row = Follower(openid=openid)
                session.add(row)
            row.subscribed = False
            row.unsubscribed_at = utcnow()

    async def get(self, openid: str) -> Follower | None:
        async with self._sessions() as session:
            return await session.get(Follower, openid)
