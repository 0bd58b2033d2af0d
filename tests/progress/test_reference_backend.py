"""The reference approval backend: its API rules, ticket issuing, seed data, OpenAPI document, and running as
a real process (``python -m bot.adapters.approval.reference_backend``) read through the adapter."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import unused_port

from bot.adapters.approval import CaseStatus, HttpApprovalBackend
from bot.adapters.approval.reference_backend import (
    DEMO_PHONE,
    ReferenceBackend,
    build_app,
    id_check_char,
    parse_time_limit,
)
from bot.adapters.approval.ticket import is_valid_ticket, make_ticket
from bot.core.config import ROOT
from bot.core.env import Secret
from bot.core.processes import module_process
from tests.support.progress import ITEM_3D, ITEM_NOW, TZ, RefHarness, fast_settings, local, working_days

OPENAPI = ROOT / "bot" / "adapters" / "approval" / "reference_backend.openapi.json"


async def _post(ref: RefHarness, path: str, body: object) -> tuple[int, dict]:
    async with ref.http.post(ref.url + path, data=json.dumps(body, ensure_ascii=False)) as resp:
        return resp.status, await resp.json()


async def test_create_case_issues_a_valid_ticket_with_a_daily_sequence(reference: RefHarness) -> None:
    first = await reference.create(at=local(2026, 2, 13, 9))
    second = await reference.create(ITEM_NOW, at=local(2026, 2, 13, 15))
    other_day = await reference.create(at=local(2026, 2, 24, 9))
    assert first["ticket_no"] == make_ticket(date(2026, 2, 13), 1)
    assert second["ticket_no"] == make_ticket(date(2026, 2, 13), 2)
    assert other_day["ticket_no"] == make_ticket(date(2026, 2, 24), 1)
    for case in (first, second, other_day):
        assert is_valid_ticket(case["ticket_no"])
    assert first["item"] == {"code": ITEM_3D, "name": "食品经营许可（新办）"}
    assert first["status"] == "受理" and first["accepted_at"] == "2026-02-13T09:00:00+08:00"
    assert first["time_limit_days"] == 3 and second["time_limit_days"] == 0
    assert [h["status"] for h in first["history"]] == ["受理"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"item_code": "36072200-XX-999", "applicant": {"name": "甲", "phone": "13800000000"}},
            422,
            "unknown_item",
        ),
        ({"item_code": ITEM_3D, "applicant": {"name": "甲", "phone": "12345"}}, 422, "invalid_applicant"),
        ({"item_code": ITEM_3D, "applicant": {"name": "", "phone": "13800000000"}}, 422, "invalid_applicant"),
        (
            {"item_code": ITEM_3D, "applicant": {"name": "甲", "phone": "13800000000", "id_number": "123"}},
            422,
            "invalid_applicant",
        ),
        (
            {"item_code": ITEM_3D, "applicant": {"name": "甲", "phone": "13800000000"}, "status": "办结"},
            422,
            "invalid_status",
        ),
        ({"item_code": ITEM_3D}, 422, "invalid_field"),
        ([1, 2], 400, "invalid_json"),
    ],
)
async def test_create_case_validation(reference: RefHarness, body: object, status: int, code: str) -> None:
    got_status, got = await _post(reference, "/api/v1/cases", body)
    assert (got_status, got["error"]["code"]) == (status, code)
    assert got["error"]["message"]


async def test_status_change_rules(reference: RefHarness) -> None:
    ticket = (await reference.create())["ticket_no"]
    path = f"/api/v1/cases/{ticket}/status"
    checks = [
        ({"status": "完成"}, 422, "invalid_status"),
        ({"status": "补正"}, 422, "missing_materials_required"),
        ({"status": "补正", "missing_materials": ["", "x"]}, 422, "invalid_field"),
        ({"status": "受理"}, 409, "no_change"),
        ({"status": "已取件"}, 409, "invalid_transition"),
        ({"status": "审核", "at": "yesterday"}, 422, "invalid_time"),
        ({"status": "办结", "collection": "window 3"}, 422, "invalid_field"),
    ]
    for body, status, code in checks:
        got_status, got = await _post(reference, path, body)
        assert (got_status, got["error"]["code"]) == (status, code), body
    status, _ = await _post(reference, "/api/v1/cases/202602130000127/status", {"status": "审核"})
    assert status == 404  # not a valid ticket number
    status, _ = await _post(reference, "/api/v1/cases/202602130009996/status", {"status": "审核"})
    assert status == 404  # valid, but no such case
    wrong_check_digit = ticket[:-1] + ("1" if ticket[-1] == "0" else "0")  # not the created ticket itself
    async with reference.http.get(f"{reference.url}/api/v1/cases/{wrong_check_digit}") as resp:
        assert resp.status == 404
    case = await reference.change(ticket, "审核", note="材料齐全", clerk="审批科")
    assert case["status"] == "审核" and case["history"][-1]["note"] == "材料齐全"


async def test_items_health_and_changes_over_http(reference: RefHarness) -> None:
    async with reference.http.get(reference.url + "/api/v1/items") as resp:
        items = (await resp.json())["items"]
    assert len(items) == 110 and {"code", "name", "window", "time_limit_days"} <= set(items[0])
    ticket = (await reference.create())["ticket_no"]
    await reference.change(ticket, "审核")
    async with reference.http.get(
        reference.url + "/api/v1/changes", params={"since": "0", "limit": "1"}
    ) as resp:
        page = await resp.json()
    assert page["changes"][0]["status"] == "受理" and page["has_more"] and page["next_cursor"] == "1"
    async with reference.http.get(reference.url + "/api/v1/changes", params={"limit": "0"}) as resp:
        assert resp.status == 400
    async with reference.http.get(reference.url + "/health") as resp:
        assert (await resp.json()) == {"status": "ok", "cases": 1}


def test_time_limits_and_id_check() -> None:
    assert parse_time_limit("即办（能够当场办理的当场出具）") == 0
    assert parse_time_limit("3个工作日（经营条件未发生变化的即办）") == 3
    assert parse_time_limit("0.5个工作日") == 1
    assert parse_time_limit("当日响应，按所代办事项的承诺时限办结") is None
    assert id_check_char("11010519491231002") == "X"  # the GB 11643 example


async def test_seed_is_realistic(tmp_path: Path) -> None:
    backend = ReferenceBackend(tmp_path / "seed.db", clock=lambda: datetime(2026, 11, 20, 15, 0, tzinfo=TZ))
    await backend.start()
    try:
        tickets = await backend.seed(40)
        assert len(set(tickets)) == 40 and all(is_valid_ticket(t) for t in tickets)
        cases = [await backend.get_case(t) for t in tickets]
        assert all(c is not None for c in cases)
        statuses = Counter(c["status"] for c in cases)  # type: ignore[index]
        assert set(statuses) == {"申请", "受理", "补正", "审核", "审批", "办结", "不予受理", "退回", "已取件"}
        for case in cases:
            assert case is not None
            item = backend.items[case["item"]["code"]]  # every case is over a catalogue item
            assert case["item"]["name"] == item.name and case["window"]["phone"] == item.phone
            assert case["history"] and case["history"][-1]["status"] == case["status"]
            assert [h["at"] for h in case["history"]] == sorted(h["at"] for h in case["history"])
            if case["status"] == "补正":
                assert case["correction"]["missing_materials"]
                assert set(case["correction"]["missing_materials"]) <= set(item.materials_list)
            if case["status"] == "办结":
                assert case["collection"]["place"] and case["collection"]["bring"]
        demo = [c for c in cases if c and c["applicant"]["phone"] == DEMO_PHONE]
        assert {c["status"] for c in demo} >= {"审核", "补正", "办结"}
        # Some open cases are past their promised date (the demo shows the overdue reply).
        wd = working_days()
        today = datetime(2026, 11, 20).date()
        overdue = []
        for case in cases:
            assert case is not None
            if case["status"] in ("受理", "审核", "审批") and case["time_limit_days"]:
                accepted = datetime.fromisoformat(case["accepted_at"]).date()
                if wd.add(accepted, case["time_limit_days"]) < today:
                    overdue.append(case["ticket_no"])
        assert overdue
        # Seeding is deterministic.
        again = ReferenceBackend(tmp_path / "seed2.db", clock=backend.clock)
        await again.start()
        assert await again.seed(40) == tickets
        await again.close()
    finally:
        await backend.close()


async def test_app_seeds_an_empty_database_once(aiohttp_server, tmp_path: Path) -> None:
    db = tmp_path / "approval.db"
    server = await aiohttp_server(build_app(ReferenceBackend(db), seed=12))
    async with aiohttp.ClientSession() as http, http.get(str(server.make_url("/health"))) as resp:
        assert (await resp.json())["cases"] == 12
    await server.close()
    server = await aiohttp_server(build_app(ReferenceBackend(db), seed=12))
    async with aiohttp.ClientSession() as http, http.get(str(server.make_url("/health"))) as resp:
        assert (await resp.json())["cases"] == 12


def test_openapi_documents_every_route() -> None:
    doc = json.loads(OPENAPI.read_text(encoding="utf-8"))
    assert doc["openapi"].startswith("3.")
    app = build_app(ReferenceBackend("unused.db"), enable_faults=True)
    routes = {
        (r.method.lower(), r.resource.canonical)  # type: ignore[union-attr]
        for r in app.router.routes()
        if r.method != "HEAD"
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert routes == documented
    assert doc["paths"]["/api/v1/cases"]["post"]["responses"]["201"]
    assert doc["paths"]["/api/v1/cases/{ticket_no}/status"]["post"]["requestBody"]
    enum = doc["components"]["schemas"]["Status"]["enum"]
    assert enum == ["申请", "受理", "补正", "审核", "审批", "办结", "不予受理", "退回", "已取件"]


# ---------------------------------------------------------------------------------------- real process


@pytest.fixture
async def backend_process(tmp_path: Path) -> AsyncIterator[str]:
    async with module_process(
        "bot.adapters.approval.reference_backend", "--db", str(tmp_path / "var" / "approval.db"),
        "--token", "proc-token", "--seed", "20", port=unused_port(), name="the reference backend",
    ) as url:  # fmt: skip
        yield url
    assert (tmp_path / "var" / "approval.db").exists()


async def test_real_process_through_the_adapter(backend_process: str, redis_client: aioredis.Redis) -> None:
    settings = fast_settings(backend_process, api_token=Secret("proc-token"))
    adapter = HttpApprovalBackend(settings, redis_client)
    headers = {"Authorization": "Bearer proc-token"}
    try:
        batch = await adapter.changes_since(None, limit=500)
        tickets = list(dict.fromkeys(c.ticket_no for c in batch.changes))
        assert len(tickets) == 20
        statuses = set()
        for ticket in tickets:
            case = await adapter.get_case(ticket)
            assert case is not None and case.item_name
            statuses.add(case.status)
        assert statuses == set(CaseStatus)
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(
                backend_process + "/api/v1/cases",
                json={"item_code": ITEM_3D, "applicant": {"name": "赵六", "phone": "13600001111"}},
            ) as resp:
                assert resp.status == 201
                ticket = (await resp.json())["ticket_no"]
            async with http.post(
                f"{backend_process}/api/v1/cases/{ticket}/status",
                json={"status": "补正", "missing_materials": ["食品安全管理制度文本1份"]},
            ) as resp:
                assert resp.status == 200
        case = await adapter.get_case(ticket, fresh=True)
        assert case is not None and case.status is CaseStatus.CORRECTION
        assert case.missing_materials == ("食品安全管理制度文本1份",)
        after = await adapter.changes_since(batch.next_cursor)
        assert [(c.ticket_no, c.status) for c in after.changes] == [
            (ticket, CaseStatus.ACCEPTED),
            (ticket, CaseStatus.CORRECTION),
        ]
    finally:
        await adapter.close()
