"""总览 (the dashboard: conversations, unanswered questions, complaints, broadcast SMS over a period,
each chart with its table and an XLSX export) and 电子监察 (every case of the approval backend's change
feed with promised dates in working days, 预警 and overdue flags, on-time rates per department and window,
ratings per window, 督办, the monthly 效能通报)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from bot.core.clock import utcnow
from bot.core.masking import mask_text
from bot.domains.progress.factory import working_days_for
from bot.domains.progress.supervision import SupervisedCase, by_department, by_window, supervised_cases
from bot.domains.progress.urges import LABELS as URGE_LABELS
from bot.domains.progress.urges import UrgeBook
from bot.gateway.staff.auth import actor_of, audit
from bot.gateway.web import reports
from bot.gateway.web.jobs import XLSX, Download, Progress, deliver, in_thread
from bot.gateway.web.listing import shown
from bot.gateway.web.render import PREFIX, page
from bot.gateway.web.reports import Period, Reports, Table, rate

if TYPE_CHECKING:
    from bot.gateway.app import Services

PAGE_SIZE = 50
URGE_ACTION = "supervision.urge"


def _services(request: web.Request) -> Services:
    from bot.gateway.app import SERVICES  # app.py imports this package: look it up when called

    return request.app[SERVICES]


def _period(request: web.Request) -> tuple[Period, dict[str, str], date]:
    calendar = working_days_for(_services(request).settings)
    today = calendar.local_date(utcnow())
    period, errors = Period.parse(
        request.query.get("from", ""), request.query.get("to", ""), calendar.tz, today
    )
    return period, errors, today


def _chart(table: Table) -> str:
    """The chart's data for static/dashboard.js: x values from the first column, one series per other
    numeric column (a pie takes the first two columns)."""
    numeric = [i for i in range(1, len(table.columns)) if all(isinstance(r[i], int) for r in table.rows)]
    if table.name == "top_items":
        numeric, label = [3], 1
    else:
        label = 0
    if table.name == "messages":
        numeric = numeric[:-1]  # not the total
    return json.dumps(
        {
            "type": table.chart,
            "title": table.title,
            "x": [str(r[label]) for r in table.rows],
            "series": [{"name": table.columns[i], "data": [r[i] for r in table.rows]} for i in numeric],
        },
        ensure_ascii=False,
    )


async def dashboard(request: web.Request) -> web.Response:
    period, errors, _ = _period(request)
    services = _services(request)
    rep = Reports(services.sessions)
    tables = await rep.dashboard(period)
    in_time, answered = await rep.on_time(period)
    satisfied, rated = reports.satisfaction(tables["ratings"])
    turns = tables["outcomes"].rows
    total = sum(sum(r[1:]) for r in turns)
    kb = sum(r[1] for r in turns)
    summary = [
        ("消息", str(total)),
        ("知识库解答率", rate(kb, total)),
        ("投诉按时答复率", rate(in_time, answered)),
        ("满意率（4–5 星）", rate(satisfied, rated)),
    ]
    query = f"from={period.start.isoformat()}&to={period.end.isoformat()}"
    charts = [
        {
            "table": t,
            "data": _chart(t) if t.chart != "none" else "",
            "export": f"{PREFIX}/dashboard/export?chart={t.name}&{query}",
        }
        for t in tables.values()
    ]
    values = {
        "period": period,
        "errors": errors,
        "summary": summary,
        "charts": charts,
        "on_time": (in_time, answered),
    }
    return page(request, "dashboard.html", values, status=400 if errors else 200)


def _xlsx_response(data: bytes, filename: str) -> web.Response:
    return web.Response(
        body=data,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


async def dashboard_export(request: web.Request) -> web.Response:
    period, errors, _ = _period(request)
    if errors:
        raise web.HTTPBadRequest(text="日期格式不正确")
    tables = await Reports(_services(request).sessions).dashboard(period)
    table = tables.get(request.query.get("chart", ""))
    if table is None:
        raise web.HTTPNotFound(text="没有这个图表")
    return _xlsx_response(
        reports.xlsx([table]), f"{table.title}_{period.start.isoformat()}_{period.end.isoformat()}.xlsx"
    )


async def _cases(request: web.Request, period: Period, today: date) -> list[SupervisedCase]:
    services = _services(request)
    calendar = working_days_for(services.settings)
    return await supervised_cases(services.sessions, calendar, today, period.since, period.until)


async def supervision(request: web.Request) -> web.Response:
    return await _supervision_page(request, {}, {})


async def _supervision_page(
    request: web.Request, urge_errors: dict[str, str], urge_form: dict[str, str]
) -> web.Response:
    period, errors, today = _period(request)
    services = _services(request)
    cases = await _cases(request, period, today)
    department = request.query.get("department", "")
    departments = by_department(cases)
    listed = [c for c in cases if not department or c.department == department]
    flag = request.query.get("flag", "")
    if flag in ("overdue", "warning"):
        listed = [c for c in listed if c.flag == flag]
    try:
        page_no = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page_no = 1
    pages = max(1, (len(listed) + PAGE_SIZE - 1) // PAGE_SIZE)
    page_no = min(page_no, pages)
    base = {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "department": department,
        "flag": flag,
    }
    values = {
        "period": period,
        "errors": errors,
        "today": today,
        "departments": departments,
        "department": department,
        "flag": flag,
        "cases": listed[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE],
        "total": len(listed),
        "windows": by_window(listed if department else cases),
        "page_no": page_no,
        "pages": pages,
        "base": base,
        "respondents": await reports.ratings_by_respondent(services.sessions, period),
        "rate": rate,
        "month": today.strftime("%Y-%m"),
        "urges": await _recent_urges(request),
        "urge_errors": urge_errors,
        "urge_form": urge_form,
        "urged": request.query.get("urged") == "1",
    }
    return page(request, "supervision.html", values, status=400 if errors or urge_errors else 200)


async def _recent_urges(request: web.Request) -> list[dict[str, str]]:
    """The last 督办单 with how far each department got (签收, 反馈), masked."""
    found = await UrgeBook(_services(request).sessions).search(limit=20)
    return [
        {
            "id": str(r.id),
            "at": shown(r.created_at),
            "by": r.created_by,
            "department": r.department,
            "ticket_no": r.ticket_no,
            "note": mask_text(r.note),
            "status": r.status,
            "label": URGE_LABELS.get(r.status, r.status),
            "answer": mask_text(r.answer or ""),
        }
        for r in found.rows
    ]


async def urge(request: web.Request) -> web.StreamResponse:
    """督办: a 督办单 to a department (optionally about one case).  The department's staff see it on every
    console page until they answer it (``urge_pages``); it is also audited and listed here."""
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("department", "ticket_no", "note")}
    errors: dict[str, str] = {}
    if not values["department"] or len(values["department"]) > 64:
        errors["department"] = "请填写被督办的部门（64 字以内）"
    if values["ticket_no"] and not (values["ticket_no"].isdigit() and len(values["ticket_no"]) <= 15):
        errors["ticket_no"] = "办件编号应为 15 位以内的数字"
    if not values["note"] or len(values["note"]) > 500:
        errors["note"] = "请填写督办意见（500 字以内）"
    if errors:
        return await _supervision_page(request, errors, values)
    row = await UrgeBook(_services(request).sessions).create(
        department=values["department"], ticket_no=values["ticket_no"], note=values["note"],
        by=actor_of(request).name,
    )  # fmt: skip
    await audit(
        request, URGE_ACTION, object_type="department", object_id=values["department"],
        summary={"urge": row.id, "ticket_no": values["ticket_no"], "note": values["note"]},
    )  # fmt: skip
    raise web.HTTPFound(PREFIX + "/supervision?urged=1")


def _month(raw: str, today: date) -> tuple[date, date] | None:
    raw = raw or today.strftime("%Y-%m")
    try:
        first = date.fromisoformat(raw + "-01")
    except ValueError:
        return None
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


async def supervision_report(request: web.Request) -> web.StreamResponse:
    """The monthly 效能通报: per department, cases received/completed and the on-time rate, complaints and
    their on-time answer rate, 好差评 satisfaction; and the list of overdue cases.  (GET: at once; the
    console's button POSTs and gets a progress page.)"""
    calendar = working_days_for(_services(request).settings)
    today = calendar.local_date(utcnow())
    raw = request.query.get("month", "")
    if request.method == "POST":
        raw = str((await request.post()).get("month", "")) or raw
    month = _month(raw, today)
    if month is None:
        raise web.HTTPBadRequest(text="月份格式应为 YYYY-MM")
    period = Period(month[0], month[1], calendar.tz, today)

    async def produce(progress: Progress) -> Download:
        progress.update("统计办件与投诉")
        return Download(
            f"效能通报_{month[0].strftime('%Y-%m')}.xlsx",
            XLSX,
            await _efficiency_report(request, period, today),
        )

    return await deliver(request, f"效能通报 {month[0].strftime('%Y-%m')}", produce)


async def _efficiency_report(request: web.Request, period: Period, today: date) -> bytes:
    services = _services(request)
    cases = await _cases(request, period, today)
    complaints = await reports.complaints_by_department(services.sessions, period)
    summary = Table(
        "summary",
        "效能通报",
        ["部门", "收件", "办结", "按时办结", "按期办结率", "超期在办", "预警", "投诉收到", "投诉答复",
         "按时答复率", "评价数", "满意率"],
    )  # fmt: skip
    case_figures = {f.name: f for f in by_department(cases)}
    for name in sorted(set(case_figures) | set(complaints)):
        f = case_figures.get(name)
        c = complaints.get(name) or reports.DepartmentComplaints(name)
        summary.rows.append(
            [
                name,
                f.received if f else 0,
                f.completed if f else 0,
                f.completed_on_time if f else 0,
                rate(f.completed_on_time, f.completed) if f else "—",
                f.overdue if f else 0,
                f.warning if f else 0,
                c.received,
                c.answered,
                rate(c.answered_on_time, c.answered),
                c.rated,
                rate(c.satisfied, c.rated),
            ]
        )
    overdue = Table(
        "overdue", "超期清单", ["部门", "办件编号", "事项", "窗口", "状态", "受理日期", "承诺办结"]
    )
    for case in cases:
        if case.flag == "overdue":
            overdue.rows.append(
                [
                    case.department,
                    case.ticket_no,
                    case.item_name,
                    case.window,
                    case.status_label,
                    (case.accepted_on or case.first_seen).isoformat(),
                    case.promised.isoformat() if case.promised else "",
                ]
            )
    return await in_thread(reports.xlsx, [summary, overdue])


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get(PREFIX + "/dashboard", dashboard),
            web.get(PREFIX + "/dashboard/export", dashboard_export),
            web.get(PREFIX + "/supervision", supervision),
            web.get(PREFIX + "/supervision/report", supervision_report),
            web.post(PREFIX + "/supervision/report", supervision_report),
            web.post(PREFIX + "/supervision/urge", urge),
        ]
    )
