"""A segment rate limiter in Redis, shared by every worker process (and, when wired, by the gateway).

A token bucket (``rate`` segments per second, at most ``burst`` tokens) kept in one Redis hash and updated
by a Lua script that reads Redis's own clock, so workers on different machines agree.  Two priorities:

* ``BULK`` (broadcasts) takes tokens only when the bucket holds enough: it never goes below zero.
* ``HIGH`` (replies to citizens, case notifications) may borrow up to ``burst`` tokens below zero.  It is
  never queued behind bulk traffic, and the debt it leaves is paid by bulk traffic, so the total stays at
  ``rate`` while replies jump ahead.

``acquire`` returns when the tokens are taken; ``try_acquire`` returns the seconds to wait instead.

:class:`RateLimitedProvider` wraps any ``SmsProvider`` so that every send it makes is counted
(``build_sms_channel(..., provider=RateLimitedProvider(p, limiter, Priority.HIGH))`` in the gateway).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import IntEnum
from typing import Any

import redis.asyncio as aioredis

from sms_gateway.provider import OutboundRequest, SendReceipt, SmsProvider
from sms_gateway.segments import count

DEFAULT_KEY = "bcast:rate"

_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local floor = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens - cost >= floor then
  tokens = math.min(burst, tokens - cost)
else
  wait = (cost + floor - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


class Priority(IntEnum):
    BULK = 0
    HIGH = 1


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, rate: float, burst: float, *, key: str = DEFAULT_KEY) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.redis = redis
        self.rate = rate
        self.burst = burst
        self.key = key
        self._script = redis.register_script(_SCRIPT)

    async def try_acquire(
        self, cost: int, priority: Priority = Priority.BULK, rate: float | None = None
    ) -> float:
        """Take ``cost`` segments now (returns 0.0) or return the seconds to wait before trying again."""
        cost = max(1, int(cost))
        use_rate = rate or self.rate
        burst = max(self.burst, float(cost))
        floor = -burst if priority is Priority.HIGH else 0.0
        wait = await self._script(keys=[self.key], args=[use_rate, burst, cost, floor])
        return float(wait.decode() if isinstance(wait, bytes) else wait)

    async def refund(self, cost: int, rate: float | None = None) -> None:
        """Give back tokens taken for a send that did not happen (never above the burst)."""
        if cost > 0:
            burst = max(self.burst, float(cost))
            await self._script(keys=[self.key], args=[rate or self.rate, burst, -int(cost), -burst])

    async def acquire(
        self, cost: int, priority: Priority = Priority.BULK, rate: float | None = None, max_wait: float = 1.0
    ) -> bool:
        """Wait until ``cost`` segments are taken; False when that would take longer than ``max_wait`` (the
        caller re-checks its campaign state and tries again)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while True:
            wait = await self.try_acquire(cost, priority, rate)
            if wait <= 0:
                return True
            if loop.time() + wait > deadline:
                await asyncio.sleep(max(0.0, min(wait, deadline - loop.time())))
                return False
            await asyncio.sleep(wait)


class RateLimitedProvider:
    """An ``SmsProvider`` whose sends take tokens from the shared bucket first (``HIGH`` for replies)."""

    def __init__(self, inner: SmsProvider, limiter: RateLimiter, priority: Priority = Priority.HIGH) -> None:
        self._inner = inner
        self._limiter = limiter
        self._priority = priority

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def send(self, request: OutboundRequest) -> SendReceipt:
        cost = count(request.body).segments
        while not await self._limiter.acquire(cost, self._priority, max_wait=5.0):
            pass
        return await self._inner.send(request)

    async def find_sent(self, to: str, body: str, since: datetime, exclude: Any) -> SendReceipt | None:
        return await self._inner.find_sent(to, body, since, exclude)
