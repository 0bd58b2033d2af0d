"""The console's 群发通知 pages: the campaign list, the composer, recipient upload with its exclusions
report and the preview, the approvers' queue, and each campaign's page with live progress, its controls and
the per-recipient export.  Every operation is the :class:`BroadcastService`'s own (the same calls as
``sms_gateway/broadcast/api.py``): the state machine, the two-person rule and the preview's blockers stay
there; these pages only read forms, show results and write the audit log."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.core.masking import mask_phone, mask_text
from bot.gateway.staff.auth import actor_of, audit
from bot.gateway.web.jobs import XLSX, Download, Progress, deliver, in_thread
from bot.gateway.web.render import PREFIX, page
from sms_gateway.broadcast.config import format_window
from sms_gateway.broadcast.export import write_xlsx
from sms_gateway.broadcast.models import EXCLUSION_LABELS, FINAL_STATES, CampaignPurpose, CampaignState
from sms_gateway.broadcast.recipients import RecipientFileError
from sms_gateway.broadcast.service import BroadcastError, BroadcastService
from sms_gateway.broadcast.views import duration, source_label
from sms_gateway.compose import OPT_OUT_HINT

BASE = PREFIX + "/broadcasts"
PAGE_SIZE = 20
POLL_SECONDS = 3
St = CampaignState
# States whose progress changes without anyone touching the page (the fragment polls while in them).
LIVE_STATES = frozenset({St.SCHEDULED, St.SENDING, St.PAUSED})
STATE_BADGES = {
    St.DRAFT: "",
    St.PENDING_APPROVAL: "warn",
    St.SCHEDULED: "warn",
    St.SENDING: "ok",
    St.PAUSED: "warn",
    St.COMPLETED: "ok",
    St.CANCELLED: "bad",
    St.FAILED: "bad",
}
# Each action's button text, and the permission it needs (the same as the API's, routes.py).
ACTIONS: dict[str, tuple[str, str]] = {
    "submit": ("提交审核", "broadcast.compose"),
    "approve": ("审核通过", "broadcast.approve"),
    "reject": ("退回修改", "broadcast.approve"),
    "start": ("开始发送", "broadcast.operate"),
    "pause": ("暂停", "broadcast.operate"),
    "resume": ("继续发送", "broadcast.operate"),
    "cancel": ("取消群发", "broadcast.operate"),
}
# Which composer field a refusal of the service is about (by the words of its message); else the template.
FIELD_WORDS = (("名称", "name"), ("用途", "purpose"), ("速率", "rate"), ("时段", "window"))
EMPTY_FORM = {
    "name": "", "template": "", "purpose": str(CampaignPurpose.NOTICE), "rate": "", "window": "",
    "channel": "sms",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------- helpers


def _off(request: web.Request) -> web.Response:
    return page(request, "broadcasts/off.html", {}, status=503)


def _service(request: web.Request) -> BroadcastService | None:
    from bot.gateway.app import SERVICES  # the app module sets the console up: imported when called

    return request.app[SERVICES].broadcasts


def _local(iso: str | None, tz: ZoneInfo) -> str:
    """An ISO time from the service as local ``YYYY-MM-DD HH:MM`` (empty when there is none)."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _campaign_id(request: web.Request) -> str:
    return request.match_info["id"]


def _time_left(progress: Mapping[str, Any], started_iso: str | None, rate: float, now: datetime) -> str:
    """Time left at the pace so far (or at the configured rate, one segment each, before the first)."""
    remaining = int(progress["queued"]) + int(progress["in_flight"])
    if remaining <= 0:
        return "—"
    done = int(progress["done"])
    if done and started_iso:
        elapsed = (now - datetime.fromisoformat(started_iso)).total_seconds()
        if elapsed > 0:
            return "约 " + duration(remaining * elapsed / done)
    return "约 " + duration(remaining / rate) if rate > 0 else "—"


async def _progress_values(svc: BroadcastService, cid: str) -> dict[str, Any]:
    view = await svc.view(cid)
    progress = await svc.progress(cid)
    excluded = progress["excluded"]
    opted = int(excluded.get("opted_out", 0)) + int(progress["opted_out_during"])
    return {
        "campaign": view,
        "progress": progress,
        "opted_out": opted,
        "time_left": "—"
        if view["state"] in FINAL_STATES
        else _time_left(progress, view["started_at"], float(view["rate"]), svc.clock()),
        "live": view["state"] in LIVE_STATES,
        "poll_seconds": POLL_SECONDS,
    }


def _masked_preview(preview: Mapping[str, Any]) -> dict[str, Any]:
    """The preview with phone numbers masked (samples' numbers, the raw cells of excluded rows)."""
    samples = [
        {**s, "to": mask_phone(str(s["to"])), "body": mask_text(str(s["body"]))} for s in preview["samples"]
    ]
    rows = [
        {**r, "raw": mask_text(str(r["raw"])), "source_label": source_label(str(r["source"]))}
        for r in preview["exclusion_rows"]
    ]
    estimated = duration(float(preview["estimated_seconds"]))
    return {**preview, "samples": samples, "exclusion_rows": rows, "estimated": estimated}


async def _campaign_page(
    request: web.Request,
    svc: BroadcastService,
    cid: str,
    *,
    errors: Mapping[str, str] | None = None,
    notice: str = "",
    upload: Mapping[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    actor = actor_of(request)
    values = await _progress_values(svc, cid)
    campaign = values["campaign"]
    preview = None
    if campaign["state"] in (St.DRAFT, St.PENDING_APPROVAL, St.SCHEDULED):
        preview = _masked_preview((await svc.preview(cid)).as_dict())
    groups = await svc.groups() if campaign["state"] == St.DRAFT and actor.can("broadcast.compose") else []
    tags: list[dict[str, Any]] = []
    case_items: list[dict[str, Any]] = []
    if campaign["channel"] == "wechat" and campaign["state"] == St.DRAFT:
        tags, tag_error = await _wechat_tags(svc)
        if tag_error and not errors:
            errors = {"tag": tag_error}
        case_items = await svc.case_items()
    tz = svc.settings.tz
    times = {k: _local(campaign[k], tz) for k in ("created_at", "scheduled_at", "started_at", "finished_at")}
    values.update(
        {
            "preview": preview,
            "groups": groups,
            "tags": tags,
            "case_items": case_items,
            "cases_available": svc.case_audience is not None,
            "times": times,
            "errors": dict(errors or {}),
            "notice": notice,
            "upload": upload,
            "labels": {str(k): v for k, v in EXCLUSION_LABELS.items()},
            "can": {a: actor.can(p) for a, (_, p) in ACTIONS.items()}
            | {"compose": actor.can("broadcast.compose"), "export": actor.can("broadcast.export")},
            "action_titles": {a: t for a, (t, _) in ACTIONS.items()},
            "own": svc.settings.approval_required
            and (await svc.get(cid)).created_by_account == actor.account_id,
            "final": campaign["state"] in FINAL_STATES,
            "timezone": svc.settings.timezone,
        }
    )
    return page(request, "broadcasts/campaign.html", values, status=status)


# ---------------------------------------------------------------------------------------------- pages


async def list_page(request: web.Request) -> web.Response:
    svc = _service(request)
    if svc is None:
        return _off(request)
    state = request.query.get("state", "")
    campaigns = await svc.campaigns()
    if state in {str(s) for s in CampaignState}:
        campaigns = [c for c in campaigns if c["state"] == state]
    else:
        state = ""
    pages = max(1, math.ceil(len(campaigns) / PAGE_SIZE))
    try:
        number = min(max(1, int(request.query.get("page", "1"))), pages)
    except ValueError:
        number = 1
    shown = campaigns[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    percent: dict[str, float] = {}
    for c in shown:
        if c["state"] not in (St.DRAFT, St.PENDING_APPROVAL, St.SCHEDULED):
            percent[c["id"]] = (await svc.progress(c["id"]))["percent"]
    tz = svc.settings.tz
    actor = actor_of(request)
    values = {
        "campaigns": [{**c, "created_local": _local(c["created_at"], tz)} for c in shown],
        "percent": percent,
        "states": [str(s) for s in CampaignState],
        "state": state,
        "page_number": number,
        "pages": pages,
        "total": len(campaigns),
        "badges": {str(k): v for k, v in STATE_BADGES.items()},
        "can_compose": actor.can("broadcast.compose"),
        "can_approve": actor.can("broadcast.approve"),
    }
    return page(request, "broadcasts/list.html", values)


def _composer(
    request: web.Request,
    svc: BroadcastService,
    form: Mapping[str, str],
    errors: Mapping[str, str],
    status: int,
    campaign_id: str = "",
) -> web.Response:
    """The composer: a new campaign, or (``campaign_id``) a draft's edit form."""
    values = {
        "form": form,
        "errors": errors,
        "campaign_id": campaign_id,
        "purposes": [str(p) for p in CampaignPurpose],
        "prefix": svc.composer.prefix,
        "opt_out_hint": OPT_OUT_HINT,
        "default_window": format_window(*svc.settings.window),
        "default_rate": svc.settings.rate,
        "max_segments": svc.composer.per_message,
    }
    return page(request, "broadcasts/new.html", values, status=status)


async def new_page(request: web.Request) -> web.Response:
    svc = _service(request)
    if svc is None:
        return _off(request)
    return _composer(request, svc, EMPTY_FORM, {}, 200)


async def _posted_draft(request: web.Request) -> dict[str, str]:
    """The composer's form as typed."""
    raw = await request.post()
    form = {k: str(raw.get(k, "")).strip() for k in EMPTY_FORM}
    form["template"] = str(raw.get("template", ""))
    return form


def _draft_fields(form: Mapping[str, str]) -> dict[str, Any]:
    """The service's arguments from the composer's form (BroadcastError for a rate that is no number)."""
    try:
        rate = float(form["rate"]) if form["rate"] else None
    except ValueError as exc:
        raise BroadcastError("发送速率应为数字（条段/秒）", 400) from exc
    return {
        "name": form["name"],
        "template": form["template"],
        "purpose": form["purpose"] or str(CampaignPurpose.NOTICE),
        "rate": rate,
        "window": form["window"] or None,
    }


def _field_of(exc: BroadcastError) -> str:
    return next((f for word, f in FIELD_WORDS if word in exc.message), "template")


async def create(request: web.Request) -> web.StreamResponse:
    svc = _service(request)
    if svc is None:
        return _off(request)
    form = await _posted_draft(request)
    actor = actor_of(request)
    try:
        fields = _draft_fields(form)
        campaign = await svc.create(
            **fields,
            channel=form["channel"] or "sms",
            created_by=actor.name,
            created_by_account=actor.account_id,
        )
    except BroadcastError as exc:
        await audit(request, "broadcast.create", object_type="broadcast", outcome="failed",
                    summary={"via": "console", "error": exc.message})  # fmt: skip
        return _composer(request, svc, form, {_field_of(exc): exc.message}, exc.status)
    await audit(request, "broadcast.create", object_type="broadcast", object_id=campaign["id"],
                summary={"via": "console", "name": campaign["name"]})  # fmt: skip
    raise web.HTTPSeeOther(f"{BASE}/{campaign['id']}")


async def edit_page(request: web.Request) -> web.Response:
    svc = _service(request)
    if svc is None:
        return _off(request)
    cid = _campaign_id(request)
    try:
        c = await svc.get(cid)
    except BroadcastError as exc:
        return page(request, "broadcasts/missing.html", {"message": exc.message}, status=exc.status)
    if c.state != St.DRAFT:
        raise web.HTTPSeeOther(f"{BASE}/{cid}")
    form = {
        "name": c.name,
        "template": c.template,
        "purpose": c.purpose,
        "rate": f"{c.rate:g}" if c.rate else "",
        "window": format_window(c.window_start, c.window_end),
    }
    return _composer(request, svc, form, {}, 200, campaign_id=cid)


async def edit(request: web.Request) -> web.StreamResponse:
    svc = _service(request)
    if svc is None:
        return _off(request)
    cid = _campaign_id(request)
    form = await _posted_draft(request)
    try:
        campaign = await svc.update_draft(cid, **_draft_fields(form))
    except BroadcastError as exc:
        await audit(request, "broadcast.update", object_type="broadcast", object_id=cid, outcome="failed",
                    summary={"via": "console", "error": exc.message})  # fmt: skip
        if exc.status == 404:
            return page(request, "broadcasts/missing.html", {"message": exc.message}, status=404)
        return _composer(request, svc, form, {_field_of(exc): exc.message}, exc.status, campaign_id=cid)
    await audit(request, "broadcast.update", object_type="broadcast", object_id=cid,
                summary={"via": "console", "name": campaign["name"]})  # fmt: skip
    raise web.HTTPSeeOther(f"{BASE}/{cid}?done=edit")


async def review_page(request: web.Request) -> web.Response:
    svc = _service(request)
    if svc is None:
        return _off(request)
    actor = actor_of(request)
    tz = svc.settings.tz
    pending = [c for c in await svc.campaigns() if c["state"] == St.PENDING_APPROVAL]
    items = []
    for c in pending:
        preview = (await svc.preview(c["id"], samples=1)).as_dict()
        items.append(
            {
                **c,
                "created_local": _local(c["created_at"], tz),
                "preview": _masked_preview(preview),
                "own": svc.settings.approval_required
                and (await svc.get(c["id"])).created_by_account == actor.account_id,
            }
        )
    done = request.query.get("done", "")
    notice = f"已{ACTIONS[done][0]}" if done in ("approve", "reject") else ""
    return page(request, "broadcasts/review.html", {"items": items, "notice": notice})


async def campaign_page(request: web.Request) -> web.Response:
    svc = _service(request)
    if svc is None:
        return _off(request)
    try:
        done = request.query.get("done", "")
        notice = f"已{ACTIONS[done][0]}" if done in ACTIONS else "草稿已保存" if done == "edit" else ""
        return await _campaign_page(request, svc, _campaign_id(request), notice=notice)
    except BroadcastError as exc:
        return page(request, "broadcasts/missing.html", {"message": exc.message}, status=exc.status)


async def progress_fragment(request: web.Request) -> web.Response:
    svc = _service(request)
    if svc is None:
        return _off(request)
    cid = _campaign_id(request)
    try:
        values = await _progress_values(svc, cid)
    except BroadcastError as exc:
        return web.Response(text=exc.message, status=exc.status)
    response = page(request, "broadcasts/_progress.html", values)
    shown = request.query.get("shown")
    if shown and shown != values["campaign"]["state"] and request.headers.get("HX-Request"):
        response.headers["HX-Redirect"] = f"{BASE}/{cid}"  # the state changed: the page's controls too
    return response


async def upload_recipients(request: web.Request) -> web.Response:
    svc = _service(request)
    if svc is None:
        return _off(request)
    cid = _campaign_id(request)
    form = await request.post()
    file = form.get("file")
    upload = None
    if isinstance(file, web.FileField) and file.filename:
        upload = (str(file.filename), file.file.read())
    groups = [str(g) for g in form.getall("group_ids", []) if str(g)]
    try:
        result = await svc.set_recipients(
            cid,
            actor=actor_of(request).name,
            upload=upload,
            column_map=_column_map(str(form.get("column_map", ""))),
            group_ids=groups,
        )
    except (BroadcastError, RecipientFileError) as exc:
        message = exc.message if isinstance(exc, BroadcastError) else str(exc)
        status = exc.status if isinstance(exc, BroadcastError) else 400
        await audit(request, "broadcast.recipients", object_type="broadcast", object_id=cid, outcome="failed",
                    summary={"via": "console", "error": message})  # fmt: skip
        if status == 404:
            return page(request, "broadcasts/missing.html", {"message": message}, status=404)
        return await _campaign_page(request, svc, cid, errors={"upload": message}, status=status)
    counts = {k: v for k, v in result.items() if k != "campaign_id"}
    await audit(request, "broadcast.recipients", object_type="broadcast", object_id=cid,
                summary={"via": "console", **counts})  # fmt: skip
    return await _campaign_page(request, svc, cid, upload=result)


async def _wechat_tags(svc: BroadcastService) -> tuple[list[dict[str, Any]], str]:
    """The official account's follower tags (from WeChat), or why they could not be read."""
    try:
        return await svc.tags(), ""
    except BroadcastError as exc:
        return [], exc.message


async def choose_tag(request: web.Request) -> web.Response:
    """A WeChat campaign's audience: the followers with the chosen tag (its size as WeChat reports it)."""
    svc = _service(request)
    if svc is None:
        return _off(request)
    cid = _campaign_id(request)
    raw = str((await request.post()).get("tag_id", ""))
    try:
        if not raw.isdigit():
            raise BroadcastError("请选择一个标签", 400)
        view = await svc.choose_wechat_tag(cid, int(raw), actor=actor_of(request).name)
    except BroadcastError as exc:
        if exc.status == 404:
            return page(request, "broadcasts/missing.html", {"message": exc.message}, status=404)
        return await _campaign_page(request, svc, cid, errors={"tag": exc.message}, status=exc.status)
    summary = {"via": "console", "wechat_tag": int(raw), "followers": view["recipients_total"]}
    await audit(request, "broadcast.recipients", object_type="broadcast", object_id=cid, summary=summary)
    return await _campaign_page(
        request, svc, cid, notice=f"收件人：标签“{view['audience_tag_name']}”的关注者"
    )


async def choose_cases(request: web.Request) -> web.Response:
    """A WeChat campaign's audience: the followers bound to a case (of one item, or any): template
    notices."""
    svc = _service(request)
    if svc is None:
        return _off(request)
    cid = _campaign_id(request)
    item_code = str((await request.post()).get("item_code", "")).strip() or None
    try:
        view = await svc.choose_cases(cid, item_code, actor=actor_of(request).name)
    except BroadcastError as exc:
        if exc.status == 404:
            return page(request, "broadcasts/missing.html", {"message": exc.message}, status=404)
        return await _campaign_page(request, svc, cid, errors={"cases": exc.message}, status=exc.status)
    summary = {"via": "console", "wechat_cases": item_code or "*", "followers": view["recipients_total"]}
    await audit(request, "broadcast.recipients", object_type="broadcast", object_id=cid, summary=summary)
    scope = f"事项 {item_code}" if item_code else "全部事项"
    return await _campaign_page(
        request,
        svc,
        cid,
        notice=f"收件人：绑定了办件并接收通知的关注者（{scope}，{view['recipients_total']} 人）",
    )


def _column_map(raw: str) -> dict[str, str]:
    """``变量=列名`` lines (the API's ``column_map``): which column fills a variable of another name."""
    out: dict[str, str] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        var, sep, column = line.replace("＝", "=").partition("=")
        if not sep or not var.strip() or not column.strip():
            raise BroadcastError(f"变量对应列的格式应为“变量=列名”，每行一个：{line.strip()}", 400)
        out[var.strip().strip("{}")] = column.strip()
    return out


async def _act(request: web.Request, svc: BroadcastService, cid: str, action: str) -> dict[str, Any]:
    """The service call for ``action`` (as the JSON API makes it), with the form's reason or time."""
    actor = actor_of(request)
    form = await request.post()
    if action == "approve":
        return await svc.approve(cid, actor.name, actor.account_id)
    if action == "reject":
        reason = str(form.get("reason", "")).strip()
        if not reason:
            raise BroadcastError("请填写退回原因", 400)
        return await svc.reject(cid, actor.name, reason)
    if action == "cancel":
        return await svc.cancel(cid, actor.name, str(form.get("reason", "")).strip())
    if action == "start":
        return await svc.start(cid, actor.name, at=_start_time(str(form.get("at", "")), svc.settings.tz))
    method = getattr(svc, action)
    result: dict[str, Any] = await method(cid, actor.name)
    return result


def _start_time(raw: str, tz: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` value (the center's local time); empty: now."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise BroadcastError(f"开始时间格式无效：{raw}（应为 年-月-日 时:分）", 400) from exc
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _action_handler(action: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        svc = _service(request)
        if svc is None:
            return _off(request)
        cid = _campaign_id(request)
        form = await request.post()
        back = str(form.get("back", ""))
        try:
            result = await _act(request, svc, cid, action)
        except BroadcastError as exc:
            await audit(request, f"broadcast.{action}", object_type="broadcast", object_id=cid,
                        outcome="failed", summary={"via": "console", "error": exc.message})  # fmt: skip
            if exc.status == 404:
                return page(request, "broadcasts/missing.html", {"message": exc.message}, status=404)
            return await _campaign_page(request, svc, cid, errors={action: exc.message}, status=exc.status)
        summary: dict[str, object] = {"via": "console", "state": result["state"]}
        if form.get("reason"):
            summary["reason"] = mask_text(str(form.get("reason")))[:200]
        await audit(request, f"broadcast.{action}", object_type="broadcast", object_id=cid, summary=summary)
        target = f"{BASE}/review" if back == "review" else f"{BASE}/{cid}"
        raise web.HTTPSeeOther(f"{target}?done={action}")

    return handler


async def export(request: web.Request) -> web.StreamResponse:
    """Every recipient's result as XLSX (GET: at once; the console's button POSTs: a progress page)."""
    svc = _service(request)
    if svc is None:
        return _off(request)
    cid = _campaign_id(request)
    try:
        await svc.get(cid)
    except BroadcastError as exc:
        return page(request, "broadcasts/missing.html", {"message": exc.message}, status=exc.status)

    async def produce(progress: Progress) -> Download:
        progress.update("读取发送结果")
        rows = await svc.results(cid)  # write_xlsx makes every text cell safe
        tick = progress.counter("生成表格", len(rows))

        def write() -> bytes:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{cid}.xlsx"
                write_xlsx(rows, path, tick)
                return path.read_bytes()

        data = await in_thread(write)
        await audit(request, "broadcast.export", object_type="broadcast", object_id=cid,
                    summary={"via": "console", "rows": len(rows)})  # fmt: skip
        return Download(f"{cid}.xlsx", XLSX, data)

    return await deliver(request, f"导出群发明细 {cid}", produce)


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get(BASE, list_page),
            web.get(BASE + "/new", new_page),
            web.post(BASE, create),
            web.get(BASE + "/review", review_page),
            web.get(BASE + "/{id}", campaign_page),
            web.get(BASE + "/{id}/progress", progress_fragment),
            web.get(BASE + "/{id}/edit", edit_page),
            web.post(BASE + "/{id}/edit", edit),
            web.get(BASE + "/{id}/export", export),
            web.post(BASE + "/{id}/export", export),
            web.post(BASE + "/{id}/recipients", upload_recipients),
            web.post(BASE + "/{id}/wechat-tag", choose_tag),
            web.post(BASE + "/{id}/wechat-cases", choose_cases),
            *(web.post(f"{BASE}/{{id}}/{action}", _action_handler(action)) for action in ACTIONS),
        ]
    )
