"""The webhook protocol every channel shares: claim, deadline, cached reply, late delivery.

A provider (WeChat, Twilio, …) calls our webhook and waits a few seconds for the answer; when it gets none
in time it retries, possibly on another gateway worker.  For each inbound message:

1. **Claim** it once in Redis (``SET key "p" NX``).  A request that finds the key taken is a retry: it
   waits for the first request's outcome and answers with the same rendered reply, or with the empty
   acknowledgement, never with a second turn.
2. Run the **turn** (the conversation) in a task and wait for it until the channel's **deadline**.
3. In time: **render** the reply for the provider's synchronous answer, **cache** it under the key
   (``"r" + text``) for retries, and answer with it.
4. Late: cache ``"s"`` (retries get the acknowledgement), answer with the **acknowledgement** now, and
   **deliver** the reply later through the channel's push path (WeChat's customer-service API, the SMS
   ledger) when the turn finishes.

A turn that fails is answered with the channel's polite **fallback**, in time or late; so is a message that
arrives while Redis is unreachable (no claim is possible: it is answered at once, asking to try again).  The
citizen never gets silence or an error page.  Channels keep only what differs: verify, parse, render and push.

Keys live ``ttl`` seconds.  Metrics: ``govbot_dedup_hits_total``, ``govbot_deadline_misses_total``,
``govbot_requests_total`` and ``govbot_request_seconds``, each labelled with the channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from bot.core.metrics import Metrics

log = logging.getLogger(__name__)

R = TypeVar("R")  # what a turn produces: the channel's own reply type

PENDING, ACKED, RENDERED = b"p", b"s", b"r"
POLL_SECONDS = 0.02


class WebhookProtocol(Generic[R]):
    """One channel's side of the protocol.  ``fallback()`` is the reply for a failed turn; ``ack`` is the
    rendered empty acknowledgement (WeChat's ``success``, an empty TwiML response)."""

    def __init__(
        self,
        channel: str,
        *,
        redis: aioredis.Redis,
        metrics: Metrics,
        deadline: float,
        ttl: int,
        ack: str,
        fallback: Callable[[], R],
    ) -> None:
        self.channel = channel
        self._redis = redis
        self._metrics = metrics
        self.deadline = deadline
        self._ttl = ttl
        self.ack = ack
        self._fallback = fallback
        self._background: set[asyncio.Future[Any]] = set()

    # ------------------------------------------------------------------------------------------ claim

    async def claim(self, key: str) -> bytes | None:
        """None when this request owns the message; otherwise the first request's state."""
        if await self._redis.set(key, PENDING, nx=True, ex=self._ttl):
            return None
        await self._metrics.inc("govbot_dedup_hits_total", {"channel": self.channel})
        log.info("inbound repeated", extra={"channel": self.channel})
        return await self._state(key) or ACKED

    async def _state(self, key: str) -> bytes | None:
        value = await self._redis.get(key)  # bytes: the client is built with decode_responses=False
        return value.encode("utf-8") if isinstance(value, str) else value

    async def cached(self, key: str, until: float) -> str:
        """A retry's answer: the first request's rendered reply once there is one, else the acknowledgement
        (when the first request gave up waiting, or at ``until``)."""
        while True:
            state = await self._state(key)
            if state is not None and state.startswith(RENDERED):
                return state[1:].decode("utf-8")
            if state is None or state == ACKED or time.monotonic() >= until:
                return self.ack
            await asyncio.sleep(POLL_SECONDS)

    # ------------------------------------------------------------------------------------------ answer

    async def answer(
        self,
        key: str,
        received: float,
        turn: Callable[[], Awaitable[R]],
        render: Callable[[R], Awaitable[str]],
        deliver: Callable[[R], Awaitable[None]],
        log_extra: Mapping[str, Any] | None = None,
    ) -> str:
        """The synchronous answer for one inbound message (``received``: its ``time.monotonic()``)."""
        until = received + self.deadline
        try:
            claimed = await self.claim(key)
        except (RedisError, OSError) as exc:
            # Without Redis there is no dedup, no turn order and no conversation state: tell the citizen
            # politely to try again (a reply, so nothing is silently dropped) instead of failing the request.
            log.warning(
                f"{self.channel} inbound while Redis is unavailable; answering with the fallback",
                extra={**(log_extra or {}), "error": type(exc).__name__},
            )
            return await render(self._fallback())
        if claimed is not None:
            return await self.cached(key, until)
        task: asyncio.Future[R] = asyncio.ensure_future(turn())
        try:
            result = await asyncio.wait_for(asyncio.shield(task), max(0.0, until - time.monotonic()))
        except TimeoutError:
            await self._metrics.inc("govbot_deadline_misses_total", {"channel": self.channel})
            await self._remember(key, ACKED)
            self.spawn(self._deliver_late(task, deliver, log_extra))
            return self.ack
        except Exception:
            log.exception(f"{self.channel} turn failed", extra=dict(log_extra or {}))
            result = self._fallback()
        try:
            rendered = await render(result)
        except BaseException:
            await self._remember(key, ACKED)
            raise
        state = ACKED if rendered == self.ack else RENDERED + rendered.encode("utf-8")
        await self._remember(key, state)
        return rendered

    async def _remember(self, key: str, state: bytes) -> None:
        """Record the outcome for retries; Redis gone meanwhile only costs a retry its cached answer (it
        will find the claim and get the acknowledgement), never this request its reply."""
        try:
            await self._redis.set(key, state, ex=self._ttl)
        except (RedisError, OSError) as exc:
            log.warning(
                f"{self.channel} reply not cached: Redis unavailable", extra={"error": type(exc).__name__}
            )

    async def accept(
        self,
        key: str,
        turn: Callable[[], Awaitable[R]],
        deliver: Callable[[R], Awaitable[None]],
        log_extra: Mapping[str, Any] | None = None,
    ) -> bool:
        """For providers that take no synchronous reply (batch pushes): claim the message and deliver its
        reply in the background.  False when it was a repeat."""
        if await self.claim(key) is not None:
            return False
        await self._redis.set(key, ACKED, ex=self._ttl)
        self.spawn(self._deliver_late(asyncio.ensure_future(turn()), deliver, log_extra))
        return True

    async def _deliver_late(
        self,
        task: asyncio.Future[R],
        deliver: Callable[[R], Awaitable[None]],
        log_extra: Mapping[str, Any] | None,
    ) -> None:
        try:
            result = await task
        except Exception:
            log.exception(f"late {self.channel} turn failed", extra=dict(log_extra or {}))
            result = self._fallback()
        await deliver(result)

    # ------------------------------------------------------------------------------------------ upkeep

    async def record_request(self, outcome: str, received: float) -> None:
        """Count one webhook request and its duration."""
        await self._metrics.inc("govbot_requests_total", {"channel": self.channel, "outcome": outcome})
        await self._metrics.observe(
            "govbot_request_seconds", {"channel": self.channel}, time.monotonic() - received
        )

    @property
    def busy(self) -> bool:
        """Whether background work (late deliveries, pushes) is still running."""
        return bool(self._background)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run background work the channel owns (late deliveries, pushes) until :meth:`close`."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self, grace: float = 15) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=grace)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, however many TCP segments it arrives in (``StreamReader.read(n)`` returns
    only what is buffered); more than ``limit`` bytes is :class:`web.HTTPRequestEntityTooLarge`."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return bytes(body)
