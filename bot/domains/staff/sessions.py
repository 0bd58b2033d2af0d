"""Browser sessions in Redis.

The cookie holds a random session id (256 bits); Redis holds, under its SHA-256, the account id, the
account's session epoch at sign-in, a CSRF token and the sign-in time.  A session ends when it is idle
for ``STAFF_SESSION_IDLE_SECONDS``, ``STAFF_SESSION_MAX_SECONDS`` after sign-in, at sign-out, and for all
of a person's sessions at once when their epoch moves (sign out everywhere, password change, new roles,
disabling).  Every sign-in gets a new id, so an id planted before sign-in is worth nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import redis.asyncio as aioredis

from bot.domains.staff.config import StaffSettings

KEY = "staff:session:{}"


@dataclass(frozen=True)
class BrowserSession:
    account_id: int
    epoch: int
    csrf: str
    created: float
    last_seen: float
    client_ip: str
    user_agent: str


def _key(session_id: str) -> str:
    return KEY.format(hashlib.sha256(session_id.encode("utf-8")).hexdigest())


class SessionStore:
    def __init__(
        self, redis: aioredis.Redis, settings: StaffSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._s = settings
        self._clock = clock

    async def create(
        self, account_id: int, epoch: int, client_ip: str, user_agent: str
    ) -> tuple[str, BrowserSession]:
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        session = BrowserSession(
            account_id, epoch, secrets.token_urlsafe(32), now, now, client_ip[:64], user_agent[:255]
        )
        await self._redis.set(_key(session_id), json.dumps(asdict(session)), ex=self._s.session_idle)
        return session_id, session

    async def load(self, session_id: str) -> BrowserSession | None:
        """The live session (its idle time restarts), or None."""
        if not session_id or len(session_id) > 100:
            return None
        key = _key(session_id)
        raw = await self._redis.get(key)
        if raw is None:
            return None
        session = BrowserSession(**json.loads(raw))
        now = self._clock()
        left = session.created + self._s.session_max - now
        if left <= 0 or now - session.last_seen > self._s.session_idle:
            await self._redis.delete(key)
            return None
        session = replace(session, last_seen=now)
        ttl = max(1, int(min(self._s.session_idle, left)) + 1)
        await self._redis.set(key, json.dumps(asdict(session)), ex=ttl)
        return session

    async def end(self, session_id: str) -> None:
        await self._redis.delete(_key(session_id))
