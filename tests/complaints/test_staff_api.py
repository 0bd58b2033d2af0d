"""Staff HTTP API under the gateway's bearer-token middleware."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from bot.domains.complaints import staff_api
from bot.domains.complaints.service import ComplaintService
from bot.gateway.app import staff_auth_middleware
from tests.support.complaints import WX, Clock, Recorder, local, new

TOKEN = "staff-secret"
KEY = web.AppKey("complaints", ComplaintService)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(name="api")
async def api_fixture(aiohttp_client, service: ComplaintService):
    app = web.Application(middlewares=[staff_auth_middleware(TOKEN)])
    app[KEY] = service
    staff_api.setup_routes(app, KEY)
    return await aiohttp_client(app)


async def _post(api, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    resp = await api.post(path, json=body, headers=AUTH)
    data = await resp.json()
    assert resp.status == status, data
    return data


async def test_every_route_requires_the_token(api, service: ComplaintService) -> None:
    number = (await service.create(new(), idempotency_key="a")).complaint.number
    routes = [(r.method, r.resource.canonical) for r in api.app.router.routes() if r.method != "HEAD"]
    assert len(routes) == 6
    for method, path in routes:
        assert path.startswith("/api/complaints")
        url = path.replace("{number}", number).replace("{action}", "accept")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            resp = await api.request(method, url, json={"actor": "x"}, headers=headers)
            assert resp.status == 401, (method, url, headers)
            assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await service.get(number)).status == "registered"  # type: ignore[union-attr]
    for method, path in routes:  # and with the right token none of them is refused
        url = path.replace("{number}", number).replace("{action}", "accept")
        resp = await api.request(
            method, url, json={"actor": "x", "description": "窗口人员态度差"}, headers=AUTH
        )
        assert resp.status != 401


async def test_staff_workflow(api, service: ComplaintService, clock: Clock, recorder: Recorder) -> None:
    filed = await service.create(new(phone="13812345678"), idempotency_key="wf")
    number = filed.complaint.number
    base = f"/api/complaints/{number}"
    data = await _post(api, f"{base}/accept", {"actor": "张科员", "note": "属实"})
    assert (
        data["status"] == "accepted" and data["due"] == "2026-03-09" and "dispatch" in data["allowed_actions"]
    )
    assert data["phone"] == "13812345678" and data["sender"].startswith("wx:oUser") and WX not in str(data)
    await _post(api, f"{base}/dispatch", {"actor": "张科员", "department": "县税务局"})
    await _post(api, f"{base}/return", {"actor": "税务局", "reason": "非本单位窗口"})
    await _post(api, f"{base}/dispatch", {"actor": "张科员", "department": "县人社局"})
    resp = await api.post(
        f"{base}/start", json={}, headers={**AUTH, "X-Staff-Name": "%E6%9D%8E%E8%82%A1%E9%95%BF"}
    )
    assert resp.status == 200
    data = await _post(
        api, f"{base}/extend", {"actor": "张科员", "days": 11, "reason": "复杂", "approver": "王"}, 400
    )
    assert data["error"] == "invalid" and "10个工作日" in data["message"]
    await _post(
        api, f"{base}/extend", {"actor": "张科员", "days": 2, "reason": "需调查", "approver": "王主任"}
    )
    data = await _post(api, f"{base}/reply", {"actor": "李股长", "text": "已约谈当事人并整改。"})
    assert data["status"] == "replied"
    assert recorder.sent[-1][0].number == number and "已约谈当事人" in recorder.sent[-1][1]
    data = await _post(api, f"{base}/close", {"actor": "王主任"}, 409)
    assert data["error"] == "illegal_transition" and "已答复" in data["message"]
    await _post(api, f"{base}/callback", {"actor": "张科员", "note": "电话回访满意", "rating": 5})
    data = await _post(api, f"{base}/close", {"actor": "王主任", "result": "resolved"})
    assert data["status"] == "closed" and data["close_result"] == "resolved"

    resp = await api.get(base, headers=AUTH)
    show = await resp.json()
    actions = [e["action"] for e in show["history"]]
    assert actions == [
        "create",
        "accept",
        "dispatch",
        "return",
        "dispatch",
        "start",
        "extend",
        "reply",
        "callback",
        "close",
    ]
    assert show["history"][5]["actor"] == "李股长"
    assert (
        show["history"][4]["detail"]["redispatch"] is True and show["history"][4]["department"] == "县人社局"
    )
    assert show["history"][6]["detail"]["approver"] == "王主任"
    assert [n["purpose"] for n in show["notices"]] == ["extend", "reply"]
    assert all(n["status"] == "sent" for n in show["notices"])


async def test_errors_and_filters(api, service: ComplaintService, clock: Clock) -> None:
    a = (await service.create(new(), idempotency_key="1")).complaint.number
    clock.now = local(2026, 3, 5)
    b = await service.create(
        new(respondent="8号窗口", confidential=True, phone="13900001111"), idempotency_key="2"
    )
    await service.accept(b.complaint.number, "张科员")
    await service.dispatch(b.complaint.number, "张科员", "县医保局")

    assert (await api.get("/api/complaints/TS2345678ABC", headers=AUTH)).status == 404
    data = await _post(api, "/api/complaints/TS2345678ABC/accept", {"actor": "x"}, 404)
    assert data["error"] == "not_found"
    data = await _post(api, f"/api/complaints/{a}/accept", {}, 400)
    assert "经办人" in data["message"]
    data = await _post(api, f"/api/complaints/{a}/fly", {"actor": "x"}, 404)
    assert data["error"] == "unknown_action"
    resp = await api.post(f"/api/complaints/{a}/reject", data="not json", headers=AUTH)
    assert resp.status == 400
    data = await _post(api, f"/api/complaints/{a}/reject", {"actor": "x", "reason": ""}, 400)
    assert "不予受理" in data["message"]

    async def listed(query: str) -> list[str]:
        resp = await api.get(f"/api/complaints?{query}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        return [i["number"] for i in (await resp.json())["items"]]

    assert await listed("") == [b.complaint.number, a]
    assert await listed("status=registered") == [a]
    assert await listed("status=registered,dispatched") == [b.complaint.number, a]
    assert await listed("department=县医保局") == [b.complaint.number]
    assert await listed("from=2026-03-03") == [b.complaint.number]
    assert await listed("to=2026-03-04") == [a]
    assert await listed("overdue=true") == []
    await service.sweep(local(2026, 3, 10))
    assert await listed("overdue=true") == [a]
    assert await listed("limit=1&offset=1") == [a]
    assert (await api.get("/api/complaints?status=bogus", headers=AUTH)).status == 400
    assert (await api.get("/api/complaints?from=yesterday", headers=AUTH)).status == 400
    resp = await api.get(f"/api/complaints/{b.complaint.number}", headers=AUTH)
    assert (await resp.json())["phone"] == "139****1111"  # confidential complainant

    meta = await (await api.get("/api/complaints/meta", headers=AUTH)).json()
    assert meta["allowed"]["registered"] == ["accept", "reject", "merge", "supplement"]
    sweep = await _post(api, "/api/complaints/sweep", {})
    assert sweep == {"escalated": [], "delivered": 0}


async def test_staff_registers_and_merges(api, service: ComplaintService) -> None:
    body = {
        "actor": "前台小王",
        "description": "群众来电反映5号窗口推诿",
        "channel": "phone",
        "respondent": "5号窗口",
        "idempotency_key": "call-1",
    }
    first = await _post(api, "/api/complaints", body, 201)
    again = await _post(api, "/api/complaints", body, 200)
    assert first["number"] == again["number"] and first["channel"] == "phone"
    second = await _post(api, "/api/complaints", {**body, "idempotency_key": "call-2"}, 201)
    data = await _post(
        api, f"/api/complaints/{second['number']}/merge", {"actor": "张科员", "into": first["number"]}
    )
    assert data["status"] == "merged"
    await _post(api, "/api/complaints", {**body, "channel": "carrier-pigeon"}, 400)
