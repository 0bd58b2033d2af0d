"""督办单: how a 督办 note from 电子监察 reaches the department.  The department's staff (complaints.read,
scoped to their own department; supervisors see every department) list their 督办单, sign for them (签收)
and answer them (反馈, complaints.handle).  Each step is audited; a 督办单 of another department answers 404,
as if it did not exist."""

from __future__ import annotations

from aiohttp import web

from bot.core.actor import Actor
from bot.core.masking import mask_text
from bot.domains.complaints.access import department_scope
from bot.domains.progress.urges import LABELS, NOTE_MAX, UrgeBook, UrgeError
from bot.gateway.staff.auth import actor_of, audit
from bot.gateway.web.app_services import services_of
from bot.gateway.web.listing import PAGE_SIZE, Pager, page_number, shown
from bot.gateway.web.render import PREFIX, page

PATH = PREFIX + "/urges"


def book(request: web.Request) -> UrgeBook:
    return UrgeBook(services_of(request).sessions)


def _scope(actor: Actor) -> str | None:
    """The department whose 督办单 this person sees (None: every department; a person of no department
    without complaints.supervise sees none)."""
    return department_scope(actor)


async def urges(request: web.Request) -> web.Response:
    return await _list(request, {}, None)


async def _list(request: web.Request, errors: dict[str, str], failed_id: int | None) -> web.Response:
    actor = actor_of(request)
    scope = _scope(actor)
    status = request.query.get("status", "")
    status = status if status in LABELS else ""
    number = page_number(request.query.get("page"))
    rows: list[dict[str, object]] = []
    has_next = False
    if scope != "":
        found = await book(request).search(
            department=scope, status=status or None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        has_next = found.total > number * PAGE_SIZE
        rows = [
            {
                "id": r.id,
                "department": r.department,
                "ticket_no": r.ticket_no,
                "note": mask_text(r.note),
                "by": r.created_by,
                "at": shown(r.created_at),
                "status": r.status,
                "label": LABELS.get(r.status, r.status),
                "signed": f"{r.signed_by} {shown(r.signed_at)}" if r.signed_by else "",
                "answer": mask_text(r.answer or ""),
                "answered": f"{r.answered_by} {shown(r.answered_at)}" if r.answered_by else "",
            }
            for r in found.rows
        ]
    values = {
        "rows": rows,
        "status": status,
        "labels": LABELS,
        "scope": scope,
        "errors": errors,
        "failed_id": failed_id,
        "note_max": NOTE_MAX,
        "done": request.query.get("done", ""),
        "pager": Pager(number, has_next, {"status": status}),
    }
    return page(request, "urges.html", values, status=400 if errors else 200)


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**31:  # beyond the column's range: no such 督办单
        raise web.HTTPNotFound(text="没有这张督办单")
    return int(raw)


async def sign(request: web.Request) -> web.StreamResponse:
    return await _step(request, "sign")


async def answer(request: web.Request) -> web.StreamResponse:
    return await _step(request, "answer")


async def _step(request: web.Request, step: str) -> web.StreamResponse:
    actor = actor_of(request)
    scope = _scope(actor)
    urge_id = _id(request)
    urges_ = book(request)
    if scope == "" or await urges_.get(urge_id, scope) is None:
        raise web.HTTPNotFound(text="没有这张督办单")
    form = await request.post()
    text = str(form.get("answer", "")).strip()
    try:
        if step == "sign":
            await urges_.sign(urge_id, department=scope, by=actor.name)
        else:
            await urges_.answer(urge_id, department=scope, by=actor.name, text=text)
    except UrgeError as exc:
        return await _list(request, {"answer" if step == "answer" else "step": str(exc)}, urge_id)
    await audit(request, f"supervision.urge.{step}", object_type="urge", object_id=str(urge_id),
                summary={"answer": text} if step == "answer" else None)  # fmt: skip
    raise web.HTTPFound(f"{PATH}?done={step}")


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get(PATH, urges),
            web.post(PATH + "/{id}/sign", sign),
            web.post(PATH + "/{id}/answer", answer),
        ]
    )
