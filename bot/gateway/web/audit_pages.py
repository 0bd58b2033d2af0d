"""审计日志 (audit.read): the staff audit log with filters (days in Beijing time, person, action, outcome),
pages of 50, and CSV/XLSX exports of the same filter (themselves audited, as ``/api/audit/export``)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.core.masking import mask_text
from bot.domains.staff.audit import AuditFilter, export_csv, export_xlsx
from bot.gateway.staff.auth import STAFF, audit
from bot.gateway.web.jobs import XLSX, Download, Progress, deliver, in_thread
from bot.gateway.web.listing import PAGE_SIZE, Pager, day_start, page_number, shown
from bot.gateway.web.render import PREFIX, page

PATH = PREFIX + "/audit"
OUTCOMES = {"ok": "成功", "failed": "失败", "denied": "拒绝"}
FIELDS = ("since", "until", "account", "action", "outcome")
EXPORT_LIMIT = 10_000


def _filter(request: web.Request) -> tuple[AuditFilter, dict[str, str], dict[str, str]]:
    """The filter, the query as typed (to refill the form) and errors by field."""
    q = {k: request.query.get(k, "").strip() for k in FIELDS}
    errors: dict[str, str] = {}
    account = None
    if q["account"]:
        if q["account"].isdigit():
            account = int(q["account"])
        else:
            errors["account"] = "请选择账号"
    if q["outcome"] and q["outcome"] not in OUTCOMES:
        errors["outcome"] = "请选择结果"
    f = AuditFilter(
        since=day_start(q["since"], "since", errors),
        until=day_start(q["until"], "until", errors, end=True),
        account_id=account,
        action=q["action"][:64] or None,
        outcome=q["outcome"] or None,
    )
    return f, q, errors


def _summary(raw: str) -> str:
    """The entry's summary, shortened for the table (masked: it may quote what someone typed)."""
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return mask_text(raw)[:200]
    if not data:
        return ""
    text = json.dumps(data, ensure_ascii=False)
    return mask_text(text[:300]) + ("…" if len(text) > 300 else "")


async def audit_page(request: web.Request) -> web.Response:
    f, q, errors = _filter(request)
    number = page_number(request.query.get("page"))
    staff = request.app[STAFF]
    rows = []
    if not errors:
        rows = await staff.audit.query(replace(f, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE))
    people = await staff.accounts.all()
    entries = [
        {
            "at": shown(r.at),
            "username": r.username,
            "action": r.action,
            "object_type": r.object_type,
            "object_id": r.object_id,
            "outcome": r.outcome,
            "outcome_name": OUTCOMES.get(r.outcome, r.outcome),
            "summary": _summary(r.summary),
            "client_ip": r.client_ip,
        }
        for r in rows[:PAGE_SIZE]
    ]
    query = {k: v for k, v in q.items() if v}
    values: dict[str, Any] = {
        "entries": entries,
        "q": q,
        "errors": errors,
        "accounts": [(a.id, f"{a.display_name}（{a.username}）") for a in people],
        "outcomes": OUTCOMES,
        "pager": Pager(number, len(rows) > PAGE_SIZE, query),
        "csv_link": f"{PATH}/export?" + urlencode({**query, "format": "csv"}),
        "xlsx_link": f"{PATH}/export?" + urlencode({**query, "format": "xlsx"}),
    }
    return page(request, "audit.html", values, status=400 if errors else 200)


async def audit_export(request: web.Request) -> web.StreamResponse:
    """GET: the file at once; the console's buttons POST and get a progress page."""
    fmt = request.query.get("format", "csv")
    f, q, errors = _filter(request)
    if fmt not in ("csv", "xlsx") or errors:
        raise web.HTTPBadRequest(
            text="筛选条件有误：" + "；".join(errors.values()) if errors else "格式应为 csv 或 xlsx"
        )

    async def produce(progress: Progress) -> Download:
        progress.update("读取审计记录")
        rows = await request.app[STAFF].audit.query(replace(f, limit=EXPORT_LIMIT))
        await audit(
            request, "audit.export", summary={"rows": len(rows), "format": fmt, "query": q, "via": "console"}
        )
        progress.update("生成文件", 0, len(rows))
        if fmt == "csv":
            return Download("audit.csv", "text/csv; charset=utf-8", await in_thread(export_csv, rows))
        return Download("audit.xlsx", XLSX, await in_thread(export_xlsx, rows))

    return await deliver(request, "导出审计日志", produce)


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get(PATH, audit_page),
            web.get(PATH + "/export", audit_export),
            web.post(PATH + "/export", audit_export),
        ]
    )
