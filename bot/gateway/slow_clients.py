"""Slow clients are cut off instead of holding a connection (and a file descriptor) forever.

* **Headers.** aiohttp closes a connection that has not completed a request's headers within
  ``keepalive_timeout`` seconds of opening (or of its last response).  Its default is 3630 s; the gateway
  runs with ``HTTP_IDLE_TIMEOUT`` (15 s) — :func:`runner_options` is what ``govbot gateway`` passes.
* **Bodies.** :func:`body_timeout_middleware` watches every request that has a body still arriving: when
  no byte arrives for ``HTTP_BODY_TIMEOUT`` seconds (15 s) the read fails, the client gets ``408`` and the
  connection is closed.  A body that keeps arriving, however large, is not cut off (upload limits are
  the size limits' business).  A request refused before its body was read (a bad signature, no login) is
  answered at once; aiohttp then drains the rest for at most ``lingering_time`` (the same timeout).

On ``/api/`` both answers (408, and aiohttp's 413 for a body over ``client_max_size``) are in the staff API's
JSON error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.core.config import Settings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyStalled(web.HTTPRequestTimeout):
    """No byte of the request body arrived for the idle timeout (408)."""


def runner_options(settings: Settings) -> dict[str, Any]:
    """The ``web.AppRunner`` options of the gateway (slow headers and idle connections are closed)."""
    return {
        "access_log": None,
        "keepalive_timeout": settings.http_idle_timeout,
        # after answering before the body was read whole (a refusal), wait at most this long for the rest
        "lingering_time": settings.http_body_timeout,
    }


def body_timeout_middleware(idle: float) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists or request.content.is_eof():
            return await _too_large_as_json(request, handler)
        stalled = asyncio.Event()
        watch = asyncio.create_task(_watch(request, idle, stalled))
        try:
            response = await _too_large_as_json(request, handler)
        except Exception:
            if not stalled.is_set():
                raise
            response = _timeout_response(request)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if stalled.is_set():
            if response.status != BodyStalled.status_code:
                response = _timeout_response(request)
            response.force_close()
        return response

    return middleware


async def _too_large_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own 413 (a body over ``client_max_size``) in the staff API's error shape on ``/api/``."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        if not request.path.startswith("/api/"):
            raise
        return web.json_response({"error": "too_large", "message": "请求体过大"}, status=413)


def _timeout_response(request: web.Request) -> web.Response:
    if request.path.startswith("/api/"):  # the staff API's error shape
        response: web.Response = web.json_response(
            {"error": "request_timeout", "message": "请求体传输超时，请重试"}, status=BodyStalled.status_code
        )
    else:
        response = web.Response(status=BodyStalled.status_code, text="request body timed out")
    response.force_close()
    return response


async def _watch(request: web.Request, idle: float, stalled: asyncio.Event) -> None:
    """Fail the body's reads once no byte has arrived for ``idle`` seconds (checked four times as often)."""
    content = request.content
    seen, since = content.total_bytes, asyncio.get_running_loop().time()
    while not content.is_eof():
        await asyncio.sleep(idle / 4)
        now = asyncio.get_running_loop().time()
        if content.total_bytes != seen:
            seen, since = content.total_bytes, now
        elif now - since >= idle and not content.is_eof():
            log.warning(
                "request body stalled; closing",
                extra={"path": request.path, "received": seen, "idle": idle},
            )
            stalled.set()
            content.set_exception(BodyStalled(text="request body timed out"))
            return
