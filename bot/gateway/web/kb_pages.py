"""知识库 pages: try a question as the bot would answer it, the items (list, view, edit with history), the
aliases, the unanswered-questions queue, and the import of the official catalogue (a dry-run diff first).

Every change goes through :mod:`knowledge_base.editing` or the importer: one transaction that bumps the
catalogue version (published in Redis), so the running bot answers from it on its next question; and each
change is written to the audit log with what it changed (object ``kb_item`` / code, ``kb_catalogue``).
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.domains.staff.audit import AuditFilter
from bot.gateway.staff.auth import STAFF, actor_of, audit
from bot.gateway.web.jobs import Done, Progress, deliver
from bot.gateway.web.render import PREFIX, page
from knowledge_base.answers import SMS, WECHAT
from knowledge_base.aspects import ASPECT_LABELS
from knowledge_base.editing import (
    EDITABLE,
    EditError,
    add_alias,
    aliases,
    find_items,
    get_item,
    item_names,
    preview_import,
    remove_alias,
    stamp_of,
    unanswered_queue,
    update_item,
)
from knowledge_base.importer import import_catalogue
from knowledge_base.lookup import KbUnavailable
from knowledge_base.models import KbItem
from knowledge_base.schema import FIELD_TO_HEADER

if TYPE_CHECKING:
    from bot.gateway.app import Services

KB = PREFIX + "/kb"
MAX_QUESTION = 200
UPLOAD_KEY = "govbot:kb:upload:"
UPLOAD_TTL = 1800  # seconds a previewed file waits for "apply"
UPLOAD_SUFFIXES = (".xlsx", ".csv", ".tsv", ".txt")
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
DECISIONS = {"answer": "直接回答", "choices": "请群众选择", "not_found": "未找到（转人工/换个说法）"}
# Single-line inputs; the other editable columns are textareas.
SHORT_FIELDS = frozenset(
    {"name", "item_type", "department", "window", "legal_time_limit", "phone", "office_hours", "online"}
)
AUDIT_LABELS = {"kb.item.edit": "修改事项", "kb.alias.add": "添加别名", "kb.alias.remove": "删除别名"}


def _services(request: web.Request) -> Services:
    from bot.gateway.app import SERVICES  # the app module imports this package: no cycle at import time

    return request.app[SERVICES]


def _int(raw: str | None, default: int = 1) -> int:
    try:
        return max(1, int(raw or default))
    except ValueError:
        return default


def _local(request: web.Request, moment: datetime) -> str:
    tz = ZoneInfo(_services(request).settings.timezone)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _back(raw: str, default: str) -> str:
    """A return address inside the 知识库 section only (never an open redirect)."""
    return raw if raw.startswith(KB) and "//" not in raw and "\\" not in raw else default


def _source(request: web.Request, what: str) -> str:
    return f"console:{actor_of(request).username}:{what}"


# ------------------------------------------------------------------------------------------ the tester


async def tester(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()[:MAX_QUESTION]
    values: dict[str, Any] = {"q": q, "hits": [], "replies": [], "decision": "", "unavailable": False}
    if q:
        kb = _services(request).kb_lookup  # the action server's index (knowledge_base/lookup.py)
        try:
            hits = await kb.search(q, limit=10)
            values["hits"] = [{"hit": h, "aspect": ASPECT_LABELS.get(h.aspect or "", "—")} for h in hits]
            for channel, title in ((WECHAT, "微信"), (SMS, "短信")):
                answer = await kb.answer(q, channel=channel, log_unanswered=False)
                values["decision"] = DECISIONS[answer.kind]
                values["replies"].append({"title": title, "channel": channel, "messages": answer.messages})
        except KbUnavailable:
            values["unavailable"] = True
    return page(request, "kb_tester.html", values)


# ------------------------------------------------------------------------------------------ items


async def items_list(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()[:100]
    found = await find_items(_services(request).sessions, q, _int(request.query.get("page")))
    return page(request, "kb_items.html", {"q": q, "found": found})


def _fields(item: KbItem, form: Mapping[str, str] | None) -> list[dict[str, Any]]:
    return [
        {
            "name": f,
            "label": FIELD_TO_HEADER[f],
            "value": form[f] if form is not None and f in form else getattr(item, f),
            "short": f in SHORT_FIELDS,
        }
        for f in EDITABLE
    ]


def _history(request: web.Request, rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r.object_type != "kb_item":
            continue
        try:
            summary = json.loads(r.summary or "{}")
        except ValueError:
            summary = {}
        before, after = summary.get("before") or {}, summary.get("after") or {}
        changes = [
            {"label": FIELD_TO_HEADER.get(f, f), "before": before.get(f, ""), "after": after.get(f, "")}
            for f in after
        ]
        if "alias" in summary:
            changes.append({"label": "别名", "before": "", "after": summary["alias"]})
        out.append(
            {
                "at": _local(request, r.at),
                "who": r.username,
                "action": AUDIT_LABELS.get(r.action, r.action),
                "changes": changes,
            }
        )
    return out


async def _item_page(
    request: web.Request,
    item: KbItem,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    services = _services(request)
    staff = request.app[STAFF]
    rows = await staff.audit.query(AuditFilter(object_id=item.code, limit=100))
    values = {
        "item": item,
        "fields": _fields(item, form),
        "stamp": form.get("stamp", stamp_of(item)) if form is not None else stamp_of(item),
        "errors": dict(errors or {}),
        "saved": request.query.get("saved") == "1",
        "aliases": (await aliases(services.sessions, code=item.code, per_page=100)).rows,
        "history": _history(request, rows),
        "can_edit": actor_of(request).can("kb.edit"),
        "updated_at": _local(request, item.updated_at),
    }
    return page(request, "kb_item.html", values, status=status)


def _missing(request: web.Request, code: str) -> web.Response:
    return page(
        request, "kb_message.html", {"title": "没有该事项", "message": f"目录中没有事项 {code}。"}, 404
    )


async def item_view(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    item = await get_item(_services(request).sessions, code)
    if item is None:
        return _missing(request, code)
    return await _item_page(request, item)


async def item_edit(request: web.Request) -> web.StreamResponse:
    services = _services(request)
    code = request.match_info["code"]
    form = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
    try:
        change = await update_item(
            services.sessions,
            code,
            {f: form[f] for f in EDITABLE if f in form},
            stamp=form.get("stamp"),
            source=_source(request, code),
            redis=services.redis,
        )
    except EditError as exc:
        item = await get_item(services.sessions, code)
        if item is None:
            return _missing(request, code)
        return await _item_page(request, item, form=form, errors=exc.problems, status=exc.status)
    if change.changed:
        summary = {"before": change.before, "after": change.after, "version": change.version}
        await audit(request, "kb.item.edit", object_type="kb_item", object_id=code, summary=summary)
    raise web.HTTPSeeOther(f"{KB}/items/{code}?saved=1")


# ------------------------------------------------------------------------------------------ aliases


async def _aliases_page(
    request: web.Request, form: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None
) -> web.Response:
    q = request.query.get("q", "").strip()[:100]
    found = await aliases(_services(request).sessions, q, _int(request.query.get("page")))
    values = {
        "q": q,
        "found": found,
        "form": dict(form or {}),
        "errors": dict(errors or {}),
        "can_edit": actor_of(request).can("kb.edit"),
        "done": request.query.get("done", ""),
    }
    return page(request, "kb_aliases.html", values, status=400 if errors else 200)


async def aliases_list(request: web.Request) -> web.Response:
    return await _aliases_page(request)


async def _add_alias(request: web.Request, alias: str, code: str, origin: str) -> None:
    services = _services(request)
    await add_alias(services.sessions, alias, code, source=_source(request, alias), redis=services.redis)
    await audit(request, "kb.alias.add", object_type="kb_item", object_id=code.strip(),
                summary={"alias": alias.strip(), "from": origin})  # fmt: skip


async def alias_add(request: web.Request) -> web.StreamResponse:
    form = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
    alias, code = form.get("alias", ""), form.get("code", "")
    try:
        await _add_alias(request, alias, code, "aliases")
    except EditError as exc:
        return await _aliases_page(request, form, exc.problems)
    raise web.HTTPSeeOther(_back(form.get("back", ""), f"{KB}/aliases?done=added"))


async def alias_remove(request: web.Request) -> web.StreamResponse:
    services = _services(request)
    form = await request.post()
    try:
        alias_id = int(request.match_info["id"])
        alias, code = await remove_alias(
            services.sessions, alias_id, source=_source(request, str(alias_id)), redis=services.redis
        )
    except (ValueError, EditError):
        return page(
            request, "kb_message.html", {"title": "别名不存在", "message": "该别名不存在或已被删除。"}, 404
        )
    await audit(request, "kb.alias.remove", object_type="kb_item", object_id=code, summary={"alias": alias})
    raise web.HTTPSeeOther(_back(str(form.get("back", "")), f"{KB}/aliases?done=removed"))


# ------------------------------------------------------------------------------------------ unanswered


async def _queue_page(
    request: web.Request, form: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None
) -> web.Response:
    services = _services(request)
    queue = await unanswered_queue(services.sessions, _int(request.query.get("page")))
    rows = [{"q": r, "last": _local(request, r.last_asked)} for r in queue.rows]
    values = {
        "queue": queue,
        "rows": rows,
        "items": await item_names(services.sessions),
        "form": dict(form or {}),
        "errors": dict(errors or {}),
        "can_edit": actor_of(request).can("kb.edit"),
        "done": request.query.get("done", ""),
    }
    return page(request, "kb_unanswered.html", values, status=400 if errors else 200)


async def unanswered_list(request: web.Request) -> web.Response:
    return await _queue_page(request)


async def unanswered_alias(request: web.Request) -> web.StreamResponse:
    form = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
    try:
        await _add_alias(request, form.get("alias", ""), form.get("code", ""), "unanswered")
    except EditError as exc:
        return await _queue_page(request, form, exc.problems)
    raise web.HTTPSeeOther(f"{KB}/unanswered?done=added")


# ------------------------------------------------------------------------------------------ import


async def import_form(request: web.Request) -> web.Response:
    return page(request, "kb_import.html", {"error": "", "preview": None, "result": None, "token": ""})


def _suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if suffix in UPLOAD_SUFFIXES else ""


async def import_upload(request: web.Request) -> web.Response:
    """Keep the uploaded file for a while (in Redis, so any worker can apply it) and show the dry run."""
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return _import_error(request, "请选择要导入的文件（.xlsx 或 .csv）")
    suffix = _suffix(upload.filename)
    if not suffix:
        return _import_error(request, "只能导入 .xlsx、.csv 或 .tsv 文件")
    data = upload.file.read()
    if not data:
        return _import_error(request, "文件是空的")
    name = Path(upload.filename).name[:200]
    token = secrets.token_hex(16)
    redis = _services(request).redis
    await redis.hset(UPLOAD_KEY + token, mapping={"name": name.encode(), "data": data})
    await redis.expire(UPLOAD_KEY + token, UPLOAD_TTL)
    with tempfile.TemporaryDirectory(prefix="govbot-kb-") as tmp:
        path = Path(tmp) / f"catalogue{suffix}"
        path.write_bytes(data)
        preview = await preview_import(_services(request).sessions, path)
    status = 200 if preview.report.ok else 400
    values = {"error": "", "preview": preview, "result": None, "token": token, "name": name}
    return page(request, "kb_import.html", values, status=status)


def _import_error(request: web.Request, message: str, status: int = 400) -> web.Response:
    values = {"error": message, "preview": None, "result": None, "token": ""}
    return page(request, "kb_import.html", values, status=status)


async def import_apply(request: web.Request) -> web.StreamResponse:
    """Apply a previewed file: a background job with a progress page (the import is one transaction)."""
    services = _services(request)
    token = str((await request.post()).get("token", ""))
    stored = await services.redis.hgetall(UPLOAD_KEY + token) if TOKEN_RE.match(token) else {}
    raw_name, data = stored.get(b"name"), stored.get(b"data")
    # Only the request that deletes the stored file applies it (a double click imports once).
    taken = bool(stored) and await services.redis.delete(UPLOAD_KEY + token) == 1
    if not taken or not isinstance(raw_name, bytes) or not isinstance(data, bytes):
        return _import_error(request, "预览已过期或已导入，请重新上传文件", status=410)
    name = raw_name.decode()

    async def produce(progress: Progress) -> Done:
        progress.update("导入办事指南目录（校验并写入）")
        with tempfile.TemporaryDirectory(prefix="govbot-kb-") as tmp:
            path = Path(tmp) / f"catalogue{_suffix(name)}"
            path.write_bytes(data)
            report = await import_catalogue(services.sessions, path, redis=services.redis)
        summary = {"file": name, "added": report.added, "updated": report.updated, "removed": report.removed,
                   "version": report.version, "errors": [str(e) for e in report.errors[:20]]}  # fmt: skip
        await audit(request, "kb.import", object_type="kb_catalogue", object_id=name[:64],
                    outcome="ok" if report.ok else "failed", summary=summary)  # fmt: skip
        if not report.ok:
            problems = "；".join(str(e) for e in report.errors[:20])
            return Done(f"文件有 {len(report.errors)} 个问题，未做任何修改：{problems}", ok=False,
                        link=KB + "/import", link_text="重新导入")  # fmt: skip
        added, updated, removed = len(report.added), len(report.updated), len(report.removed)
        counts = (
            f"已导入：新增 {added} 个，更新 {updated} 个，删除 {removed} 个，未变化 {report.unchanged} 个。"
        )
        version = "内容与数据库一致，无需更新。"
        if report.version:
            version = f"目录版本 {report.version}，机器人从下一个问题起按新目录回答。"
        return Done(counts + version, link=KB + "/items", link_text="查看事项")

    return await deliver(request, f"导入 {name}", produce)


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get(KB, tester),
            web.get(KB + "/items", items_list),
            web.get(KB + "/items/{code}", item_view),
            web.post(KB + "/items/{code}", item_edit),
            web.get(KB + "/aliases", aliases_list),
            web.post(KB + "/aliases", alias_add),
            web.post(KB + "/aliases/{id}/delete", alias_remove),
            web.get(KB + "/unanswered", unanswered_list),
            web.post(KB + "/unanswered/alias", unanswered_alias),
            web.get(KB + "/import", import_form),
            web.post(KB + "/import", import_upload),
            web.post(KB + "/import/apply", import_apply),
        ]
    )
