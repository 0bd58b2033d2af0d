"""The console's 投诉工单 pages over HTTP: the queue (deadline order, badges, filters, pages, export), one
complaint (history, notices, rating), every action form (CSRF, errors next to the form, the audit log),
department scoping and the reply composer's SMS count."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import timedelta

import openpyxl
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from bot.core.config import Settings
from bot.core.env import Secret
from bot.domains.complaints.intake import NewComplaint
from bot.domains.complaints.models import Complaint
from bot.domains.complaints.service import ComplaintService, reply_notice
from bot.domains.complaints.states import Kind
from bot.domains.staff.audit import AuditFilter
from bot.gateway.app import Services, build_app, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.web import complaint_pages
from sms_gateway.compose import Composer
from sms_gateway.config import SmsSettings
from sms_gateway.twilio import fake as fake_twilio
from tests.support.staff import PASSWORD
from tests.support.web import csrf_of

OFFICE = "行政服务中心办公室"


def complaints_of(services: Services) -> ComplaintService:
    assert services.complaints is not None
    return services.complaints


async def file(services: Services, text: str, key: str, **extra: object) -> str:
    new = NewComplaint(channel="window", sender_id="staff:t", description=text, **extra)  # type: ignore[arg-type]
    return (await complaints_of(services).create(new, idempotency_key=key)).complaint.number


async def set_values(services: Services, number: str, **values: object) -> None:
    async with services.sessions() as s:
        await s.execute(update(Complaint).where(Complaint.number == number).values(**values))
        await s.commit()


async def post(client: TestClient, path: str, data: dict[str, str]) -> ClientResponse:
    page = await (await client.get(path.rsplit("/", 1)[0])).text()
    return await client.post(path, data={"csrf_token": csrf_of(page), **data}, allow_redirects=False)


async def test_the_queue_needs_a_sign_in_and_complaints_read(console, sign_in) -> None:
    anonymous = await console()
    resp = await anonymous.get("/console/complaints", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/console/login?next=")
    editor = await sign_in("editor", ["kb_editor"])
    assert (await editor.get("/console/complaints")).status == 403
    assert (await editor.get("/console/complaints/TS0001")).status == 403
    viewer = await sign_in("viewer", ["viewer"])
    page = await (await viewer.get("/console/complaints")).text()
    assert "投诉工单" in page and 'for="f-status"' in page
    assert "导出 XLSX" not in page  # viewers do not hold complaints.export
    assert (await viewer.get("/console/complaints/export")).status == 403


async def test_the_queue_sorts_by_deadline_marks_overdue_and_due_today(sign_in, services: Services) -> None:
    svc = complaints_of(services)
    later = await file(services, "大厅叫号系统故障", "q1")
    overdue = await file(services, "窗口人员态度生硬", "q2")
    today_ = await file(services, "建议增加自助设备", "q3", kind=Kind.SUGGESTION, category="suggestion")
    closed = await file(services, "早已办结的投诉", "q4")
    today = svc.today()
    await set_values(services, later, accept_due=today + timedelta(days=5))
    await set_values(services, overdue, accept_due=today - timedelta(days=2))
    await set_values(services, today_, accept_due=today)
    await set_values(services, closed, status="closed", accept_due=today - timedelta(days=9))
    client = await sign_in("chief", ["complaint_supervisor"])
    page = await (await client.get("/console/complaints")).text()
    assert page.index(overdue) < page.index(today_) < page.index(later)
    assert closed not in page  # open complaints by default
    assert page.count("已超期") == 1 and page.count("今日到期") == 1
    everything = await (await client.get("/console/complaints?status=all")).text()
    assert closed in everything and everything.index(later) < everything.index(closed)
    suggestions = await (await client.get("/console/complaints?kind=suggestion")).text()
    assert today_ in suggestions and later not in suggestions
    by_category = await (await client.get("/console/complaints?category=suggestion&status=all")).text()
    assert today_ in by_category and overdue not in by_category
    registered = await (await client.get("/console/complaints?status=registered")).text()
    assert closed not in registered and later in registered


async def test_the_queue_is_paginated(sign_in, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(complaint_pages, "PAGE_SIZE", 2)
    numbers = [await file(services, f"第{i}件投诉", f"p{i}") for i in range(5)]
    client = await sign_in("chief", ["complaint_supervisor"])
    first = await (await client.get("/console/complaints")).text()
    assert "第 1 / 3 页" in first and 'rel="next"' in first and 'rel="prev"' not in first
    third = await (await client.get("/console/complaints?status=open&page=3")).text()
    assert "第 3 / 3 页" in third and 'rel="prev"' in third
    shown = [n for n in numbers if n in first or n in third]
    assert len(shown) == 3


async def test_export_is_the_filtered_list_with_cells_escaped(sign_in, services: Services) -> None:
    await file(services, '=HYPERLINK("http://evil")', "x1")
    await file(services, "建议增加座椅", "x2", kind=Kind.SUGGESTION, category="suggestion")
    client = await sign_in("handler-x", ["complaint_supervisor"])
    resp = await client.get("/console/complaints/export?status=open&kind=complaint")
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    assert sheet is not None
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0][0] == "编号" and len(rows) == 2  # the suggestion is filtered out
    assert '\'=HYPERLINK("http://evil")' in rows[1]
    assert services.staff is not None
    logged = await services.staff.audit.query(AuditFilter(action="complaint.export"))
    assert logged and logged[0].outcome == "ok"


async def test_another_departments_complaint_answers_404(sign_in, services: Services) -> None:
    svc = complaints_of(services)
    mine = await file(services, "本部门的投诉", "d1")
    theirs = await file(services, "别的部门的投诉", "d2")
    for number, department in ((mine, "不动产登记中心"), (theirs, "社保局")):
        await svc.accept(number, "督办员")
        await svc.dispatch(number, "督办员", department)
    client = await sign_in("clerk", ["complaint_handler"], "不动产登记中心")
    queue = await (await client.get("/console/complaints?department=社保局")).text()
    assert mine in queue and theirs not in queue  # the department is always one's own
    assert (await client.get(f"/console/complaints/{theirs}")).status == 404
    page = await (await client.get(f"/console/complaints/{mine}")).text()
    token = csrf_of(page)
    resp = await client.post(f"/console/complaints/{theirs}/start", data={"csrf_token": token})
    assert resp.status == 404
    assert 'id="form-start"' in page and 'id="form-return"' in page and 'id="form-dispatch"' not in page
    # 派单 is for supervisors even when the state allows it
    await svc.return_(mine, "承办人", "不属于本部门职责")
    page = await (await client.get(f"/console/complaints/{mine}")).text()
    assert 'id="form-dispatch"' not in page
    refused = await client.post(
        f"/console/complaints/{mine}/dispatch", data={"csrf_token": token, "department": "社保局"}
    )
    assert refused.status == 403 and "须由督办人员办理" in await refused.text()


async def test_the_whole_life_through_the_forms(sign_in, services: Services) -> None:
    svc = complaints_of(services)
    number = await file(services, "窗口工作人员态度生硬", "life", phone="13800138000")
    client = await sign_in("chief", ["complaint_supervisor"], OFFICE)
    base = f"/console/complaints/{number}"
    page = await (await client.get(base)).text()
    assert {"form-accept", "form-reject", "form-merge"} <= set(re.findall(r'id="(form-[a-z]+)"', page))
    assert 'for="reject-reason"' in page and 'id="reject-reason"' in page

    no_csrf = await client.post(f"{base}/accept", data={"note": "x"}, allow_redirects=False)
    assert no_csrf.status == 403 and "防伪令牌" in await no_csrf.text()

    bad = await post(client, f"{base}/reject", {"reason": ""})
    text = await bad.text()
    assert bad.status == 400 and 'id="err-reject"' in text and "不予受理的理由" in text

    steps = [
        ("accept", {"note": "属实，予以受理"}, "accepted"),
        ("dispatch", {"department": OFFICE}, "dispatched"),
        ("start", {"note": "已签收"}, "in_progress"),
        ("extend", {"days": "2", "reason": "需调查取证", "approver": "王主任"}, "in_progress"),
        ("reply", {"text": "经核实，已对该工作人员批评教育。"}, "replied"),
        ("callback", {"note": "电话回访，群众表示满意", "rating": "4"}, "called_back"),
        ("close", {"result": "resolved", "note": "办结"}, "closed"),
    ]
    for action, data, status in steps:
        resp = await post(client, f"{base}/{action}", data)
        assert resp.status == 303, (action, await resp.text())
        assert resp.headers["Location"] == f"{base}?done={action}#actions"
        row = await svc.get(number)
        assert row is not None and row.status == status, action
    row = await svc.get(number)
    assert row is not None and row.extension_days == 2 and row.rating == 4 and row.close_result == "resolved"
    history = await svc.history(number)
    assert history[-1].actor == "chief(chief)"
    page = await (await client.get(f"{base}?done=close")).text()
    assert "已办结。" in page and "4 分 · 满意" in page and "审批人：王主任" in page
    assert "当前状态（已办结）下没有您可办理的操作" in page
    assert "经核实，已对该工作人员批评教育。" in page  # the reply notice
    assert services.staff is not None
    logged = await services.staff.audit.query(AuditFilter(object_id=number, limit=50))
    actions = {(e.action, e.outcome) for e in logged}
    assert {(f"complaint.{a}", "ok") for a, _, _ in steps} <= actions
    assert ("complaint.reject", "failed") in actions


async def test_errors_show_next_to_the_form_and_keep_the_input(sign_in, services: Services) -> None:
    svc = complaints_of(services)
    number = await file(services, "办事效率低", "err")
    await svc.accept(number, "督办员")
    await svc.dispatch(number, "督办员", OFFICE)
    await svc.start(number, "承办人")
    client = await sign_in("chief", ["complaint_supervisor"], OFFICE)
    base = f"/console/complaints/{number}"
    resp = await post(client, f"{base}/extend", {"days": "abc", "reason": "调查", "approver": "王"})
    text = await resp.text()
    assert resp.status == 400 and "延期天数须为正整数" in text and 'value="王"' in text
    resp = await post(client, f"{base}/extend", {"days": "30", "reason": "调查", "approver": "王"})
    assert resp.status == 400 and "延期累计不能超过" in await resp.text()
    resp = await post(client, f"{base}/close", {"result": "resolved"})
    assert resp.status == 409  # not allowed in this state
    assert (await post(client, f"{base}/fly", {})).status == 404


async def test_rating_and_rectification_are_shown(sign_in, services: Services) -> None:
    svc = complaints_of(services)
    new = NewComplaint(channel="window", sender_id="staff:t", description="多次跑腿未办成")
    number = (await svc.create(new, idempotency_key="bad")).complaint.number
    await svc.accept(number, "督办员")
    await svc.dispatch(number, "督办员", OFFICE)
    await svc.start(number, "承办人")
    await svc.reply(number, "承办人", "已协调办理。")
    result = await svc.rate(number, "staff:t", 1, "根本没解决")
    assert result.reopened
    client = await sign_in("chief", ["complaint_supervisor"], OFFICE)
    page = await (await client.get(f"/console/complaints/{number}")).text()
    assert "1 分 · 非常不满意" in page and "差评" in page and "根本没解决" in page
    assert "差评重办次数：1" in page and "差评重办" in page
    assert "无微信、无手机号，无法送达" in page  # the reply composer (办理中 again) says how it reaches them


@pytest.fixture
async def sms_services(aiohttp_server, redis_client, sqlite_url) -> Services:
    sid, token, sender = (
        "AC0123456789abcdef0123456789abcdef",
        "test-twilio-auth-token-0123456789",
        "+15005550006",
    )
    fake = await aiohttp_server(fake_twilio.build_app(sid, token, from_numbers=(sender,)))
    sms = dataclasses.replace(
        SmsSettings(),
        twilio_account_sid=sid,
        twilio_auth_token=Secret(token),
        twilio_from_number=sender,
        twilio_api_base=str(fake.make_url("")).rstrip("/"),
    )
    settings = dataclasses.replace(Settings(), database_url=sqlite_url, wechat_message_mode="plain")
    return await build_services(settings, redis=redis_client, dialogue=ScriptedDialogue(), sms_settings=sms)


async def test_the_reply_composer_counts_sms_segments_with_the_signature(
    aiohttp_client, sms_services: Services
) -> None:
    services = sms_services
    svc = complaints_of(services)
    assert services.staff is not None and services.broadcasts is not None
    await services.staff.accounts.create("chief", "chief", PASSWORD, ["complaint_supervisor"], OFFICE, False)
    client = await aiohttp_client(build_app(services))
    await client.post("/console/login", data={"username": "chief", "password": PASSWORD})
    new = NewComplaint(channel="sms", sender_id="sms:+8613800138000", description="办事效率低")
    number = (await svc.create(new, idempotency_key="sms")).complaint.number
    await svc.accept(number, "督办员")
    await svc.dispatch(number, "督办员", OFFICE)
    await svc.start(number, "承办人")
    base = f"/console/complaints/{number}"
    page = await (await client.get(base)).text()
    signature = services.broadcasts.composer.prefix
    assert (
        "送达方式：<strong>短信</strong>" in page and f'data-prefix="{signature}您的投诉（{number}）' in page
    )
    assert 'data-count="reply-count"' in page and "data-suffix=" in page
    draft = "经核实，" + "已对相关窗口人员进行批评教育并整改。" * 6
    resp = await post(client, f"{base}/reply", {"text": draft, "preview": "1"})
    text = await resp.text()
    expected = Composer(services.broadcasts.composer.signature).whole([reply_notice(number, draft)])
    segments = sum(m.segments for m in expected)
    assert resp.status == 200 and f"计 {segments} 条短信" in text and segments > 1
    assert signature in text and draft in text  # kept in the box
    row = await svc.get(number)
    assert row is not None and row.status == "in_progress"  # a preview changes nothing


async def test_a_person_of_no_department_sees_no_complaint(sign_in, services: Services) -> None:
    """Without a department (and without complaints.supervise) nothing is one's own: not every one."""
    number = await file(services, "窗口态度不好", "nd1")
    nobody = await sign_in("nodept-handler", ["complaint_handler"], department="")
    page = await (await nobody.get("/console/complaints?status=all")).text()
    assert number not in page and "共 0 件" in page
    assert (await nobody.get(f"/console/complaints/{number}")).status == 404
    export = await nobody.get("/console/complaints/export?status=all")
    sheet = openpyxl.load_workbook(io.BytesIO(await export.read())).active
    assert sheet is not None and sheet.max_row == 1  # the header only
