"""总览 and 电子监察 over HTTP: figures from the database, XLSX exports, who may see them; and the
conversation's turn log that feeds the dashboard."""

from __future__ import annotations

import io
from datetime import timedelta

import openpyxl
from sqlalchemy import select

from bot.gateway.app import Services
from bot.gateway.conversation.dialogue import BotMessage
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.conversation.service import Inbound
from bot.gateway.conversation.turn_log import TurnLog
from bot.gateway.models import ConversationTurn
from tests.support.reports import ITEM, local_today, seed
from tests.support.web import csrf_of


def _sheet(body: bytes) -> list[list[object]]:
    wb = openpyxl.load_workbook(io.BytesIO(body))
    return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]


async def test_dashboard_shows_the_periods_figures_with_charts_and_tables(
    sign_in, services: Services
) -> None:
    period = await seed(services.sessions)
    client = await sign_in("viewer1", ["viewer"])
    resp = await client.get("/console/dashboard", params=period)
    html = await resp.text()
    assert resp.status == 200, html
    assert "echarts.common.min.js" in html and "dashboard.js" in html
    for title in ("每日消息量（按渠道）", "每日答复方式", "咨询最多的 20 个事项", "每日未答问题",
                  "每日投诉工单", "好差评分布", "群发短信"):  # fmt: skip
        assert title in html
    assert html.count('class="chart"') == 7 and html.count("导出 Excel") == 7
    assert "知识库解答率</span> <strong>60.0%</strong>" in html  # 3 of 5 turns
    assert "投诉按时答复率</span> <strong>50.0%</strong>" in html  # 1 of 2 answered by the due date
    assert "满意率（4–5 星）</span> <strong>50.0%</strong>" in html
    assert f"<td>{ITEM}</td>" in html and "<td>民政局</td><td>2</td>" in html
    # the default period is the last 30 days, and a wrong date is shown next to its field
    assert (await client.get("/console/dashboard")).status == 200
    bad = await client.get("/console/dashboard", params={"from": "昨天"})
    assert bad.status == 400 and 'id="from-error"' in await bad.text()


async def test_each_chart_exports_its_table_as_xlsx(sign_in, services: Services) -> None:
    period = await seed(services.sessions)
    client = await sign_in("viewer2", ["viewer"])
    resp = await client.get("/console/dashboard/export", params={"chart": "sms", **period})
    assert resp.status == 200 and "spreadsheetml" in resp.headers["Content-Type"]
    rows = _sheet(await resp.read())
    assert rows[0] == ["日期", "发送", "送达", "失败", "退订"]
    yesterday = (local_today() - timedelta(days=1)).isoformat()
    assert [yesterday, 4, 2, 1, 1] in rows
    top = _sheet(await (await client.get("/console/dashboard/export", params={"chart": "top_items"})).read())
    assert str(top[1][1]).startswith("'=")  # a formula in a name is text in the sheet
    assert (await client.get("/console/dashboard/export", params={"chart": "nope"})).status == 404


async def test_reports_are_refused_without_reports_read(sign_in, console) -> None:
    handler = await sign_in("handler", ["complaint_handler"])
    for path in ("/console/dashboard", "/console/dashboard/export?chart=sms", "/console/supervision",
                 "/console/supervision/report"):  # fmt: skip
        assert (await handler.get(path, allow_redirects=False)).status == 403, path
    anonymous = await console()
    resp = await anonymous.get("/console/dashboard", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/console/login")
    admin = await sign_in("admin1", ["admin"])
    assert (await admin.get("/console/dashboard")).status == 200


async def test_supervision_flags_warning_and_overdue_cases(sign_in, services: Services) -> None:
    period = await seed(services.sessions)
    client = await sign_in("viewer3", ["viewer"])
    resp = await client.get("/console/supervision", params=period)
    html = await resp.text()
    assert resp.status == 200, html
    assert "202601010000001" in html and '<span class="badge bad">超期</span>' in html
    assert '<span class="badge warn">预警</span>' in html and '<span class="badge ok">按时</span>' in html
    assert "<td>民政局</td><td>2</td><td>1</td><td>1</td><td>100.0%</td>" in html
    assert "3号窗口" in html and "8号窗口" in html  # ratings per window
    only = await (await client.get("/console/supervision", params={**period, "flag": "overdue"})).text()
    assert "202601010000001" in only and "202601010000003" not in only
    dept = await (await client.get("/console/supervision", params={**period, "department": "公安局"})).text()
    assert "202601010000003" in dept and "202601010000001" not in dept


async def test_monthly_report_per_department(sign_in, services: Services) -> None:
    await seed(services.sessions)
    client = await sign_in("viewer4", ["viewer"])
    month = local_today().strftime("%Y-%m")
    resp = await client.get("/console/supervision/report", params={"month": month})
    assert resp.status == 200 and "spreadsheetml" in resp.headers["Content-Type"]
    wb = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    summary = [list(r) for r in wb["效能通报"].iter_rows(values_only=True)]
    assert summary[0][:5] == ["部门", "收件", "办结", "按时办结", "按期办结率"]
    depts = {r[0]: r for r in summary[1:]}
    assert "公安局" in depts and depts["公安局"][7] == 1  # a complaint received this month
    assert (await client.get("/console/supervision/report", params={"month": "2026-13"})).status == 400


async def test_each_turn_is_recorded_with_how_it_was_answered(services: Services) -> None:
    dialogue = services.dialogue
    assert isinstance(dialogue, ScriptedDialogue)
    replies = {
        "结婚登记": [BotMessage("要带身份证"), BotMessage(custom={"answered": "kb", "item_code": ITEM})],
        "养猫": [BotMessage("没听懂"), BotMessage(custom={"answered": "fallback"})],
        "转人工": [BotMessage("正在转接"), BotMessage(custom={"handoff": "transfer"})],
    }
    dialogue.reply = lambda text: replies.get(text, [BotMessage("你好")])
    for text in ("结婚登记", "养猫", "转人工", "你好"):
        await services.conversation.handle(Inbound("sms:+8613812345678", "sms", text))
    turn_log = services.conversation.turn_log
    assert turn_log is not None
    await turn_log.drain()
    async with services.sessions() as s:
        rows = list(await s.scalars(select(ConversationTurn).order_by(ConversationTurn.id)))
    assert sorted((r.outcome, r.item_code or "") for r in rows) == [
        ("fallback", ""), ("handoff", ""), ("kb", ITEM), ("other", "")
    ]  # fmt: skip
    assert {r.channel for r in rows} == {"sms"} and sorted(r.text_length for r in rows) == [2, 2, 3, 4]
    assert all("13812345678" not in r.sender_hash and len(r.sender_hash) == 32 for r in rows)


async def test_a_failing_insert_never_fails_the_turn(services: Services, caplog) -> None:
    def broken() -> object:
        raise RuntimeError("database down")

    services.conversation.turn_log = TurnLog(broken, b"k")  # type: ignore[arg-type]
    outcome = await services.conversation.handle(Inbound("wx:oAbcdefghijklmnopqrstuv", "wechat", "你好"))
    await services.conversation.turn_log.drain()
    assert outcome.texts and "turn not recorded" in caplog.text


async def test_figures_on_each_database(database_url: str) -> None:
    """The same SQL on SQLite and PostgreSQL (local days, working-day promised dates)."""
    from zoneinfo import ZoneInfo

    from bot.core.db import create_engine, session_factory
    from bot.domains.progress.supervision import by_department, supervised_cases
    from bot.domains.progress.workdays import WorkingDays
    from bot.gateway.web import reports

    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        period_args = await seed(sessions)
        today = local_today()
        period, errors = reports.Period.parse(
            period_args["from"], period_args["to"], ZoneInfo("Asia/Shanghai"), today
        )
        assert errors == {}
        rep = reports.Reports(sessions)
        tables = await rep.dashboard(period)
        yesterday = (today - timedelta(days=1)).isoformat()
        assert [yesterday, 3, 2, 5] in tables["messages"].rows
        assert tables["top_items"].rows[0][0] == ITEM and tables["top_items"].rows[0][3] == 2
        assert [yesterday, 1, 0, 1] in tables["unanswered"].rows
        assert sum(r[1] for r in tables["complaints"].rows) == 3
        assert sum(r[4] for r in tables["complaints"].rows) >= 1  # TS000003, due yesterday, unanswered
        assert await rep.on_time(period) == (1, 2)
        assert reports.satisfaction(tables["ratings"]) == (1, 2)
        by_window = await reports.ratings_by_respondent(sessions, period)
        assert {(r.respondent, r.rated, r.satisfied) for r in by_window} == {
            ("3号窗口", 1, 1),
            ("8号窗口", 1, 0),
        }
        depts = await reports.complaints_by_department(sessions, period)
        assert depts["民政局"].received == 2 and depts["民政局"].answered_on_time == 1
        cases = await supervised_cases(sessions, WorkingDays(), today, period.since, period.until)
        assert {c.ticket_no: c.flag for c in cases} == {
            "202601010000001": "overdue", "202601010000002": "", "202601010000003": "warning"
        }  # fmt: skip
        figures = {f.name: f for f in by_department(cases)}
        assert (figures["民政局"].received, figures["民政局"].completed_on_time) == (2, 1)
    finally:
        await engine.dispose()


async def test_urging_a_department_is_audited_and_listed(sign_in, services: Services) -> None:
    await seed(services.sessions)
    viewer = await sign_in("viewer5", ["viewer"])
    page = await (await viewer.get("/console/supervision")).text()
    assert "发出督办" not in page  # reading only: no form
    refused = await viewer.post(
        "/console/supervision/urge",
        data={"csrf_token": csrf_of(page), "department": "民政局", "note": "请尽快办理"},
        allow_redirects=False,
    )
    assert refused.status == 403
    boss = await sign_in("boss5", ["viewer", "complaint_supervisor"])
    page = await (await boss.get("/console/supervision")).text()
    assert 'for="urge-note"' in page and "发出督办" in page
    form = {"department": "民政局", "ticket_no": "202601010000001", "note": "超期请说明，联系 13812345678"}
    no_token = await boss.post("/console/supervision/urge", data=form, allow_redirects=False)
    assert no_token.status == 403
    empty = await boss.post(
        "/console/supervision/urge", data={"csrf_token": csrf_of(page), "department": "民政局"}
    )
    assert empty.status == 400 and 'id="urge-note-error"' in await empty.text()
    resp = await boss.post(
        "/console/supervision/urge", data={"csrf_token": csrf_of(page), **form}, allow_redirects=False
    )
    assert resp.status == 302 and resp.headers["Location"] == "/console/supervision?urged=1"
    listed = await (await viewer.get("/console/supervision?urged=1")).text()
    assert "督办单已发出" in listed and "超期请说明" in listed and "138****5678" in listed
    assert "13812345678" not in listed
    assert services.staff is not None
    from bot.domains.staff.audit import AuditFilter

    (row,) = await services.staff.audit.query(AuditFilter(action="supervision.urge"))
    assert row.username == "boss5" and row.object_id == "民政局"
