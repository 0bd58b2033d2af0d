"""A fixed-window rate limit in Redis, shared by every worker: at most ``limit`` events per ``window``
seconds per key (an Open311 integration's POSTs, say)."""

from __future__ import annotations

import redis.asyncio as aioredis


class WindowLimit:
    def __init__(self, redis: aioredis.Redis, prefix: str, limit: int, window: float = 60.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.window_ms = max(1, int(window * 1000))

    async def allow(self, key: str) -> bool:
        """Count one event for ``key``; False when that goes over the limit (a limit of 0: no limit)."""
        if self.limit <= 0:
            return True
        name = f"{self.prefix}:{key}"
        pipe = self.redis.pipeline()
        pipe.incr(name)
        pipe.pexpire(name, self.window_ms, nx=True)
        count, _ = await pipe.execute()
        return int(count) <= self.limit
