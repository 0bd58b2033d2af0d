"""The console's 投诉工单 pages: the queue (by deadline, filters, pages, XLSX export) and one complaint (its
history, notices, rating and 差评整改, and a form for every action its state allows).

The rules are the complaint domain's: who sees what (``access.py``: without ``complaints.supervise`` only
one's own department, others' complaints answer 404; 派单 and 并单 only for supervisors), which actions a
state allows (``states.allowed_actions``) and the service methods the staff API calls (``staff_api.ACTIONS``),
always as the signed-in person (``actor_of(request).name``).  Every change is written to the audit log."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from bot.core.actor import Actor
from bot.core.masking import mask_text
from bot.core.spreadsheet import safe_cell
from bot.domains.complaints.access import department_scope, may_act, sees_none, visible
from bot.domains.complaints.categories import BY_CODE, CATEGORIES
from bot.domains.complaints.errors import ComplaintError, InvalidInputError, NotFoundError
from bot.domains.complaints.models import Complaint, ComplaintEvent, ComplaintNotice
from bot.domains.complaints.service import CLOSE_RESULTS, ComplaintService, reply_notice
from bot.domains.complaints.staff_api import ACTIONS, complaint_json
from bot.domains.complaints.states import (
    ACTION_LABELS,
    AWAITING_ACCEPTANCE,
    FINAL,
    IN_HANDLING,
    KIND_LABELS,
    RATING_LABELS,
    STATUS_LABELS,
    Action,
    Kind,
    Status,
    allowed_actions,
)
from bot.domains.complaints.sweep import SUPERVISION_LABELS
from bot.gateway.staff.auth import STAFF, actor_of, audit
from bot.gateway.web.jobs import XLSX, Download, Progress, deliver, in_thread
from bot.gateway.web.render import PREFIX, page
from sms_gateway.compose import Composer

if TYPE_CHECKING:
    from bot.gateway.app import Services

BASE = f"{PREFIX}/complaints"
PAGE_SIZE = 30
EXPORT_LIMIT = 10_000
MAX_FIELD = 5000
OPEN_STATUSES = [s.value for s in Status if s not in FINAL]
CHANNEL_LABELS = {
    "wechat": "微信", "sms": "短信", "window": "窗口", "phone": "电话", "letter": "信件",
    "12345": "12345 热线", "open311": "对接系统",
}  # fmt: skip
NOTICE_STATUS = {"pending": "待发送", "sending": "发送中", "sent": "已发送", "failed": "发送失败"}
NOTICE_PURPOSE = {"reply": "答复", "reject": "不予受理告知", "extend": "延期告知"}
DETAIL_LABELS = {
    "due": "办理期限", "days": "延期天数", "approver": "审批人", "old_due": "原期限", "new_due": "新期限",
    "rating": "评分", "label": "评价", "result": "办结结果", "level": "督办级别", "deadline": "期限",
    "redispatch": "重新派单", "previous": "原承办部门", "channel": "渠道", "kind": "类型", "category": "分类",
}  # fmt: skip


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "textarea"  # textarea | text | number | select
    required: bool = True
    options: tuple[tuple[str, str], ...] = ()
    maxlength: int = 1000


@dataclass(frozen=True)
class ActionForm:
    action: str
    title: str
    fields: tuple[Field, ...]
    button: str
    danger: bool = False


RATING_OPTIONS = (
    ("", "未评价"),
    *((str(k), f"{k} {v}") for k, v in sorted(RATING_LABELS.items(), reverse=True)),
)

# One form per staff action, with exactly the fields its service method takes.
FORMS: dict[str, ActionForm] = {
    f.action: f
    for f in (
        ActionForm("accept", "受理", (Field("note", "受理意见（可选）", required=False),), "受理"),
        ActionForm("reject", "不予受理", (Field("reason", "理由及告知的反映途径"),), "不予受理", danger=True),
        ActionForm("dispatch", "派单", (Field("department", "承办部门", "text", maxlength=100),), "派单"),
        ActionForm("return", "退单", (Field("reason", "退单理由"),), "退单", danger=True),
        ActionForm("start", "签收办理", (Field("note", "签收说明（可选）", required=False),), "签收"),
        ActionForm(
            "extend",
            "延期",
            (
                Field("days", "延期天数（工作日）", "number"),
                Field("reason", "延期理由"),
                Field("approver", "审批人", "text", maxlength=80),
            ),
            "申请延期",
        ),
        ActionForm("reply", "答复", (Field("text", "答复内容", maxlength=600),), "发送答复"),
        ActionForm(
            "callback",
            "回访",
            (
                Field("note", "回访情况"),
                Field("rating", "群众评价（电话回访时所给）", "select", False, RATING_OPTIONS),
            ),
            "记录回访",
        ),
        ActionForm(
            "close",
            "办结",
            (
                Field("result", "办结结果", "select", True, tuple(CLOSE_RESULTS.items())),
                Field("note", "办结说明（可选）", required=False),
            ),
            "办结",
        ),
        ActionForm("merge", "并单", (Field("into", "并入的投诉编号", "text", maxlength=16),), "并单"),
    )
}


def _services(request: web.Request) -> Services:
    from bot.gateway.app import SERVICES  # the app module imports this package: import at call time

    return request.app[SERVICES]


def _service(request: web.Request) -> ComplaintService:
    service = _services(request).complaints
    if service is None:
        raise web.HTTPNotFound(text="投诉功能未启用")
    return service


# ------------------------------------------------------------------------------------------ the queue


@dataclass(frozen=True)
class Filters:
    status: str = "open"  # open | all | a Status value
    department: str = ""
    kind: str = ""
    category: str = ""
    page: int = 1
    nobody: bool = False  # a person of no department (who does not supervise): no complaint is theirs

    def query(self, **changes: object) -> str:
        values = {"status": self.status, "department": self.department, "kind": self.kind,
                  "category": self.category, "page": self.page} | changes  # fmt: skip
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1) or k == "status"})


def _filters(request: web.Request, actor: Actor) -> Filters:
    q = request.query
    status = q.get("status", "open")
    if status not in ("open", "all") and status not in Status.__members__.values():
        status = "open"
    kind = q.get("kind", "")
    category = q.get("category", "")
    try:
        number = max(1, int(q.get("page", "1")))
    except ValueError:
        number = 1
    scope = department_scope(actor)
    return Filters(
        status=status,
        department=scope if scope is not None else q.get("department", "").strip()[:100],
        nobody=sees_none(scope),
        kind=kind if kind in Kind.__members__.values() else "",
        category=category if category in BY_CODE else "",
        page=number,
    )


async def _search(
    service: ComplaintService, f: Filters, limit: int, offset: int
) -> tuple[list[Complaint], int]:
    if f.nobody:  # a person of no department who does not supervise sees no complaint
        return [], 0
    statuses = OPEN_STATUSES if f.status == "open" else None if f.status == "all" else [f.status]
    return await service.search(
        status=statuses,
        department=f.department or None,
        kind=f.kind or None,
        category=f.category or None,
        limit=limit,
        offset=offset,
        order="deadline",
    )


def deadline_of(row: Complaint) -> date | None:
    """The deadline that runs now: acceptance while registered, handling while handled, else none."""
    status = Status(row.status)
    if status in AWAITING_ACCEPTANCE:
        return row.accept_due
    return row.due if status in IN_HANDLING else None


def _local(service: ComplaintService, moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(service.calendar.tz).strftime("%Y-%m-%d %H:%M")


def _row(service: ComplaintService, row: Complaint, today: date) -> dict[str, Any]:
    data = complaint_json(row)
    deadline = deadline_of(row)
    cat = BY_CODE.get(row.category)
    data.update(
        deadline=deadline.isoformat() if deadline else "",
        deadline_kind="受理" if Status(row.status) in AWAITING_ACCEPTANCE else "办理",
        is_overdue=deadline is not None and (row.overdue or deadline < today),
        due_today=deadline is not None and deadline == today and not row.overdue,
        category_name=cat.name if cat else row.category,
        channel_label=CHANNEL_LABELS.get(row.channel, row.channel),
        received_local=_local(service, row.received_at),
        summary=row.description if len(row.description) <= 40 else row.description[:40] + "…",
        supervision_label=SUPERVISION_LABELS.get(row.supervision_level, ""),
    )
    return data


def _choices() -> dict[str, Any]:
    return {
        "statuses": [("open", "未办结（全部在办）"), ("all", "全部")]
        + [(s.value, STATUS_LABELS[s]) for s in Status],
        "kinds": [(k.value, KIND_LABELS[k]) for k in Kind],
        "categories": [(c.code, c.name) for c in CATEGORIES],
    }


async def queue(request: web.Request) -> web.Response:
    actor = actor_of(request)
    service = _service(request)
    f = _filters(request, actor)
    rows, total = await _search(service, f, PAGE_SIZE, (f.page - 1) * PAGE_SIZE)
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    today = service.today()
    values = {
        "f": f,
        "rows": [_row(service, r, today) for r in rows],
        "total": total,
        "pages": pages,
        "prev_q": f.query(page=f.page - 1) if f.page > 1 else "",
        "next_q": f.query(page=f.page + 1) if f.page < pages else "",
        "export_q": f.query(page=1),
        "scoped": department_scope(actor) is not None,
        "may_export": actor.can("complaints.export"),
        "today": today.isoformat(),
        **_choices(),
    }
    return page(request, "complaints/list.html", values)


EXPORT_COLUMNS = (
    ("number", "编号"), ("kind_label", "类型"), ("category_name", "分类"), ("status_label", "状态"),
    ("owner_department", "承办部门"), ("received_local", "登记时间"), ("deadline", "期限"),
    ("overdue_text", "超期"), ("supervision_label", "督办"), ("channel_label", "渠道"), ("sender", "提交人"),
    ("phone", "联系电话"), ("respondent", "被投诉对象"), ("description", "诉求内容"),
    ("reply_text", "答复内容"), ("rating_label", "评价"), ("close_result", "办结结果"),
)  # fmt: skip


def export_xlsx(rows: list[dict[str, Any]], tick: Callable[[int], None] | None = None) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("投诉清单")
    ws.append([title for _, title in EXPORT_COLUMNS])
    for n, row in enumerate(rows, 1):
        ws.append([safe_cell(row.get(key)) for key, _ in EXPORT_COLUMNS])
        if tick is not None and n % 200 == 0:
            tick(n)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


async def export(request: web.Request) -> web.StreamResponse:
    """The filtered list as XLSX (GET: at once; the console's button POSTs and gets a progress page)."""
    actor = actor_of(request)
    service = _service(request)
    f = _filters(request, actor)

    async def produce(progress: Progress) -> Download:
        progress.update("读取投诉")
        rows, total = await _search(service, f, EXPORT_LIMIT, 0)
        today = service.today()
        data = [_row(service, r, today) for r in rows]
        for item in data:
            item["overdue_text"] = "是" if item["is_overdue"] else ""
            item["close_result"] = CLOSE_RESULTS.get(item["close_result"] or "", item["close_result"])
        summary = {"rows": len(data), "total": total, "query": f.query(), "via": "console"}
        await audit(request, "complaint.export", object_type="complaint", summary=summary)
        body = await in_thread(export_xlsx, data, progress.counter("生成表格", len(data)))
        return Download(f"complaints-{today.isoformat()}.xlsx", XLSX, body)

    return await deliver(request, "导出投诉清单", produce)


# ------------------------------------------------------------------------------------------ one complaint


def _event(service: ComplaintService, e: ComplaintEvent) -> dict[str, Any]:
    detail = json.loads(e.detail) if e.detail else {}
    pairs = []
    for key, value in (detail or {}).items():
        if value is None or value is False:
            continue
        shown = "是" if value is True else SUPERVISION_LABELS.get(value, value) if key == "level" else value
        if key == "result":
            shown = CLOSE_RESULTS.get(str(value), value)
        elif key == "kind" and value in Kind.__members__.values():
            shown = KIND_LABELS[Kind(value)]
        elif key == "category" and value in BY_CODE:
            shown = BY_CODE[value].name
        pairs.append((DETAIL_LABELS.get(key, key), shown))
    action = Action(e.action) if e.action in Action.__members__.values() else None
    return {
        "seq": e.seq,
        "at": _local(service, e.at),
        "actor": e.actor,
        "action": e.action,
        "action_label": ACTION_LABELS[action] if action else e.action,
        "from_label": STATUS_LABELS.get(Status(e.from_status), "") if e.from_status else "",
        "to_label": STATUS_LABELS.get(Status(e.to_status), "") if e.to_status else "",
        "department": e.department or "",
        "note": e.note or "",
        "detail": pairs,
    }


def _notice(service: ComplaintService, n: ComplaintNotice) -> dict[str, Any]:
    return {
        "purpose": NOTICE_PURPOSE.get(n.purpose, n.purpose),
        "text": n.text,
        "status": n.status,
        "status_label": NOTICE_STATUS.get(n.status, n.status),
        "via": n.via or "",
        "attempts": n.attempts,
        "error": n.error or "",
        "created_at": _local(service, n.created_at),
        "sent_at": _local(service, n.sent_at),
    }


def _delivery(request: web.Request, row: Complaint, draft: str) -> dict[str, Any]:
    """How the citizen will receive a reply: WeChat text, or SMS (with the count of billed segments, the
    【签名】 included), or nothing at all."""
    services = _services(request)
    sms_on = services.broadcasts is not None
    wechat = row.sender_id.startswith("wx:")
    has_phone = row.sender_id.startswith("sms:") or bool(row.phone)
    head, _, tail = reply_notice(row.number, "\x00").partition("\x00")
    info: dict[str, Any] = {"head": head, "tail": tail, "prefix": "", "messages": [], "segments": 0}
    if wechat:
        info["channel"] = "wechat"
        info["label"] = "微信文字消息（客服消息；群众超过48小时未互动时改发模板通知，提示其查询答复）"
        info["fallback"] = "微信无法送达时改发短信。" if sms_on and row.phone else ""
    elif has_phone and sms_on:
        info["channel"] = "sms"
        info["label"] = "短信"
        info["fallback"] = ""
    else:
        info["channel"] = "none"
        info["label"] = "短信通道未开启，无法送达" if has_phone else "无微信、无手机号，无法送达"
        info["fallback"] = "请电话或书面告知群众答复内容。"
    if sms_on and services.broadcasts is not None and (info["channel"] == "sms" or info["fallback"]):
        composer = Composer(services.broadcasts.composer.signature)
        info["prefix"] = composer.prefix
        if draft:
            messages = composer.whole([reply_notice(row.number, draft)])
            info["messages"] = [{"body": m.body, "segments": m.segments} for m in messages]
            info["segments"] = sum(m.segments for m in messages)
    return info


def _forms(actor: Actor, status: Status) -> list[ActionForm]:
    if not actor.can("complaints.handle"):
        return []
    return [FORMS[a.value] for a in allowed_actions(status) if a.value in FORMS and may_act(actor, a.value)]


async def _departments(request: web.Request) -> list[str]:
    accounts = await request.app[STAFF].accounts.all()
    return sorted({a.department for a in accounts if a.department})


async def _detail(
    request: web.Request,
    row: Complaint,
    *,
    errors: dict[str, str] | None = None,
    given: dict[str, dict[str, str]] | None = None,
    status: int = 200,
) -> web.Response:
    actor = actor_of(request)
    service = _service(request)
    number = row.number
    data = _row(service, row, service.today())
    forms = _forms(actor, Status(row.status))
    history = [_event(service, e) for e in await service.history(number)]
    given = given or {}
    draft = given.get("reply", {}).get("text", "")
    done = request.query.get("done", "")
    values = {
        "c": data,
        "history": history,
        "rectification": [e for e in history if e["action"] in ("reopen", "rate", "callback")],
        "notices": [_notice(service, n) for n in await service.notices(number)],
        "forms": forms,
        "errors": errors or {},
        "given": given,
        "done": ACTION_LABELS[Action(done)] if done in FORMS else "",
        "delivery": _delivery(request, row, draft) if any(f.action == "reply" for f in forms) else None,
        "departments": await _departments(request) if any(f.action == "dispatch" for f in forms) else [],
        "close_result_label": CLOSE_RESULTS.get(row.close_result or "", row.close_result or ""),
        "max_extension": service.settings.max_extension_days - row.extension_days,
        "preview": bool(given.get("reply", {}).get("preview")),
    }
    return page(request, "complaints/detail.html", values, status=status)


async def _visible(request: web.Request, number: str) -> Complaint:
    try:
        return await visible(_service(request), number, actor_of(request))
    except NotFoundError:
        raise web.HTTPNotFound(
            text=f"<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>未找到</title><main>"
            f"<h1>未找到投诉</h1><p>没有这件投诉，或您无权查看。</p><p><a href='{BASE}'>返回投诉工单</a></p>"
            "</main></html>",
            content_type="text/html",
        ) from None


async def detail(request: web.Request) -> web.Response:
    row = await _visible(request, request.match_info["number"].upper())
    return await _detail(request, row)


def _body(action: str, given: dict[str, str]) -> dict[str, Any]:
    """The form's text fields as the staff API's JSON body (numbers as integers)."""
    body: dict[str, Any] = dict(given)
    if action == "extend":
        try:
            body["days"] = int(given.get("days", ""))
        except ValueError:
            raise InvalidInputError("延期天数须为正整数（工作日）。") from None
    if action == "callback":
        rating = given.get("rating", "")
        try:
            body["rating"] = int(rating) if rating else None
        except ValueError:
            raise InvalidInputError("评价须为1到5的数字。") from None
    return body


def _given(form: MultiDictProxy[Any], spec: ActionForm) -> dict[str, str]:
    """The action's fields as typed (bounded; the service checks the real limits and says so in Chinese)."""
    return {f.name: str(form.get(f.name, "")).strip()[:MAX_FIELD] for f in spec.fields}


class _Forbidden(ComplaintError):
    status = 403
    code = "forbidden"


async def act(request: web.Request) -> web.StreamResponse:
    name = request.match_info["action"]
    number = request.match_info["number"].upper()
    row = await _visible(request, number)
    spec = FORMS.get(name)
    if spec is None:
        raise web.HTTPNotFound(text="不支持的操作")
    actor = actor_of(request)
    form = await request.post()
    given = _given(form, spec)
    if name == "reply" and form.get("preview"):
        return await _detail(request, row, given={name: {**given, "preview": "1"}})
    summary: dict[str, object] = {"via": "console", **{k: mask_text(v)[:200] for k, v in given.items()}}
    try:
        if not may_act(actor, name):
            raise _Forbidden(f"「{ACTION_LABELS[Action(name)]}」须由督办人员办理。")
        await ACTIONS[name](_service(request), number, actor.name, _body(name, given))
    except ComplaintError as exc:
        await audit(request, f"complaint.{name}", object_type="complaint", object_id=number, outcome="failed",
                    summary={**summary, "error": exc.code})  # fmt: skip
        fresh = await _service(request).get(number) or row
        return await _detail(
            request, fresh, errors={name: exc.message}, given={name: given}, status=exc.status
        )
    await audit(request, f"complaint.{name}", object_type="complaint", object_id=number, summary=summary)
    raise web.HTTPSeeOther(f"{BASE}/{number}?done={name}#actions")


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get(BASE, queue),
            web.get(BASE + "/export", export),
            web.post(BASE + "/export", export),
            web.get(BASE + "/{number}", detail),
            web.post(BASE + "/{number}/{action}", act),
        ]
    )
