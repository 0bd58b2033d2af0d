"""Staff API GET /api/kb/search on a small app with a trivial bearer-token middleware (like the gateway)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from knowledge_base.lookup import KbLookup
from knowledge_base.service import KnowledgeBase
from knowledge_base.staff_api import setup_routes
from tests.support.kb import load_sample

TOKEN = "staff-test-token"
KB_KEY = web.AppKey("kb", KbLookup)


@web.middleware
async def bearer_auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path.startswith("/api/") and request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return web.json_response({"error": "unauthorized"}, status=401)
    return await handler(request)


async def test_search_endpoint(kb_sessions, aiohttp_client) -> None:
    await load_sample(kb_sessions)
    app = web.Application(middlewares=[bearer_auth])
    app[KB_KEY] = KnowledgeBase(kb_sessions)
    setup_routes(app, KB_KEY)
    client = await aiohttp_client(app)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    resp = await client.get("/api/kb/search", params={"q": "身份证丢了要多少钱"}, headers=auth)
    assert resp.status == 200
    body = await resp.json()
    first = body["results"][0]
    assert set(first) == {"code", "name", "department", "score", "aspect"}
    assert (first["code"], first["name"], first["aspect"]) == ("36072200-QR-035", "居民身份证补领", "fee")
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True) and len(scores) <= 10

    resp = await client.get("/api/kb/search", params={"q": "身份证", "limit": "2"}, headers=auth)
    assert len((await resp.json())["results"]) == 2

    resp = await client.get("/api/kb/search", headers=auth)
    assert resp.status == 400
    err = await resp.json()
    assert err["error"] == "missing_q" and "q" in err["message"] and "required" in err["message_en"]
    resp = await client.get("/api/kb/search", params={"q": "x", "limit": "abc"}, headers=auth)
    assert resp.status == 400

    resp = await client.get("/api/kb/search", params={"q": "今天天气"}, headers=auth)
    assert resp.status == 200 and (await resp.json())["results"] == []

    resp = await client.get("/api/kb/search", params={"q": "护照"})
    assert resp.status == 401
