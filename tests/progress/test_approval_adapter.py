"""The HTTP adapter against the reference backend over real HTTP: every status, 补正 and 办结 details, the
mapping file (a differently shaped backend), timeouts, 5xx, malformed JSON, the circuit breaker, the cache,
auth, the change feed and metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from bot.adapters.approval import (
    ApprovalUnavailable,
    BreakerState,
    CaseStatus,
    CircuitOpenError,
    FieldMapping,
    HttpApprovalBackend,
)
from bot.adapters.approval.reference_backend import ReferenceBackend, build_app
from bot.adapters.approval.ticket import make_ticket
from bot.core.env import Secret
from bot.core.metrics import Metrics
from tests.support.progress import APPLICANT_PHONE, ID_NUMBER, ITEM_3D, RefHarness, fast_settings


async def test_every_status_maps_to_ours(reference: RefHarness, adapter: HttpApprovalBackend) -> None:
    created = await reference.create(status="申请")
    ticket = created["ticket_no"]
    case = await adapter.get_case(ticket, fresh=True)
    assert case is not None
    assert case.status is CaseStatus.APPLIED and case.accepted_at is None
    assert case.item_code == ITEM_3D and case.item_name == "食品经营许可（新办）"
    assert case.window == "一楼3-6号窗口（市场监管）" and case.window_phone == "0797-3312315"
    assert case.time_limit_days == 3
    walk: list[tuple[str, CaseStatus, dict[str, Any]]] = [
        ("受理", CaseStatus.ACCEPTED, {}),
        ("补正", CaseStatus.CORRECTION, {"missing_materials": ["经营场所使用证明复印件1份"]}),
        ("审核", CaseStatus.REVIEW, {}),
        ("审批", CaseStatus.APPROVAL, {}),
        ("办结", CaseStatus.COMPLETED, {}),
        ("已取件", CaseStatus.COLLECTED, {}),
    ]
    for label, status, extra in walk:
        await reference.change(ticket, label, **extra)
        case = await adapter.get_case(ticket, fresh=True)
        assert case is not None and case.status is status, label
        assert case.raw_status == label
    assert [s.status for s in case.history] == [CaseStatus.APPLIED, *(s for _, s, _ in walk)]
    assert case.accepted_at is not None
    for label, status in (("不予受理", CaseStatus.REJECTED), ("退回", CaseStatus.RETURNED)):
        other = await reference.create(status="申请" if label == "不予受理" else "受理")
        await reference.change(other["ticket_no"], label)
        got = await adapter.get_case(other["ticket_no"], fresh=True)
        assert got is not None and got.status is status and got.status.is_final


async def test_correction_lists_every_missing_material(
    reference: RefHarness, adapter: HttpApprovalBackend
) -> None:
    ticket = (await reference.create())["ticket_no"]
    missing = ["经营场所使用证明复印件1份", "食品安全管理制度文本1份", "法定代表人身份证复印件1份"]
    await reference.change(ticket, "补正", missing_materials=missing)
    case = await adapter.get_case(ticket, fresh=True)
    assert case is not None and case.missing_materials == tuple(missing)
    # Leaving 补正 clears the list.
    await reference.change(ticket, "审核")
    case = await adapter.get_case(ticket, fresh=True)
    assert case is not None and case.missing_materials == ()


async def test_completion_tells_where_and_what_to_bring(
    reference: RefHarness, adapter: HttpApprovalBackend
) -> None:
    ticket = (await reference.create())["ticket_no"]
    await reference.change(ticket, "办结")
    case = await adapter.get_case(ticket, fresh=True)
    assert case is not None and case.collection is not None
    assert case.collection.place == "信丰县行政服务中心一楼3-6号窗口"
    assert "身份证" in "".join(case.collection.bring) and case.collection.hours
    other = (await reference.create())["ticket_no"]
    await reference.change(
        other, "办结", collection={"place": "二楼EMS邮寄服务台", "method": "邮寄", "bring": ["受理回执"]}
    )
    case = await adapter.get_case(other, fresh=True)
    assert case is not None and case.collection is not None
    assert (case.collection.place, case.collection.method, case.collection.bring) == (
        "二楼EMS邮寄服务台",
        "邮寄",
        ("受理回执",),
    )


async def test_unknown_ticket_is_none_and_id_numbers_never_enter_the_model(
    reference: RefHarness, adapter: HttpApprovalBackend
) -> None:
    assert await adapter.get_case(make_ticket(date(2026, 2, 13), 999)) is None
    ticket = (await reference.create())["ticket_no"]
    raw = await reference.backend.get_case(ticket)
    assert raw is not None and raw["applicant"]["id_number"] == ID_NUMBER  # the backend has it …
    case = await adapter.get_case(ticket)
    assert case is not None
    assert ID_NUMBER not in json.dumps(case.to_json(), ensure_ascii=False)  # … our model does not
    assert case.applicant.phone == APPLICANT_PHONE
    assert APPLICANT_PHONE not in repr(case) and "张*三" in repr(case)


# ------------------------------------------------------------------------------------------- mapping file

VENDOR_MAPPING: dict[str, Any] = {
    "name": "vendor-b",
    "auth": {"header": "X-Api-Key", "scheme": ""},
    "endpoints": {
        "case": "/gateway/banjian/{ticket_no}",
        "changes": "/gateway/banjian-changes",
        "cursor_param": "after",
        "limit_param": "size",
    },
    "not_found_http_status": [],
    "envelope": {"data": "data", "code": "code", "ok_codes": ["0000"], "not_found_codes": ["4004"]},
    "case": {
        "ticket_no": "sblsh",
        "item_code": "sxbm",
        "item_name": "sxmc",
        "applicant_name": "sqr.xm",
        "applicant_phone": "sqr.lxdh",
        "window": "ckmc",
        "window_phone": "ckdh",
        "status": "blzt",
        "accepted_at": "slsj",
        "promised_date": "cnbjrq",
        "history": "lc",
        "missing_materials": "bzcl",
        "collection_place": "lzdd",
        "collection_bring": "lzxd",
    },
    "history": {"status": "hj", "at": "sj"},
    "changes": {
        "items": "rows",
        "next_cursor": "next",
        "ticket_no": "sblsh",
        "status": "blzt",
        "at": "sj",
    },
    "statuses": {"01": "applied", "02": "accepted", "03": "补正", "09": "办结"},
    "status_keywords": [{"contains": "出件", "status": "completed"}],
    "status_default": "review",
    "datetime_formats": ["%Y-%m-%d %H:%M:%S"],
    "date_formats": ["%Y%m%d"],
}
VENDOR_TICKET = make_ticket(date(2026, 2, 13), 7)
VENDOR_CASES: dict[str, dict[str, Any]] = {
    VENDOR_TICKET: {
        "sblsh": VENDOR_TICKET,
        "sxbm": "36072200-XK-009",
        "sxmc": "食品经营许可（新办）",
        "sqr": {"xm": "李四", "lxdh": "+86 139-8765-4321", "sfzh": "360722198001011234"},
        "ckmc": "一楼3-6号窗口",
        "ckdh": "0797-3312315",
        "blzt": "03",
        "slsj": "2026-02-13 09:30:00",
        "cnbjrq": "20260225",
        "lc": [{"hj": "02", "sj": "2026-02-13 09:30:00"}, {"hj": "03", "sj": "2026-02-14 15:00:00"}],
        "bzcl": "1.食品安全管理制度文本1份；2.经营场所平面图1份",
    }
}


def vendor_app(statuses: list[str]) -> web.Application:
    """A differently shaped backend: an envelope with result codes, pinyin fields, its own status codes."""

    async def case(request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != "k1":
            return web.json_response({"code": "4001", "msg": "未授权"}, status=401)
        data = VENDOR_CASES.get(request.match_info["ticket"])
        if data is None:
            return web.json_response({"code": "4004", "msg": "办件不存在", "data": None})
        return web.json_response({"code": "0000", "msg": "成功", "data": {**data, "blzt": statuses[0]}})

    async def changes(request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        rows: list[dict[str, Any]] = [
            {"id": n, "sblsh": VENDOR_TICKET, "blzt": s, "sj": "2026-02-14 15:00:00"}
            for n, s in enumerate(statuses, 1)
        ]
        page = [r for r in rows if r["id"] > after][: int(request.query["size"])]
        return web.json_response(
            {"code": "0000", "data": {"rows": page, "next": str(page[-1]["id"]) if page else None}}
        )

    app = web.Application()
    app.router.add_get("/gateway/banjian/{ticket}", case)
    app.router.add_get("/gateway/banjian-changes", changes)
    return app


async def test_mapping_file_maps_a_differently_shaped_backend(
    aiohttp_server, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    statuses = ["03"]
    server = await aiohttp_server(vendor_app(statuses))
    mapping_file = tmp_path / "vendor.json"
    mapping_file.write_text(json.dumps(VENDOR_MAPPING, ensure_ascii=False), encoding="utf-8")
    url = str(server.make_url("")).rstrip("/")
    settings = fast_settings(url, mapping_file=mapping_file, api_token=Secret("k1"))
    backend = HttpApprovalBackend(settings, redis_client)
    try:
        case = await backend.get_case(VENDOR_TICKET, fresh=True)
        assert case is not None
        assert case.status is CaseStatus.CORRECTION
        assert case.applicant.name == "李四" and case.applicant.phone == "13987654321"
        assert case.missing_materials == ("食品安全管理制度文本1份", "经营场所平面图1份")
        assert case.promised_on == date(2026, 2, 25)
        assert case.accepted_at is not None and case.accepted_at.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
        assert [s.status for s in case.history] == [CaseStatus.ACCEPTED, CaseStatus.CORRECTION]
        # Not found is a result code inside a 200 answer.
        assert await backend.get_case(make_ticket(date(2026, 2, 13), 8), fresh=True) is None
        # Unknown statuses land on the nearest of ours: file keyword, built-in keywords, the default.
        for raw, expected in (
            ("综合窗口已出件", CaseStatus.COMPLETED),
            ("初审中", CaseStatus.REVIEW),
            ("X9", CaseStatus.REVIEW),
        ):
            statuses[0] = raw
            got = await backend.get_case(VENDOR_TICKET, fresh=True)
            assert got is not None and got.status is expected, raw
        statuses[:] = ["01", "02", "09"]
        batch = await backend.changes_since(None, limit=2)
        assert [c.status for c in batch.changes] == [CaseStatus.APPLIED, CaseStatus.ACCEPTED]
        assert batch.next_cursor == "2"
        batch = await backend.changes_since(batch.next_cursor, limit=2)
        assert [c.status for c in batch.changes] == [CaseStatus.COMPLETED] and batch.next_cursor == "3"
        batch = await backend.changes_since("3", limit=2)
        assert batch.changes == () and batch.next_cursor == "3"
    finally:
        await backend.close()


def test_mapping_file_is_validated(tmp_path: Path) -> None:
    bad = dict(VENDOR_MAPPING, case={"status": "blzt"})
    with pytest.raises(ValueError, match="ticket_no"):
        FieldMapping.from_dict(bad)
    with pytest.raises(ValueError, match="unknown status"):
        FieldMapping.from_dict(dict(VENDOR_MAPPING, statuses={"01": "finished"}))
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read"):
        FieldMapping.load(path)
    assert FieldMapping.load().name == "reference"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("不予许可", CaseStatus.REJECTED),
        ("撤回申请", CaseStatus.RETURNED),
        ("待受理", CaseStatus.APPLIED),
        ("网上预审", CaseStatus.APPLIED),
        ("现场勘验中", CaseStatus.REVIEW),
        ("制证中", CaseStatus.APPROVAL),
        ("待领取", CaseStatus.COMPLETED),
        ("已领证", CaseStatus.COLLECTED),
        ("补齐补正材料", CaseStatus.CORRECTION),
        ("ACCEPTED", CaseStatus.ACCEPTED),
        ("审批", CaseStatus.APPROVAL),
        ("something else", CaseStatus.REVIEW),
    ],
)
def test_unknown_statuses_map_to_the_nearest(raw: str, expected: CaseStatus) -> None:
    assert FieldMapping.load().map_status(raw) is expected


# ---------------------------------------------------------------------------------------------- failures


async def test_slow_backend_times_out_within_the_budget(
    reference: RefHarness, adapter: HttpApprovalBackend
) -> None:
    ticket = (await reference.create())["ticket_no"]
    await reference.fault(delay=2.0, times=-1, path_prefix="/api/v1/cases/")
    started = time.monotonic()
    with pytest.raises(ApprovalUnavailable) as info:
        await adapter.get_case(ticket)
    elapsed = time.monotonic() - started
    assert info.value.reason == "timeout"
    assert elapsed < adapter.settings.budget + 0.3
    assert 2 <= await reference.case_calls() <= 3  # retried, but only within the budget
    assert ticket not in str(info.value)


async def test_one_slow_answer_is_retried(reference: RefHarness, adapter: HttpApprovalBackend) -> None:
    ticket = (await reference.create())["ticket_no"]
    await reference.fault(delay=0.8, times=1, path_prefix="/api/v1/cases/")
    case = await adapter.get_case(ticket)
    assert case is not None and await reference.case_calls() == 2


async def test_5xx_is_retried_then_succeeds(reference: RefHarness, adapter: HttpApprovalBackend) -> None:
    ticket = (await reference.create())["ticket_no"]
    await reference.fault(status=503, body='{"error": "busy"}', times=2)
    case = await adapter.get_case(ticket)
    assert case is not None and await reference.case_calls() == 3


async def test_5xx_exhausts_the_retries(reference: RefHarness, adapter: HttpApprovalBackend) -> None:
    ticket = (await reference.create())["ticket_no"]
    await reference.fault(status=500, body="Internal Server Error", times=-1)
    with pytest.raises(ApprovalUnavailable) as info:
        await adapter.get_case(ticket)
    assert info.value.reason == "server_error" and await reference.case_calls() == 3


@pytest.mark.parametrize(
    "body",
    ["{not json", '{"unexpected": true}', "[1, 2, 3]", '{"ticket_no": "202602130000126", "status": "受理"}'],
)
async def test_garbage_is_not_retried(reference: RefHarness, adapter: HttpApprovalBackend, body: str) -> None:
    ticket = (await reference.create())["ticket_no"]
    await reference.fault(status=200, body=body, times=1)
    with pytest.raises(ApprovalUnavailable) as info:
        await adapter.get_case(ticket)
    assert info.value.reason == "bad_response" and await reference.case_calls() == 1


async def test_circuit_breaker_opens_and_closes(reference: RefHarness, adapter: HttpApprovalBackend) -> None:
    ticket = (await reference.create())["ticket_no"]
    await reference.fault(status=500, times=-1)
    for _ in range(3):  # breaker_failures = 3 failed lookups (each with its retries)
        with pytest.raises(ApprovalUnavailable) as info:
            await adapter.get_case(ticket)
        assert not isinstance(info.value, CircuitOpenError)
    assert await adapter.breaker.state() is BreakerState.OPEN
    calls = await reference.case_calls()
    with pytest.raises(CircuitOpenError):
        await adapter.get_case(ticket)
    assert await reference.case_calls() == calls  # failing fast: the backend is left alone
    await reference.fault(times=0)  # the backend recovers
    await asyncio.sleep(0.7)  # breaker_open = 0.6 s
    assert await adapter.breaker.state() is BreakerState.HALF_OPEN
    case = await adapter.get_case(ticket)  # the probe
    assert case is not None
    assert await adapter.breaker.state() is BreakerState.CLOSED
    rendered = await Metrics(adapter._redis).render()
    assert 'govbot_approval_breaker_total{transition="opened"} 1' in rendered
    assert 'govbot_approval_breaker_total{transition="closed"} 1' in rendered
    assert 'govbot_approval_requests_total{result="circuit_open"} 1' in rendered


async def test_failed_probe_opens_the_breaker_again(
    reference: RefHarness, adapter: HttpApprovalBackend
) -> None:
    ticket = (await reference.create())["ticket_no"]
    await reference.fault(status=502, times=-1)
    for _ in range(3):
        with pytest.raises(ApprovalUnavailable):
            await adapter.get_case(ticket)
    await asyncio.sleep(0.7)
    calls = await reference.case_calls()
    with pytest.raises(ApprovalUnavailable) as info:
        await adapter.get_case(ticket)  # the probe fails
    assert not isinstance(info.value, CircuitOpenError)
    assert await reference.case_calls() > calls
    assert await adapter.breaker.state() is BreakerState.OPEN


async def test_half_open_lets_one_probe_through(reference: RefHarness, adapter: HttpApprovalBackend) -> None:
    ticket = (await reference.create())["ticket_no"]
    await reference.fault(status=500, times=-1)
    for _ in range(3):
        with pytest.raises(ApprovalUnavailable):
            await adapter.get_case(ticket)
    await reference.fault(delay=0.3, times=-1)  # recovered, but slow
    await asyncio.sleep(0.7)
    results = await asyncio.gather(
        *(adapter.get_case(ticket, fresh=True) for _ in range(3)), return_exceptions=True
    )
    assert sum(1 for r in results if isinstance(r, CircuitOpenError)) == 2
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1


async def test_not_found_is_an_answer_not_a_failure(
    reference: RefHarness, adapter: HttpApprovalBackend
) -> None:
    for n in range(5):
        assert await adapter.get_case(make_ticket(date(2026, 2, 13), 900 + n)) is None
    assert await adapter.breaker.state() is BreakerState.CLOSED


async def test_cache_expires(reference: RefHarness, redis_client: aioredis.Redis) -> None:
    backend = HttpApprovalBackend(fast_settings(reference.url, cache_ttl=0.4), redis_client)
    try:
        ticket = (await reference.create())["ticket_no"]
        assert (await backend.get_case(ticket)).status is CaseStatus.ACCEPTED  # type: ignore[union-attr]
        await reference.change(ticket, "审核")
        assert (await backend.get_case(ticket)).status is CaseStatus.ACCEPTED  # type: ignore[union-attr]
        assert await reference.case_calls() == 1
        assert (await backend.get_case(ticket, fresh=True)).status is CaseStatus.REVIEW  # type: ignore[union-attr]
        await reference.change(ticket, "审批")
        await asyncio.sleep(0.5)
        assert (await backend.get_case(ticket)).status is CaseStatus.APPROVAL  # type: ignore[union-attr]
        assert await reference.case_calls() == 3
    finally:
        await backend.close()


async def test_auth_token(aiohttp_server, redis_client: aioredis.Redis, tmp_path: Path, caplog) -> None:
    ref = ReferenceBackend(tmp_path / "approval.db")
    server = await aiohttp_server(build_app(ref, token="s3cret-token"))
    url = str(server.make_url("")).rstrip("/")
    case = await ref.create_case(item_code=ITEM_3D, applicant_name="王五", applicant_phone="13700001111")
    without = HttpApprovalBackend(fast_settings(url), redis_client)
    with_token = HttpApprovalBackend(fast_settings(url, api_token=Secret("s3cret-token")), redis_client)
    caplog.set_level(logging.INFO)
    try:
        with pytest.raises(ApprovalUnavailable) as info:
            await without.get_case(case["ticket_no"])
        assert info.value.reason == "unauthorized"
        got = await with_token.get_case(case["ticket_no"])
        assert got is not None and got.applicant.name == "王五"
        assert "s3cret-token" not in caplog.text
    finally:
        await without.close()
        await with_token.close()


async def test_change_feed_pages_with_a_cursor(reference: RefHarness, adapter: HttpApprovalBackend) -> None:
    first = (await reference.create())["ticket_no"]
    second = (await reference.create(status="申请"))["ticket_no"]
    await reference.change(first, "审核")
    await reference.change(second, "不予受理")
    seen: list[tuple[str, CaseStatus]] = []
    cursor: str | None = None
    for _ in range(5):
        batch = await adapter.changes_since(cursor, limit=3)
        seen += [(c.ticket_no, c.status) for c in batch.changes]
        cursor = batch.next_cursor
        if not batch.has_more:
            break
    assert seen == [
        (first, CaseStatus.ACCEPTED),
        (second, CaseStatus.APPLIED),
        (first, CaseStatus.REVIEW),
        (second, CaseStatus.REJECTED),
    ]
    again = await adapter.changes_since(cursor)
    assert again.changes == () and again.next_cursor == cursor


async def test_change_feed_failures_count_too(reference: RefHarness, adapter: HttpApprovalBackend) -> None:
    await reference.fault(status=200, body="<html>maintenance</html>", times=1, path_prefix="/api/v1/changes")
    with pytest.raises(ApprovalUnavailable) as info:
        await adapter.changes_since(None)
    assert info.value.reason == "bad_response"
    rendered = await Metrics(adapter._redis).render()
    assert 'govbot_approval_requests_total{result="bad_response"} 1' in rendered


async def test_connection_refused_is_unavailable(redis_client: aioredis.Redis) -> None:
    from aiohttp.test_utils import unused_port

    backend = HttpApprovalBackend(fast_settings(f"http://127.0.0.1:{unused_port()}"), redis_client)
    try:
        with pytest.raises(ApprovalUnavailable) as info:
            await backend.get_case(make_ticket(date(2026, 2, 13), 1))
        assert info.value.reason == "transport"
    finally:
        await backend.close()
