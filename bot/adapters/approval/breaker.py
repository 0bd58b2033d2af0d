"""A circuit breaker shared by every process that calls the approval backend (state in Redis).

closed → (``failures`` failed calls within ``window`` s) → open for ``open_for`` s: calls fail at once →
half-open: one probe call is let through (the others still fail fast) → the probe's success closes the
breaker, its failure opens it again.  When Redis itself fails the breaker lets calls through (it protects
the backend, it must not become a second point of failure).
"""

from __future__ import annotations

import logging
from enum import StrEnum

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        name: str = "approval",
        failures: int = 5,
        window: float = 30.0,
        open_for: float = 30.0,
        probe_timeout: float = 10.0,
    ) -> None:
        self._redis = redis
        self._failures = max(1, failures)
        self._window_ms = max(1, int(window * 1000))
        self._open_ms = max(1, int(open_for * 1000))
        self._probe_ms = max(1, int(probe_timeout * 1000))
        prefix = f"breaker:{name}"
        self._k_fail = f"{prefix}:failures"
        self._k_open = f"{prefix}:open"
        self._k_tripped = f"{prefix}:tripped"
        self._k_probe = f"{prefix}:probe"

    async def state(self) -> BreakerState:
        is_open, tripped = await self._redis.mget(self._k_open, self._k_tripped)
        if is_open:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN if tripped else BreakerState.CLOSED

    async def allow(self) -> bool:
        """True when a call may go ahead now (closed, or this caller holds the half-open probe)."""
        try:
            is_open, tripped = await self._redis.mget(self._k_open, self._k_tripped)
            if is_open:
                return False
            if tripped:
                return bool(await self._redis.set(self._k_probe, b"1", nx=True, px=self._probe_ms))
            return True
        except Exception:
            log.warning("circuit breaker state unavailable; letting the call through", exc_info=True)
            return True

    async def record_success(self) -> bool:
        """Returns True when this success closed an open (half-open) breaker."""
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self._k_tripped)
            pipe.delete(self._k_probe, self._k_fail)
            closed, _ = await pipe.execute()
        except Exception:
            log.warning("circuit breaker update failed", exc_info=True)
            return False
        if closed:
            log.info("approval backend circuit breaker closed")
        return bool(closed)

    async def record_failure(self) -> bool:
        """Returns True when this failure opened the breaker."""
        try:
            if await self._redis.exists(self._k_tripped):
                await self._trip()  # the half-open probe failed
                return True
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(self._k_fail)
            pipe.pexpire(self._k_fail, self._window_ms, nx=True)
            count, _ = await pipe.execute()
            if int(count) >= self._failures:
                await self._trip()
                return True
        except Exception:
            log.warning("circuit breaker update failed", exc_info=True)
        return False

    async def _trip(self) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._k_open, b"1", px=self._open_ms)
        pipe.set(self._k_tripped, b"1", ex=7 * 24 * 3600)
        pipe.delete(self._k_probe, self._k_fail)
        await pipe.execute()
        log.warning("approval backend circuit breaker opened", extra={"open_seconds": self._open_ms / 1000})

    async def reset(self) -> None:
        await self._redis.delete(self._k_fail, self._k_open, self._k_tripped, self._k_probe)
