"""Staff HTTP API for complaints (JSON), for the CLI's colleagues and the future web console.

    GET  /api/complaints?status=a,b&overdue=true&department=…&kind=…&from=YYYY-MM-DD&to=…&limit=&offset=
    POST /api/complaints                         register a complaint taken at the window or by phone
    GET  /api/complaints/meta                    states, kinds, categories, actions allowed per state
    POST /api/complaints/sweep                   run the overdue sweep now
    GET  /api/complaints/{number}                the complaint, its history and its notices
    POST /api/complaints/{number}/{action}       accept | reject | merge | dispatch | return | start |
                                                 extend | reply | callback | close

Who acts is the authenticated staff member the gateway's middleware puts in ``request[ACTOR]`` (a
:class:`~bot.core.actor.Actor`; the middleware also checks each route's permission and writes the audit
log).  Without ``complaints.supervise`` a person sees and works only the complaints of their own
department (others answer 404, as if they did not exist); supervisors see every department, dispatch,
and run the 督办 sweep.  Errors are ``{"error": code, "message": 中文}`` with 400 (bad input), 401 (not
signed in), 404 (unknown number), 409 (illegal transition or concurrent change).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

from bot.core.actor import ACTOR, Actor
from bot.core.clock import as_utc
from bot.core.masking import mask_phone, mask_sender
from bot.domains.complaints.access import department_scope, may_act, sees_none, visible
from bot.domains.complaints.categories import CATEGORIES
from bot.domains.complaints.errors import ComplaintError, InvalidInputError
from bot.domains.complaints.intake import NewComplaint
from bot.domains.complaints.models import Complaint, ComplaintEvent, ComplaintNotice
from bot.domains.complaints.service import CLOSE_RESULTS, ComplaintService
from bot.domains.complaints.states import (
    ACTION_LABELS,
    KIND_LABELS,
    RATING_LABELS,
    STATUS_LABELS,
    Kind,
    Status,
    allowed_actions,
)
from bot.domains.complaints.states import (
    Action as StateAction,
)

MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1  # a database refuses larger ones (SQLite past 64 bits: an OverflowError)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value.isoformat()
    moment = as_utc(value)
    return moment.isoformat() if moment else None


def complaint_json(row: Complaint) -> dict[str, Any]:
    """The staff view.  The citizen's account is masked; a confidential complainant's phone is masked too."""
    status = Status(row.status)
    return {
        "number": row.number,
        "channel": row.channel,
        "sender": mask_sender(row.sender_id),
        "kind": row.kind,
        "kind_label": KIND_LABELS[Kind(row.kind)],
        "category": row.category,
        "phone": (mask_phone(row.phone) if row.confidential else row.phone) if row.phone else None,
        "confidential": row.confidential,
        "respondent": row.respondent,
        "description": row.description,
        "occurred": row.occurred,
        "location": row.location,
        "received_at": _iso(row.received_at),
        "status": row.status,
        "status_label": STATUS_LABELS[status],
        "status_note": row.status_note,
        "allowed_actions": [a.value for a in allowed_actions(status)],
        "accept_due": _iso(row.accept_due),
        "decided_at": _iso(row.decided_at),
        "decision_reason": row.decision_reason,
        "owner_department": row.owner_department,
        "due": _iso(row.due),
        "extension_days": row.extension_days,
        "reply_text": row.reply_text,
        "replied_at": _iso(row.replied_at),
        "rating": row.rating,
        "rating_label": RATING_LABELS.get(row.rating) if row.rating else None,
        "rating_comment": row.rating_comment,
        "bad_review": row.bad_review,
        "reopen_count": row.reopen_count,
        "callback_note": row.callback_note,
        "overdue": row.overdue,
        "supervision_level": row.supervision_level,
        "escalated_at": _iso(row.escalated_at),
        "closed_at": _iso(row.closed_at),
        "close_result": row.close_result,
        "version": row.version,
        "updated_at": _iso(row.updated_at),
    }


def event_json(event: ComplaintEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": _iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "department": event.department,
        "note": event.note,
        "detail": json.loads(event.detail) if event.detail else None,
    }


def notice_json(notice: ComplaintNotice) -> dict[str, Any]:
    return {
        "purpose": notice.purpose,
        "text": notice.text,
        "status": notice.status,
        "attempts": notice.attempts,
        "via": notice.via,
        "error": notice.error,
        "created_at": _iso(notice.created_at),
        "sent_at": _iso(notice.sent_at),
    }


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise InvalidInputError("请求体必须是 JSON 对象。") from None
    if not isinstance(body, dict):
        raise InvalidInputError("请求体必须是 JSON 对象。")
    return body


class NotSignedInError(ComplaintError):
    status = 401
    code = "unauthorized"


def _actor(request: web.Request) -> Actor:
    actor = request.get(ACTOR)
    if actor is None:
        raise NotSignedInError("请先登录。")
    return actor


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise InvalidInputError(f"参数 {name} 必须是字符串。")
    return value


def _opt(body: dict[str, Any], name: str) -> str | None:
    """An optional string field: absent, null or "" → None; any other type is a 400, never a 500."""
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"参数 {name} 必须是字符串。")
    return value


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"参数 {name} 须为 YYYY-MM-DD 格式的日期。") from None
    if not 2000 <= day.year <= 2100:  # 9999-12-31 plus a day would overflow
        raise InvalidInputError(f"参数 {name} 须在 2000 年到 2100 年之间。")
    return day


Action = Callable[[ComplaintService, str, str, dict[str, Any]], Awaitable[Complaint]]


async def _extend(svc: ComplaintService, n: str, actor: str, b: dict[str, Any]) -> Complaint:
    days = b.get("days")
    if not isinstance(days, int) or isinstance(days, bool):
        raise InvalidInputError("参数 days 必须是整数（工作日）。")
    return await svc.extend(n, actor, days, _str(b, "reason"), _str(b, "approver"))


async def _callback(svc: ComplaintService, n: str, actor: str, b: dict[str, Any]) -> Complaint:
    rating = b.get("rating")
    if rating is not None and (not isinstance(rating, int) or isinstance(rating, bool)):
        raise InvalidInputError("参数 rating 必须是1到5的整数。")
    return await svc.callback(n, actor, _str(b, "note"), rating)


ACTIONS: dict[str, Action] = {
    "accept": lambda svc, n, a, b: svc.accept(n, a, _opt(b, "note")),
    "reject": lambda svc, n, a, b: svc.reject(n, a, _str(b, "reason")),
    "merge": lambda svc, n, a, b: svc.merge(n, _str(b, "into"), a),
    "dispatch": lambda svc, n, a, b: svc.dispatch(n, a, _str(b, "department"), _opt(b, "note")),
    "return": lambda svc, n, a, b: svc.return_(n, a, _str(b, "reason")),
    "start": lambda svc, n, a, b: svc.start(n, a, _opt(b, "note")),
    "extend": _extend,
    "reply": lambda svc, n, a, b: svc.reply(n, a, _str(b, "text")),
    "callback": _callback,
    "close": lambda svc, n, a, b: svc.close(n, a, _opt(b, "result") or "resolved", _opt(b, "note")),
}


def _handle_errors(
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ComplaintError as exc:
            return _error(exc.status, exc.code, exc.message)
        except ValueError as exc:  # e.g. an unknown status or kind name
            return _error(400, "invalid", f"参数不正确：{exc}")

    return wrapped


@dataclass(frozen=True)
class _Setup:
    service: web.AppKey[ComplaintService]  # where the application holds the service


_SETUP = web.AppKey("complaints_staff_api", _Setup)


def _service(request: web.Request) -> ComplaintService:
    return request.app[request.app[_SETUP].service]


async def _list(request: web.Request) -> web.Response:
    q = request.query
    try:
        limit = max(1, min(MAX_LIMIT, int(q.get("limit", "100"))))
        offset = max(0, min(MAX_OFFSET, int(q.get("offset", "0"))))  # past every row: an empty page
    except ValueError:
        raise InvalidInputError("参数 limit/offset 必须是整数。") from None
    overdue = q.get("overdue")
    scope = department_scope(_actor(request))
    asked = q.get("department") or None
    if scope is not None and (sees_none(scope) or asked not in (None, scope)):
        return web.json_response({"total": 0, "items": []})
    rows, total = await _service(request).search(
        status=[s for s in q.get("status", "").split(",") if s] or None,
        overdue=None if overdue is None else overdue.lower() in ("1", "true", "yes"),
        department=scope or asked,
        kind=q.get("kind") or None,
        received_from=_date(q.get("from"), "from"),
        received_to=_date(q.get("to"), "to"),
        limit=limit,
        offset=offset,
    )
    return web.json_response({"total": total, "items": [complaint_json(r) for r in rows]})


async def _create(request: web.Request) -> web.Response:
    body = await _body(request)
    actor = _actor(request)
    channel = _opt(body, "channel") or "window"
    if channel not in ("window", "phone", "letter", "12345"):
        raise InvalidInputError("channel 须为 window、phone、letter 或 12345。")
    result = await _service(request).create(
        NewComplaint(
            channel=channel,
            sender_id=f"staff:{actor.username}",
            description=_str(body, "description"),
            kind=Kind(kind) if (kind := _opt(body, "kind")) else None,
            category=_opt(body, "category"),
            phone=_opt(body, "phone"),
            confidential=bool(body.get("confidential", False)),
            respondent=_opt(body, "respondent"),
            occurred=_opt(body, "occurred"),
            location=_opt(body, "location"),
        ),
        idempotency_key=_opt(body, "idempotency_key"),
        actor=actor.name,
    )
    return web.json_response(complaint_json(result.complaint), status=201 if result.created else 200)


async def _meta(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "statuses": [{"code": s.value, "label": STATUS_LABELS[s]} for s in Status],
            "kinds": [{"code": k.value, "label": KIND_LABELS[k]} for k in Kind],
            "categories": [{"code": c.code, "name": c.name, "kind": c.kind.value} for c in CATEGORIES],
            "actions": {a: ACTION_LABELS[a] for a in ACTION_LABELS},
            "allowed": {s.value: [a.value for a in allowed_actions(s)] for s in Status},
            "close_results": CLOSE_RESULTS,
            "ratings": RATING_LABELS,
        }
    )


async def _sweep(request: web.Request) -> web.Response:
    report = await _service(request).sweep()
    return web.json_response({"escalated": report.escalated, "delivered": report.delivered})


async def _show(request: web.Request) -> web.Response:
    svc = _service(request)
    number = request.match_info["number"].upper()
    row = await visible(svc, number, _actor(request))
    data = complaint_json(row)
    data["history"] = [event_json(e) for e in await svc.history(number)]
    data["notices"] = [notice_json(n) for n in await svc.notices(number)]
    return web.json_response(data)


async def _action(request: web.Request) -> web.Response:
    name = request.match_info["action"]
    action = ACTIONS.get(name)
    if action is None:
        return _error(404, "unknown_action", f"不支持的操作：{name}。")
    body = await _body(request)
    actor = _actor(request)
    number = request.match_info["number"].upper()
    await visible(_service(request), number, actor)
    if not may_act(actor, name):
        return _error(403, "forbidden", f"「{ACTION_LABELS[StateAction(name)]}」须由督办人员办理。")
    row = await action(_service(request), number, actor.name, body)
    return web.json_response(complaint_json(row))


def setup_routes(app: web.Application, key: web.AppKey[ComplaintService]) -> None:
    """Register the ``/api/complaints`` routes; ``app[key]`` must hold the :class:`ComplaintService`."""
    app[_SETUP] = _Setup(key)
    app.router.add_get("/api/complaints", _handle_errors(_list), name="complaints_list")
    app.router.add_post("/api/complaints", _handle_errors(_create), name="complaints_create")
    app.router.add_get("/api/complaints/meta", _handle_errors(_meta), name="complaints_meta")
    app.router.add_post("/api/complaints/sweep", _handle_errors(_sweep), name="complaints_sweep")
    app.router.add_get("/api/complaints/{number}", _handle_errors(_show), name="complaints_show")
    app.router.add_post(
        "/api/complaints/{number}/{action}", _handle_errors(_action), name="complaints_action"
    )
