"""FIFO per-sender turn ordering shared by every gateway worker through Redis.

Each inbound message takes a ticket (INCR); it may start its turn when the sender's "served" counter has
reached ``ticket - 1``; when done it advances the counter.  A holder that died is skipped after
``wait_timeout`` so one crash never blocks a citizen for good.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

_ADVANCE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = tonumber(ARGV[1])
if t > cur then redis.call('SET', KEYS[1], t, 'EX', ARGV[2]) end
return 1
"""


class SenderTurns:
    def __init__(self, redis: aioredis.Redis, *, wait_timeout: float = 15.0, ttl: int = 3600) -> None:
        self._redis = redis
        self._wait_timeout = wait_timeout
        self._ttl = ttl
        self._advance = redis.register_script(_ADVANCE)

    @asynccontextmanager
    async def turn(self, sender_id: str) -> AsyncIterator[int]:
        next_key, served_key = f"turn:next:{sender_id}", f"turn:served:{sender_id}"
        pipe = self._redis.pipeline()
        pipe.incr(next_key)
        pipe.expire(next_key, self._ttl)
        ticket = int((await pipe.execute())[0])
        deadline = time.monotonic() + self._wait_timeout
        delay = 0.005
        while True:
            served = int(await self._redis.get(served_key) or 0)
            if served >= ticket - 1 or time.monotonic() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield ticket
        finally:
            await self._advance(keys=[served_key], args=[ticket, self._ttl])
