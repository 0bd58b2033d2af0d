"""审计日志 and 办件查询审计 over HTTP: filters, pages, exports (audited, formula cells escaped), masking."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import openpyxl

from bot.core.actor import Actor
from bot.domains.progress.models import ProgressAudit
from bot.domains.staff.audit import AuditFilter
from bot.gateway.app import Services
from bot.gateway.web.listing import BEIJING


async def test_the_audit_log_needs_audit_read(console, sign_in) -> None:
    anonymous = await console()
    assert (await anonymous.get("/console/audit", allow_redirects=False)).status == 302
    viewer = await sign_in("watcher", ["viewer"])
    assert (await viewer.get("/console/audit")).status == 403
    assert (await viewer.get("/console/audit/export?format=csv")).status == 403
    admin = await sign_in("boss", ["admin"])
    page = await (await admin.get("/console/audit")).text()
    assert "审计日志" in page and "login" in page and 'for="outcome"' in page


async def test_filters_pages_and_exports(sign_in, services: Services) -> None:
    admin = await sign_in("boss", ["admin"])
    assert services.staff is not None
    log = services.staff.audit
    someone = Actor(account_id=999, username="clerk", display_name="窗口员", roles=frozenset({"viewer"}))
    for i in range(60):
        await log.record("kb.edit", actor=someone, object_id=i, summary={"phone": "13812345678"})
    await log.record("=cmd()", actor=someone, outcome="failed")
    page = await (await admin.get("/console/audit?action=kb.edit")).text()
    assert page.count("<code>kb.edit</code>") == 50 and "下一页" in page and "138****5678" in page
    assert "13812345678" not in page
    second = await (await admin.get("/console/audit?action=kb.edit&page=2")).text()
    assert second.count("<code>kb.edit</code>") == 10 and "上一页" in second
    failed = await (await admin.get("/console/audit?outcome=failed")).text()
    assert "=cmd()" in failed and "<code>kb.edit</code>" not in failed
    today = datetime.now(BEIJING).date()
    later = await (await admin.get(f"/console/audit?since={today + timedelta(days=1)}")).text()
    assert "没有符合条件的记录" in later
    bad = await admin.get("/console/audit?since=yesterday")
    assert bad.status == 400 and 'id="since-error"' in await bad.text()
    assert "format=csv" in failed and "outcome=failed" in failed
    csv = await admin.get("/console/audit/export?format=csv&outcome=failed")
    body = (await csv.read()).decode("utf-8-sig")
    assert csv.status == 200 and "'=cmd()" in body and "kb.edit" not in body
    xlsx = await admin.get("/console/audit/export?format=xlsx&action=kb.edit")
    sheet = openpyxl.load_workbook(io.BytesIO(await xlsx.read())).active
    assert sheet is not None and sheet.max_row == 61
    assert (await admin.get("/console/audit/export?format=pdf")).status == 400
    exports = await log.query(AuditFilter(action="audit.export"))
    assert len(exports) == 2


async def test_lookups_are_masked_filtered_and_paged(console, sign_in, services: Services) -> None:
    assert (await (await console()).get("/console/lookups", allow_redirects=False)).status == 302
    handler = await sign_in("handler1", ["complaint_handler"])  # holds no progress.audit
    assert (await handler.get("/console/lookups")).status == 403
    viewer = await sign_in("watcher", ["viewer"])
    now = datetime.now(UTC)
    async with services.sessions.begin() as session:
        wx = "wx:oAbcdefghijklmnopqrstuvwxyz01"
        for i in range(55):
            ticket = f"SP2026{i:06d}"
            session.add(
                ProgressAudit(created_at=now, channel="wechat", sender_id=wx, ticket_no=ticket,
                              action="lookup", result="shown")
            )  # fmt: skip
        session.add(
            ProgressAudit(created_at=now - timedelta(days=3), channel="sms", sender_id="sms:+8613812345678",
                          ticket_no="SP2026999999", action="verify", result="wrong_digits",
                          detail="phone 13812345678")
        )  # fmt: skip
    page = await (await viewer.get("/console/lookups")).text()
    assert page.count("wx:oAbcd***") == 49 and "sms:138****5678" in page  # newest first: 50 rows
    assert "oAbcdefghijklmnop" not in page and "下一页" in page
    sms = await (await viewer.get("/console/lookups?channel=sms")).text()
    assert "sms:138****5678" in sms and "13812345678" not in sms and "验证失败" in sms and "wx:" not in sms
    ticket = await (await viewer.get("/console/lookups?ticket=SP2026000007")).text()
    assert (
        ticket.count("SP2026000007") == 2 and "SP2026000008" not in ticket
    )  # the value in the form and the row
    today = datetime.now(BEIJING).date()
    recent = await (await viewer.get(f"/console/lookups?since={today}&result=wrong_digits")).text()
    assert "没有符合条件的记录" in recent
    assert services.staff is not None
    views = await services.staff.audit.query(AuditFilter(action="lookups.view"))
    assert len(views) == 4 and all(v.username == "watcher" for v in views)  # every look is recorded
    assert "SP2026000007" in views[-3].summary
    bad = await viewer.get("/console/lookups?result=nonsense")
    assert bad.status == 400 and 'id="result-error"' in await bad.text()
