"""Rate limits on case lookups, against enumeration and guessing of the phone digits (Redis).

Failed lookups (unknown ticket, not the applicant, wrong digits, malformed ticket) are counted per citizen
(sender id) in a window; reaching the limit starts a cool-down during which the citizen's lookups are
refused without calling the backend.  Failed verifications are also counted per ticket, from anyone: a
ticket whose 4 digits are being guessed from many accounts gets the same cool-down (lookups from accounts
already bound to it are not affected).  A success never resets a counter, so an attacker cannot interleave
their own case to keep guessing.
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis


def _key_part(value: str) -> str:
    # Keys carry a hash, not the openid / phone itself (Redis keys show up in monitoring tools).
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class LookupLimiter:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        max_failures: int = 5,
        window: float = 3600.0,
        cooldown: float = 3600.0,
        ticket_max_failures: int = 5,
        prefix: str = "progress:rl",
    ) -> None:
        self._redis = redis
        self._max = max_failures
        self._ticket_max = ticket_max_failures
        self._window_ms = max(1, int(window * 1000))
        self._cooldown_ms = max(1, int(cooldown * 1000))
        self._prefix = prefix

    def _keys(self, kind: str, ident: str) -> tuple[str, str]:
        part = _key_part(ident)
        return f"{self._prefix}:fail:{kind}:{part}", f"{self._prefix}:cool:{kind}:{part}"

    async def citizen_blocked(self, sender_id: str) -> bool:
        return bool(await self._redis.exists(self._keys("s", sender_id)[1]))

    async def ticket_blocked(self, ticket_no: str) -> bool:
        return bool(await self._redis.exists(self._keys("t", ticket_no)[1]))

    async def record_failure(self, sender_id: str, ticket_no: str | None = None) -> None:
        """Count one failure for the citizen (and for the ticket when given)."""
        await self._bump("s", sender_id, self._max)
        if ticket_no:
            await self._bump("t", ticket_no, self._ticket_max)

    async def _bump(self, kind: str, ident: str, limit: int) -> None:
        fail_key, cool_key = self._keys(kind, ident)
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(fail_key)
        pipe.pexpire(fail_key, self._window_ms, nx=True)
        count, _ = await pipe.execute()
        if int(count) >= limit:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(cool_key, b"1", px=self._cooldown_ms)
            pipe.delete(fail_key)
            await pipe.execute()
