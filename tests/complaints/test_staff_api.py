"""Staff HTTP API for complaints behind the gateway's staff middleware: real accounts and API tokens, the
acting person taken from authentication, department scoping, and an audit row per change."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.domains.complaints import staff_api
from bot.domains.complaints.service import ComplaintService
from bot.domains.staff import Staff
from bot.domains.staff.audit import AuditFilter
from tests.support.complaints import WX, Clock, Recorder, local, new
from tests.support.staff import bearer, person, staff_app

KEY = web.AppKey("complaints", ComplaintService)
OFFICE = "行政服务中心办公室"


class People:
    """Tokens of the people in these tests: a supervisor at the center's complaint office (张科员), her
    director (王主任), and handlers of two departments."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    def __getitem__(self, name: str) -> dict[str, str]:
        return bearer(self.tokens[name])


@pytest.fixture(name="people")
async def people_fixture(staff: Staff) -> People:
    return People(
        {
            "张科员": await person(staff, "zhangky", ["complaint_supervisor"], OFFICE, "张科员"),
            "王主任": await person(staff, "wangzr", ["complaint_supervisor"], OFFICE, "王主任"),
            "税务局": await person(staff, "shuiwu", ["complaint_handler"], "县税务局", "税务局"),
            "李股长": await person(staff, "ligz", ["complaint_handler"], "县人社局", "李股长"),
            "只读": await person(staff, "viewer", ["viewer"], OFFICE, "只读"),
        }
    )


@pytest.fixture(name="api")
async def api_fixture(aiohttp_client, service: ComplaintService, staff: Staff) -> TestClient:
    app = staff_app(staff)
    app[KEY] = service
    staff_api.setup_routes(app, KEY)
    return await aiohttp_client(app)


async def _post(
    api: TestClient, path: str, body: dict[str, Any], headers: dict[str, str], status: int = 200
) -> dict[str, Any]:
    resp = await api.post(path, json=body, headers=headers)
    data = await resp.json()
    assert resp.status == status, data
    return data


async def test_every_route_requires_a_signed_in_person(
    api, service: ComplaintService, people: People
) -> None:
    number = (await service.create(new(), idempotency_key="a")).complaint.number
    routes = [
        (r.method, r.resource.canonical)
        for r in api.app.router.routes()
        if r.method != "HEAD"
        and r.resource is not None
        and r.resource.canonical.startswith("/api/complaints")
    ]
    assert len(routes) == 6
    for method, path in routes:
        url = path.replace("{number}", number).replace("{action}", "accept")
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "gvb_x"},
            {"X-Staff-Name": "x"},
        ):
            resp = await api.request(method, url, json={"actor": "x"}, headers=headers)
            assert resp.status == 401, (method, url, headers)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await service.get(number)).status == "registered"  # type: ignore[union-attr]
    for method, path in routes:  # a supervisor may use each of them
        url = path.replace("{number}", number).replace("{action}", "accept")
        resp = await api.request(
            method, url, json={"description": "窗口人员态度差"}, headers=people["张科员"]
        )
        assert resp.status < 300, (method, url, await resp.text())
    resp = await api.post(f"/api/complaints/{number}/start", json={}, headers=people["只读"])
    assert resp.status == 403 and "办理本部门投诉" in (await resp.json())["message"]


async def test_staff_workflow(
    api, service: ComplaintService, clock: Clock, recorder: Recorder, people: People, staff: Staff
) -> None:
    filed = await service.create(new(phone="13812345678"), idempotency_key="wf")
    number = filed.complaint.number
    base = f"/api/complaints/{number}"
    office, director = people["张科员"], people["王主任"]
    data = await _post(api, f"{base}/accept", {"actor": "冒名", "note": "属实"}, office)
    assert (
        data["status"] == "accepted" and data["due"] == "2026-03-09" and "dispatch" in data["allowed_actions"]
    )
    assert data["phone"] == "13812345678" and data["sender"].startswith("wx:oUser") and WX not in str(data)
    await _post(api, f"{base}/dispatch", {"department": "县税务局"}, office)
    await _post(api, f"{base}/return", {"reason": "非本单位窗口"}, people["税务局"])
    # another department does not see it at all, and the returning department may not re-dispatch
    await _post(api, f"{base}/dispatch", {"department": "县人社局"}, people["李股长"], 404)
    await _post(api, f"{base}/dispatch", {"department": "县人社局"}, people["税务局"], 403)
    await _post(api, f"{base}/dispatch", {"department": "县人社局"}, office)
    resp = await api.post(f"{base}/start", json={}, headers={**people["李股长"], "X-Staff-Name": "someone"})
    assert resp.status == 200
    data = await _post(api, f"{base}/extend", {"days": 11, "reason": "复杂", "approver": "王"}, office, 400)
    assert data["error"] == "invalid" and "10个工作日" in data["message"]
    await _post(api, f"{base}/extend", {"days": 2, "reason": "需调查", "approver": "王主任"}, office)
    data = await _post(api, f"{base}/reply", {"text": "已约谈当事人并整改。"}, people["李股长"])
    assert data["status"] == "replied"
    assert recorder.sent[-1][0].number == number and "已约谈当事人" in recorder.sent[-1][1]
    data = await _post(api, f"{base}/close", {}, director, 409)
    assert data["error"] == "illegal_transition" and "已答复" in data["message"]
    await _post(api, f"{base}/callback", {"note": "电话回访满意", "rating": 5}, office)
    data = await _post(api, f"{base}/close", {"result": "resolved"}, director)
    assert data["status"] == "closed" and data["close_result"] == "resolved"

    resp = await api.get(base, headers=office)
    show = await resp.json()
    actions = [e["action"] for e in show["history"]]
    assert actions == [
        "create", "accept", "dispatch", "return", "dispatch", "start", "extend", "reply", "callback", "close"
    ]  # fmt: skip
    actors = [e["actor"] for e in show["history"][1:]]
    assert actors == [
        "张科员(zhangky)",
        "张科员(zhangky)",
        "税务局(shuiwu)",
        "张科员(zhangky)",
        "李股长(ligz)",
        "张科员(zhangky)",
        "李股长(ligz)",
        "张科员(zhangky)",
        "王主任(wangzr)",
    ]  # fmt: skip — from authentication; the body's "actor" and X-Staff-Name are ignored
    assert (
        show["history"][4]["detail"]["redispatch"] is True and show["history"][4]["department"] == "县人社局"
    )
    assert show["history"][6]["detail"]["approver"] == "王主任"
    assert [n["purpose"] for n in show["notices"]] == ["extend", "reply"]
    assert all(n["status"] == "sent" for n in show["notices"])


async def test_errors_and_filters(api, service: ComplaintService, clock: Clock, people: People) -> None:
    a = (await service.create(new(), idempotency_key="1")).complaint.number
    clock.now = local(2026, 3, 5)
    b = await service.create(
        new(respondent="8号窗口", confidential=True, phone="13900001111"), idempotency_key="2"
    )
    await service.accept(b.complaint.number, "张科员")
    await service.dispatch(b.complaint.number, "张科员", "县医保局")
    office = people["张科员"]

    assert (await api.get("/api/complaints/TS2345678ABC", headers=office)).status == 404
    data = await _post(api, "/api/complaints/TS2345678ABC/accept", {}, office, 404)
    assert data["error"] == "not_found"
    data = await _post(api, f"/api/complaints/{a}/fly", {}, office, 404)
    assert data["error"] == "unknown_action"
    resp = await api.post(f"/api/complaints/{a}/reject", data="not json", headers=office)
    assert resp.status == 400
    data = await _post(api, f"/api/complaints/{a}/reject", {"reason": ""}, office, 400)
    assert "不予受理" in data["message"]

    async def listed(query: str, who: str = "张科员") -> list[str]:
        resp = await api.get(f"/api/complaints?{query}", headers=people[who])
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
    assert await listed("", "李股长") == []  # 县人社局 has none; others' are not shown
    assert await listed("department=县医保局", "李股长") == []
    assert (await api.get("/api/complaints?status=bogus", headers=office)).status == 400
    assert (await api.get("/api/complaints?from=yesterday", headers=office)).status == 400
    resp = await api.get(f"/api/complaints/{b.complaint.number}", headers=office)
    assert (await resp.json())["phone"] == "139****1111"  # confidential complainant

    meta = await (await api.get("/api/complaints/meta", headers=office)).json()
    assert meta["allowed"]["registered"] == ["accept", "reject", "merge", "supplement"]
    sweep = await _post(api, "/api/complaints/sweep", {}, office)
    assert sweep == {"escalated": [], "delivered": 0}
    resp = await api.post("/api/complaints/sweep", json={}, headers=people["李股长"])
    assert resp.status == 403  # 督办 is for supervisors


async def test_staff_registers_and_merges(
    api, service: ComplaintService, people: People, staff: Staff
) -> None:
    body = {
        "description": "群众来电反映5号窗口推诿",
        "channel": "phone",
        "respondent": "5号窗口",
        "idempotency_key": "call-1",
    }
    office = people["张科员"]
    first = await _post(api, "/api/complaints", body, office, 201)
    again = await _post(api, "/api/complaints", body, office, 200)
    assert first["number"] == again["number"] and first["channel"] == "phone"
    assert first["sender"].startswith("staff:")
    second = await _post(api, "/api/complaints", {**body, "idempotency_key": "call-2"}, office, 201)
    data = await _post(api, f"/api/complaints/{second['number']}/merge", {"into": first["number"]}, office)
    assert data["status"] == "merged"
    await _post(api, "/api/complaints", {**body, "channel": "carrier-pigeon"}, office, 400)


async def test_each_change_is_audited_with_the_real_account(
    api, service: ComplaintService, people: People, staff: Staff
) -> None:
    number = (await service.create(new(), idempotency_key="au")).complaint.number
    await _post(api, f"/api/complaints/{number}/accept", {"note": "13812345678 来电"}, people["张科员"])
    await api.post(f"/api/complaints/{number}/start", json={}, headers=people["只读"])
    rows = await staff.audit.query(AuditFilter())
    denied, accepted = rows[0], rows[1]
    assert (accepted.username, accepted.action, accepted.object_id, accepted.outcome) == (
        "zhangky", "complaint.accept", number, "ok",
    )  # fmt: skip
    assert "complaint_supervisor" in accepted.roles and "13812345678" not in accepted.summary
    assert (denied.username, denied.action, denied.outcome) == ("viewer", "access.denied", "denied")


@pytest.mark.parametrize(
    ("field", "value"),
    [("category", 7), ("phone", ["138"]), ("respondent", {"a": 1}), ("occurred", 1.5), ("location", True),
     ("idempotency_key", 12), ("kind", "bogus"), ("channel", 3)],
)  # fmt: skip
async def test_a_field_of_the_wrong_type_is_a_400_not_a_500(
    api, people: People, field: str, value: object
) -> None:
    body = {"description": "窗口态度不好", field: value}
    data = await _post(api, "/api/complaints", body, people["张科员"], 400)
    assert data["message"] and "Traceback" not in str(data)


async def test_action_notes_and_dates_of_the_wrong_kind_are_400s(
    api, service: ComplaintService, people: People
) -> None:
    number = (await service.create(new(), idempotency_key="w")).complaint.number
    office = people["张科员"]
    await _post(api, f"/api/complaints/{number}/accept", {"note": ["a", "b"]}, office, 400)
    await _post(api, f"/api/complaints/{number}/close", {"result": 5}, office, 400)
    assert (await api.get("/api/complaints?to=9999-12-31", headers=office)).status == 400
    assert (await api.get("/api/complaints?from=0001-01-01", headers=office)).status == 400
    for offset in (2**63, 2**80):  # past any database's integers: an empty page, not a 500 (found by fuzzing)
        resp = await api.get(f"/api/complaints?offset={offset}", headers=office)
        assert resp.status == 200 and (await resp.json())["items"] == [], await resp.text()


async def test_a_person_of_no_department_lists_nothing(api, service: ComplaintService, staff: Staff) -> None:
    number = (await service.create(new(), idempotency_key="nd")).complaint.number
    nobody = bearer(await person(staff, "nodept", ["complaint_handler"], "", "无部门"))
    resp = await api.get("/api/complaints", headers=nobody)
    assert resp.status == 200 and (await resp.json()) == {"total": 0, "items": []}
    assert (await api.get(f"/api/complaints/{number}", headers=nobody)).status == 404


async def test_a_nul_character_in_a_complaint_is_no_database_error(api, people: People) -> None:
    """PostgreSQL's text holds no NUL (a DBAPIError 500 there, found by the schemathesis fuzzing)."""
    body = {"description": "窗口\x00态度差", "respondent": "3号\x00窗口"}
    data = await _post(api, "/api/complaints", body, people["张科员"], 201)
    assert data["description"] in ("窗口\x00态度差", "窗口\ufffd态度差")  # PostgreSQL: U+FFFD
    resp = await api.get("/api/complaints?department=\x00", headers=people["张科员"])
    assert resp.status == 200
