"""Staff HTTP API for broadcasts (JSON; errors as ``{"error", "message"}`` with a Chinese message).

``setup_routes(app, key)`` adds the routes below; ``app[key]`` must hold a :class:`BroadcastService`.
They live under ``/api/``: the gateway's staff middleware signs the person in (session or personal API
token), checks each route's permission (approving needs the approver role) and writes the audit log; the
acting person is the authenticated :class:`~bot.core.actor.Actor` in ``request[ACTOR]``, never a header or
a body field.  An approver may not approve a campaign they created (compared by account).

    GET    /api/broadcasts                          list
    POST   /api/broadcasts                          create {name, template, purpose?, rate?, window?}
    GET    /api/broadcasts/groups                   saved groups
    POST   /api/broadcasts/groups                   multipart: name, file [, column_map JSON]
    GET    /api/broadcasts/{id}                     campaign + live progress
    POST   /api/broadcasts/{id}/recipients          multipart: file?, column_map? (JSON), group_ids?
    GET    /api/broadcasts/{id}/preview             samples, counts, exclusions, segments, duration, blockers
    POST   /api/broadcasts/{id}/<action>            submit approve reject start pause resume cancel
                                                    (JSON: at? for start, reason? for cancel/reject)
    GET    /api/broadcasts/{id}/progress            live counters
    GET    /api/broadcasts/{id}/export              per-recipient results (XLSX download)
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from bot.core.actor import ACTOR, Actor
from bot.core.forms import FORM_ERRORS
from sms_gateway.broadcast.export import write_xlsx
from sms_gateway.broadcast.recipients import RecipientFileError
from sms_gateway.broadcast.service import BroadcastError, BroadcastService

PREFIX = "/api/broadcasts"
ACTIONS = ("submit", "approve", "reject", "start", "pause", "resume", "cancel")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _actor(request: web.Request) -> Actor:
    actor = request.get(ACTOR)
    if actor is None:
        raise BroadcastError("请先登录", 401)
    return actor


def _parse_time(raw: Any) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError as exc:
        raise BroadcastError(
            f"时间格式无效：{raw}（应为 ISO 8601，如 2026-06-01T09:00:00+08:00）", 400
        ) from exc
    if value.tzinfo is None:
        raise BroadcastError("时间须带时区（如 +08:00）", 400)
    return value


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BroadcastError("请求体不是有效的 JSON", 400) from exc
    if not isinstance(body, dict):
        raise BroadcastError("请求体应为 JSON 对象", 400)
    return body


async def _form(request: web.Request) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    if not request.content_type.startswith("multipart/"):
        raise BroadcastError("请以 multipart/form-data 上传（字段 file）", 400)
    try:
        return await _parts(request)
    except FORM_ERRORS as exc:  # no boundary, broken part headers, an unknown charset
        raise BroadcastError(f"multipart 内容无法解析（{type(exc).__name__}）", 400) from None


async def _parts(request: web.Request) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    fields: dict[str, str] = {}
    upload: tuple[str, bytes] | None = None
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise BroadcastError("不支持嵌套的 multipart 内容", 400)
        if part.name == "file" and part.filename:
            upload = (str(part.filename), bytes(await part.read()))
        elif part.name:
            try:
                fields[part.name] = (await part.read()).decode("utf-8")
            except UnicodeDecodeError:
                raise BroadcastError(f"字段 {part.name} 不是 UTF-8 文本", 400) from None
    return fields, upload


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class _Setup:
    service: web.AppKey[BroadcastService]  # where the application holds the service


_SETUP = web.AppKey("broadcast_api", _Setup)


def _service(request: web.Request) -> BroadcastService:
    return request.app[request.app[_SETUP].service]


def _guarded(handler: Handler) -> Handler:
    """Refused operations and unusable files as ``{"error", "message"}`` with their status."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BroadcastError as exc:
            return _error(exc.status, "broadcast", exc.message)
        except RecipientFileError as exc:
            return _error(400, "bad_file", str(exc))

    return wrapped


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"campaigns": await _service(request).campaigns()})


def _draft_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields a draft is made of, as the service takes them (400 for values of the wrong type)."""
    rate, window = body.get("rate"), body.get("window")
    if window is not None and not isinstance(window, str):
        raise BroadcastError("window 应为文字，如 08:00-21:00", 400)
    try:
        rate_value = float(rate) if rate not in (None, "") else None
    except (TypeError, ValueError):
        raise BroadcastError("rate 应为数字（条段/秒）", 400) from None
    return {
        "name": str(body.get("name") or ""),
        "template": str(body.get("template") or ""),
        "purpose": str(body.get("purpose") or "通知"),
        "rate": rate_value,
        "window": window or None,
    }


async def _create(request: web.Request) -> web.Response:
    body = await _json(request)
    campaign = await _service(request).create(
        **_draft_fields(body),
        channel=str(body.get("channel") or "sms"),
        scheduled_at=_parse_time(body.get("scheduled_at")),
        created_by=_actor(request).name,
        created_by_account=_actor(request).account_id,
    )
    return web.json_response(campaign, status=201)


async def _update(request: web.Request) -> web.Response:
    """PATCH a draft: the body holds the whole draft (name, template, purpose, rate, window)."""
    campaign = await _service(request).update_draft(
        request.match_info["id"], **_draft_fields(await _json(request))
    )
    return web.json_response(campaign)


async def _show(request: web.Request) -> web.Response:
    svc = _service(request)
    cid = request.match_info["id"]
    return web.json_response({**(await svc.view(cid)), "progress": await svc.progress(cid)})


def _column_map(fields: dict[str, str]) -> dict[str, str]:
    """The upload's ``column_map`` field: a JSON object of column names (400 for anything else)."""
    try:
        column_map = json.loads(fields.get("column_map") or "{}")
    except json.JSONDecodeError as exc:
        raise BroadcastError('column_map 应为 JSON，如 {"姓名": "联系人"}', 400) from exc
    if not isinstance(column_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in column_map.items()
    ):
        raise BroadcastError('column_map 应为 JSON 对象，键和值都是列名，如 {"姓名": "联系人"}', 400)
    return column_map


async def _recipients(request: web.Request) -> web.Response:
    fields, upload = await _form(request)
    column_map = _column_map(fields)
    groups = [g.strip() for g in (fields.get("group_ids") or "").split(",") if g.strip()]
    result = await _service(request).set_recipients(
        request.match_info["id"],
        actor=_actor(request).name,
        upload=upload,
        column_map=column_map,
        group_ids=groups,
    )
    return web.json_response(result)


async def _wechat_tag(request: web.Request) -> web.Response:
    body = await _json(request)
    tag_id = body.get("tag_id")
    if not isinstance(tag_id, int) or isinstance(tag_id, bool):
        raise BroadcastError("tag_id 应为公众号标签的编号（整数）", 400)
    cid = request.match_info["id"]
    return web.json_response(
        await _service(request).choose_wechat_tag(cid, tag_id, actor=_actor(request).name)
    )


async def _wechat_cases(request: web.Request) -> web.Response:
    body = await _json(request)
    item_code = body.get("item_code")
    if item_code is not None and not isinstance(item_code, str):
        raise BroadcastError("item_code 应为事项编码（字符串），不填则为全部事项", 400)
    cid = request.match_info["id"]
    return web.json_response(await _service(request).choose_cases(cid, item_code, actor=_actor(request).name))


async def _preview(request: web.Request) -> web.Response:
    preview = await _service(request).preview(request.match_info["id"])
    return web.json_response(preview.as_dict())


async def _progress(request: web.Request) -> web.Response:
    return web.json_response(await _service(request).progress(request.match_info["id"]))


async def _action(request: web.Request) -> web.Response:
    svc = _service(request)
    cid = request.match_info["id"]
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise BroadcastError(f"未知操作：{action}", 404)
    body = await _json(request)
    who = _actor(request)
    actor = who.name
    if action == "approve":
        return web.json_response(await svc.approve(cid, actor, who.account_id))
    if action == "start":
        result = await svc.start(cid, actor, at=_parse_time(body.get("at")))
    elif action in ("cancel", "reject"):
        result = await getattr(svc, action)(cid, actor, str(body.get("reason") or ""))
    else:
        result = await getattr(svc, action)(cid, actor)
    return web.json_response(result)


async def _export(request: web.Request) -> web.StreamResponse:
    cid = request.match_info["id"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{cid}.xlsx"
        write_xlsx(await _service(request).results(cid), path)
        data = path.read_bytes()
    return web.Response(
        body=data,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{cid}.xlsx"'},
    )


async def _groups(request: web.Request) -> web.Response:
    return web.json_response({"groups": await _service(request).groups()})


async def _save_group(request: web.Request) -> web.Response:
    fields, upload = await _form(request)
    if upload is None:
        raise BroadcastError("请上传分组名单文件（字段 file）", 400)
    result = await _service(request).save_group(
        name=fields.get("name", ""),
        actor=_actor(request).name,
        upload=upload,
        column_map=_column_map(fields),
    )
    return web.json_response(result, status=201)


def setup_routes(app: web.Application, key: web.AppKey[BroadcastService]) -> None:
    """Register the ``/api/broadcasts`` routes; ``app[key]`` must hold the :class:`BroadcastService`."""
    app[_SETUP] = _Setup(key)
    app.add_routes(
        [
            web.get(PREFIX, _guarded(_list)),
            web.post(PREFIX, _guarded(_create)),
            web.get(f"{PREFIX}/groups", _guarded(_groups)),
            web.post(f"{PREFIX}/groups", _guarded(_save_group)),
            web.get(PREFIX + "/{id}", _guarded(_show)),
            web.patch(PREFIX + "/{id}", _guarded(_update)),
            web.post(PREFIX + "/{id}/recipients", _guarded(_recipients)),
            web.post(PREFIX + "/{id}/wechat-tag", _guarded(_wechat_tag)),
            web.post(PREFIX + "/{id}/wechat-cases", _guarded(_wechat_cases)),
            web.get(PREFIX + "/{id}/preview", _guarded(_preview)),
            web.get(PREFIX + "/{id}/progress", _guarded(_progress)),
            web.get(PREFIX + "/{id}/export", _guarded(_export)),
            web.post(PREFIX + "/{id}/{action}", _guarded(_action)),
        ]
    )


ROUTES = [
    ("GET", PREFIX),
    ("POST", PREFIX),
    ("GET", f"{PREFIX}/groups"),
    ("POST", f"{PREFIX}/groups"),
    ("GET", f"{PREFIX}/x"),
    ("PATCH", f"{PREFIX}/x"),
    ("POST", f"{PREFIX}/x/recipients"),
    ("POST", f"{PREFIX}/x/wechat-tag"),
    ("POST", f"{PREFIX}/x/wechat-cases"),
    ("GET", f"{PREFIX}/x/preview"),
    ("GET", f"{PREFIX}/x/progress"),
    ("GET", f"{PREFIX}/x/export"),
    *(("POST", f"{PREFIX}/x/{a}") for a in ACTIONS),
]
