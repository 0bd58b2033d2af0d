"""Authentication and authorisation of every staff request, in one middleware: ``/api/`` and the web
console's ``/console/`` pages (whose denials are a redirect to the sign-in page or a plain error page
instead of JSON).  Who: a bearer personal API token (``Authorization: Bearer gvb_…``), or a browser
session cookie.  Then:

1. no valid credentials → 401;
2. a session (not a token) on a state-changing request must carry its CSRF token (``X-CSRF-Token``
   header or ``csrf_token`` form field, URL-encoded or multipart) and, when the browser says where it
   comes from (``Origin``), come from ``PUBLIC_BASE_URL``'s origin → else 403;
3. a person who must change their password, or enrol a second factor, reaches only the account set-up
   routes → else 403;
4. the route's permission (:mod:`bot.gateway.staff.routes`) → else 403, recorded in the audit log.

The handler then finds the :class:`~bot.core.actor.Actor` in ``request[ACTOR]``: identity comes from
authentication only, never from a header or body field.  Denials are JSON
``{"error": …, "message": 中文}``.
"""

from __future__ import annotations

import hmac
import html
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from bot.core.actor import ACTOR, Actor
from bot.core.forms import MalformedForm, read_form
from bot.core.masking import mask_text
from bot.domains.staff import Staff
from bot.domains.staff.accounts import actor_for
from bot.domains.staff.audit import RequestInfo
from bot.domains.staff.roles import PERMISSIONS, TOTP_ROLES
from bot.domains.staff.sessions import BrowserSession
from bot.gateway.staff.routes import ACCOUNT_SETUP, AUDIT_ACTIONS, PUBLIC, SELF, permission_for

log = logging.getLogger(__name__)

STAFF = web.AppKey("staff", Staff)
REQUEST_ID = web.RequestKey("request_id", str)
SESSION_ID = web.RequestKey("session_id", str)
SESSION = web.RequestKey("session", BrowserSession)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class CookiePolicy:
    name: str
    secure: bool

    @classmethod
    def for_base_url(cls, public_base_url: str) -> CookiePolicy:
        secure = public_base_url.startswith("https://")
        return cls("__Host-govbot_session" if secure else "govbot_session", secure)


def deny(status: int, error: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="govbot"'} if status == 401 else None
    return web.json_response({"error": error, "message": message}, status=status, headers=headers)


def request_info(request: web.Request) -> RequestInfo:
    return RequestInfo(
        client_ip=request.remote or "",
        user_agent=request.headers.get("User-Agent", "")[:255],
        request_id=request.get(REQUEST_ID, ""),
    )


def actor_of(request: web.Request) -> Actor:
    """The authenticated person (set by the middleware; a handler behind it can rely on it)."""
    actor = request.get(ACTOR)
    if actor is None:
        raise web.HTTPUnauthorized(text="no actor")
    return actor


async def audit(
    request: web.Request,
    action: str,
    *,
    object_type: str = "",
    object_id: str | int = "",
    outcome: str = "ok",
    summary: Mapping[str, object] | None = None,
    username: str = "",
) -> None:
    await request.app[STAFF].audit.record(
        action,
        actor=request.get(ACTOR),
        username=username,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        summary=summary,
        request=request_info(request),
    )


def _origin_ok(request: web.Request, public_base_url: str) -> bool:
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    ours = urlsplit(public_base_url)
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)


def _csrf_ok(request: web.Request, session: BrowserSession, given_form: str | None) -> bool:
    given = request.headers.get("X-CSRF-Token") or given_form or ""
    return bool(given) and hmac.compare_digest(given.encode(), session.csrf.encode())


@dataclass(frozen=True)
class Denial:
    status: int
    error: str
    message: str


CONSOLE = "/console/"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _guarded(path: str) -> bool:
    return path.startswith(("/api/", CONSOLE))


def staff_auth_middleware(public_base_url: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    cookies = CookiePolicy.for_base_url(public_base_url)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_ID] = uuid.uuid4().hex
        if not _guarded(request.path):
            return await handler(request)
        resource = request.match_info.route.resource
        key = (request.method, resource.canonical if resource is not None else request.path)
        if key in PUBLIC or request.path.startswith(CONSOLE + "static/"):
            return await handler(request)
        denial = await _check(request, key, cookies, public_base_url)
        if denial is not None:
            return _answer(request, denial)
        if key not in AUDIT_ACTIONS:
            return await handler(request)
        return await _audited(request, handler, key)

    return middleware


async def _check(
    request: web.Request, key: tuple[str, str], cookies: CookiePolicy, public_base_url: str
) -> Denial | None:
    """Who is asking, and may they?  None when the request may go on (``request[ACTOR]`` is set)."""
    staff = request.app[STAFF]
    actor, session = await _authenticate(request, staff, cookies)
    if actor is None:
        return Denial(401, "unauthorized", "请先登录（浏览器会话或个人 API 令牌）")
    request[ACTOR] = actor
    path = key[1]
    if session is not None and request.method not in SAFE_METHODS:
        form_token = None
        if request.content_type in FORM_TYPES:
            try:
                form_token = str((await read_form(request)).get("csrf_token", "")) or None
            except MalformedForm:  # no token in it; an API handler answers 400 itself, a console page can't
                if request.path.startswith(CONSOLE):
                    return Denial(400, "invalid", "表单内容无法解析，请刷新页面后重试")
        if not _origin_ok(request, public_base_url) or not _csrf_ok(request, session, form_token):
            await audit(request, "csrf.rejected", object_type="route", object_id=path, outcome="denied")
            return Denial(403, "csrf", "请求缺少有效的防伪令牌（CSRF），请刷新页面后重试")
    elif request.path.startswith(CONSOLE) and request.method not in SAFE_METHODS:
        # a console page signed in by token (no CSRF check above): its form is read here too, so a body
        # the page's handler could not parse is a 400 page rather than the handler's 500
        if request.content_type in FORM_TYPES:
            try:
                await read_form(request)
            except MalformedForm:
                return Denial(400, "invalid", "表单内容无法解析，请刷新页面后重试")
    pending = await _account_setup_pending(staff, actor)
    if pending is not None and key not in ACCOUNT_SETUP:
        return pending
    permission = permission_for(request.method, path, dict(request.match_info))
    if permission is None or (permission != SELF and not actor.can(permission)):
        what = PERMISSIONS.get(permission or "", "此操作")
        await audit(request, "access.denied", object_type="route", object_id=path, outcome="denied",
                    summary={"method": request.method, "permission": permission})  # fmt: skip
        return Denial(403, "forbidden", f"您没有权限：{what}")
    return None


def _answer(request: web.Request, denial: Denial) -> web.StreamResponse:
    """JSON for the API; for console pages, the sign-in page, the password page or a plain error page."""
    if not request.path.startswith(CONSOLE):
        return deny(denial.status, denial.error, denial.message)
    if denial.status == 401:
        target = request.path_qs if request.method == "GET" else CONSOLE
        raise web.HTTPFound(f"{CONSOLE}login?{urlencode({'next': target})}")
    if denial.error == "password_change_required":
        raise web.HTTPFound(f"{CONSOLE}password")
    body = (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>无法访问</title>'
        f"<main><h1>无法访问</h1><p>{html.escape(denial.message)}</p>"
        f'<p><a href="{CONSOLE}">返回首页</a></p></main></html>'
    )
    return web.Response(status=denial.status, text=body, content_type="text/html")


async def _audited(request: web.Request, handler: Handler, key: tuple[str, str]) -> web.StreamResponse:
    """Run the handler and write one audit row for the change (or export) it made, or failed to make."""
    template, id_part = AUDIT_ACTIONS[key]
    action = template.format(**request.match_info)
    object_id = request.match_info.get(id_part, "") if id_part else ""
    summary: dict[str, object] = {}
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        summary = {"request": await _body_summary(request), "status": exc.status}
        await audit(request, action, object_type=action.split(".")[0], object_id=object_id, outcome="failed",
                    summary=summary)  # fmt: skip
        raise
    summary = {"request": await _body_summary(request), "status": response.status}
    outcome = "ok" if response.status < 400 else "failed"
    await audit(request, action, object_type=action.split(".")[0], object_id=object_id, outcome=outcome,
                summary=summary)  # fmt: skip
    return response


async def _body_summary(request: web.Request) -> dict[str, object]:
    """The request's JSON fields, each value masked (phones, ID numbers) and cut to 200 characters.  Read
    after the handler: aiohttp keeps a body the handler read, and one it did not read is read here."""
    if request.content_type != "application/json" or not request.body_exists:
        return {"content_type": request.content_type} if request.body_exists else {}
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return {"invalid_json": True}
    if not isinstance(body, dict):
        return {"json": type(body).__name__}
    return {str(k)[:64]: mask_text(str(v))[:200] for k, v in list(body.items())[:30]}


async def _authenticate(
    request: web.Request, staff: Staff, cookies: CookiePolicy
) -> tuple[Actor | None, BrowserSession | None]:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, None
        return await staff.tokens.authenticate(token.strip(), request.remote or ""), None
    session_id = request.cookies.get(cookies.name, "")
    session = await staff.sessions.load(session_id) if session_id else None
    if session is None:
        return None, None
    account = await staff.accounts.get(session.account_id)
    if account is None or not account.active or account.session_epoch != session.epoch:
        await staff.sessions.end(session_id)
        return None, None
    request[SESSION_ID] = session_id
    request[SESSION] = session
    return actor_for(account), session


async def _account_setup_pending(staff: Staff, actor: Actor) -> Denial | None:
    account = await staff.accounts.get(actor.account_id)
    if account is None:
        return Denial(401, "unauthorized", "账号不存在")
    if account.must_change_password:
        return Denial(403, "password_change_required", "请先修改初始密码（POST /api/staff/password）")
    if staff.settings.totp_required and actor.roles & TOTP_ROLES and not account.totp_secret:
        return Denial(403, "totp_required", "您的角色须启用两步验证（POST /api/staff/totp）")
    return None
