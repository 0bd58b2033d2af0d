"""Staff API: ``GET /api/kb/search?q=…[&limit=N]``.

Returns ``{"query": q, "results": [{code, name, department, score, aspect}, ...]}``, best first.

The gateway's staff middleware guards every ``/api/`` route, so the handler itself does not check
authentication.  The lookup (:class:`knowledge_base.lookup.KbLookup`) is taken from the application under the
``web.AppKey`` given to :func:`setup_routes`; when it cannot answer, the reply is 503.
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from knowledge_base.lookup import KbLookup, KbUnavailable

MAX_LIMIT = 50
DEFAULT_LIMIT = 10


def _error(status: int, code: str, zh: str, en: str) -> web.Response:
    return web.json_response({"error": code, "message": zh, "message_en": en}, status=status)


def make_search_handler(kb_key: web.AppKey[KbLookup]):  # type: ignore[no-untyped-def]
    async def search_handler(request: web.Request) -> web.Response:
        q = request.query.get("q", "").strip()
        if not q:
            return _error(400, "missing_q", "缺少查询参数 q", "query parameter 'q' is required")
        raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
        try:
            limit = int(raw_limit)
        except ValueError:
            return _error(
                400, "bad_limit", "参数 limit 必须是整数", "query parameter 'limit' must be an integer"
            )
        limit = max(1, min(MAX_LIMIT, limit))
        kb = request.app[kb_key]
        try:
            hits = await kb.search(q, limit=limit)
        except KbUnavailable:
            return _error(
                503, "kb_unavailable", "检索服务暂不可用，请稍后再试", "the search service is unavailable"
            )
        return web.json_response({"query": q, "results": [asdict(h) for h in hits]})

    return search_handler


def setup_routes(app: web.Application, kb_key: web.AppKey[KbLookup]) -> None:
    """Register ``GET /api/kb/search`` on ``app``; ``app[kb_key]`` holds the lookup (the gateway's asks the
    action server, which holds the index; a ``KnowledgeBase`` in one process is one too)."""
    app.router.add_get("/api/kb/search", make_search_handler(kb_key), name="kb_search")
