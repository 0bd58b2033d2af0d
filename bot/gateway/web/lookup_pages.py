"""办件查询审计 (progress.audit): every case lookup citizens made (table ``progress_audit``), with filters
(days in Beijing time, channel, action, result, case number) and pages of 50.  Who asked is masked
(``wx:oAbcd***``, ``sms:138****1234``) and so is any personal data in the detail."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.core.masking import mask_sender, mask_text
from bot.domains.progress.models import ProgressAudit
from bot.gateway.staff.auth import audit
from bot.gateway.web.app_services import services_of
from bot.gateway.web.listing import PAGE_SIZE, Pager, day_start, page_number, shown
from bot.gateway.web.render import PREFIX, page

PATH = PREFIX + "/lookups"
CHANNELS = {"wechat": "微信", "sms": "短信"}
ACTIONS = {
    "lookup": "查询",
    "verify": "验证",
    "list": "列出",
    "unsubscribe": "退订",
    "resubscribe": "重新订阅",
}
RESULTS = {
    "shown": "已显示", "verify_requested": "要求验证", "not_found": "未找到", "not_owner": "非本人",
    "wrong_digits": "验证失败", "invalid_ticket": "编号无效", "rate_limited": "限流",
    "unavailable": "系统不可用", "ask_ticket": "询问编号", "listed": "已列出", "no_pending": "无待验证",
    "unsubscribed": "已退订", "resubscribed": "已重新订阅",
}  # fmt: skip
FIELDS = ("since", "until", "channel", "action", "result", "ticket")


async def lookups(request: web.Request) -> web.Response:
    q = {k: request.query.get(k, "").strip() for k in FIELDS}
    errors: dict[str, str] = {}
    since = day_start(q["since"], "since", errors)
    until = day_start(q["until"], "until", errors, end=True)
    for name, allowed in (("channel", CHANNELS), ("action", ACTIONS), ("result", RESULTS)):
        if q[name] and q[name] not in allowed:
            errors[name] = "请从列表中选择"
    if q["ticket"] and not q["ticket"].isalnum():
        errors["ticket"] = "办件编号只含字母和数字"
    number = page_number(request.query.get("page"))
    rows: list[ProgressAudit] = []
    if not errors:
        stmt = select(ProgressAudit).order_by(ProgressAudit.id.desc())
        if since is not None:
            stmt = stmt.where(ProgressAudit.created_at >= since)
        if until is not None:
            stmt = stmt.where(ProgressAudit.created_at < until)
        if q["channel"]:
            stmt = stmt.where(ProgressAudit.channel == q["channel"])
        if q["action"]:
            stmt = stmt.where(ProgressAudit.action == q["action"])
        if q["result"]:
            stmt = stmt.where(ProgressAudit.result == q["result"])
        if q["ticket"]:
            stmt = stmt.where(ProgressAudit.ticket_no == q["ticket"][:15])
        stmt = stmt.limit(PAGE_SIZE + 1).offset((number - 1) * PAGE_SIZE)
        async with services_of(request).sessions() as session:
            rows = list(await session.scalars(stmt))
        # Looking at who looked up which case is itself a staff action worth recording.
        asked = {k: v for k, v in q.items() if v}
        await audit(
            request, "lookups.view", object_type="progress_audit", summary={"query": asked, "page": number}
        )
    entries = [
        {
            "at": shown(r.created_at),
            "channel": CHANNELS.get(r.channel, r.channel),
            "who": mask_sender(r.sender_id),
            "ticket": r.ticket_no or "",
            "action": ACTIONS.get(r.action, r.action),
            "result": RESULTS.get(r.result, r.result),
            "ok": r.result in ("shown", "listed"),
            "detail": mask_text(r.detail or ""),
        }
        for r in rows[:PAGE_SIZE]
    ]
    values: dict[str, Any] = {
        "entries": entries,
        "q": q,
        "errors": errors,
        "channels": CHANNELS,
        "actions": ACTIONS,
        "results": RESULTS,
        "pager": Pager(number, len(rows) > PAGE_SIZE, {k: v for k, v in q.items() if v}),
    }
    return page(request, "lookups.html", values, status=400 if errors else 200)


def setup_routes(app: web.Application) -> None:
    app.add_routes([web.get(PATH, lookups)])
