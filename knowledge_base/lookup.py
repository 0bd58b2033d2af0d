"""Retrieval served by one process: the action server holds the search index (jieba's dictionary and the
catalogue's postings, about 90 MB), and the gateway's staff search and answer tester ask it over loopback
HTTP instead of building a second index in every gateway worker.

* :func:`setup_routes` adds ``GET /kb/search?q=…&limit=N`` and ``POST /kb/answer {"text", "channel"}`` to
  the action server (127.0.0.1 only, like Rasa's ``/webhook``).
* :class:`RemoteKnowledgeBase` is the gateway's client; :class:`KnowledgeBase` itself satisfies the same
  :class:`KbLookup` protocol, for tools that run in one process (the CLI, the tests of the staff API).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from knowledge_base.search import SearchHit
from knowledge_base.service import GuideAnswer, KnowledgeBase

CHANNELS = ("wechat", "sms")
MAX_TEXT = 1000


class KbUnavailable(Exception):
    """The process that holds the index did not answer."""


class KbLookup(Protocol):
    async def search(self, q: str, limit: int = 10) -> list[SearchHit]: ...

    async def answer(
        self, question: str, *, channel: str = "wechat", log_unanswered: bool = False
    ) -> GuideAnswer: ...


class RemoteKnowledgeBase:
    """:class:`KbLookup` over the action server's ``/kb/…`` routes."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, timeout: float = 5.0) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def search(self, q: str, limit: int = 10) -> list[SearchHit]:
        data = await self._call("GET", "/kb/search", params={"q": q, "limit": str(limit)})
        return [SearchHit(**hit) for hit in data["results"]]

    async def answer(
        self, question: str, *, channel: str = "wechat", log_unanswered: bool = False
    ) -> GuideAnswer:
        body = {"text": question, "channel": channel, "log_unanswered": log_unanswered}
        return GuideAnswer(**await self._call("POST", "/kb/answer", json=body))

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._http.request(method, self._base + path, timeout=self._timeout, **kwargs) as resp:
                if resp.status != 200:
                    raise KbUnavailable(f"{path}: HTTP {resp.status}")
                data: dict[str, Any] = await resp.json()
                return data
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise KbUnavailable(f"{path}: {type(exc).__name__}") from exc


def setup_routes(app: web.Application, kb_key: web.AppKey[KnowledgeBase]) -> None:
    """The action server's side: ``app[kb_key]`` is its :class:`KnowledgeBase`."""

    async def search(request: web.Request) -> web.Response:
        q = request.query.get("q", "").strip()[:MAX_TEXT]
        try:
            limit = max(1, min(50, int(request.query.get("limit", "10"))))
        except ValueError:
            limit = 10
        hits = await request.app[kb_key].search(q, limit=limit) if q else []
        return web.json_response({"results": [dataclasses.asdict(h) for h in hits]})

    async def answer(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            text = str(body["text"])[:MAX_TEXT]
            channel = body.get("channel", "wechat")
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response({"error": "bad_request"}, status=400)
        result = await request.app[kb_key].answer(
            text,
            channel=channel if channel in CHANNELS else "wechat",
            log_unanswered=body.get("log_unanswered") is True,
        )
        return web.json_response(dataclasses.asdict(result))

    app.router.add_get("/kb/search", search)
    app.router.add_post("/kb/answer", answer)
