"""Staff identity over HTTP, for everyone signed in: sign-in and sign-out, one's own password, second
factor and API tokens (administrators' views: :mod:`bot.gateway.staff.admin`).  Every change is written to
the audit log.

    POST /api/staff/login              {username, password, totp?} → session cookie + {csrf_token, me}
    POST /api/staff/logout             end this session
    POST /api/staff/logout-all         end all of one's sessions
    GET  /api/staff/me                 who am I, my roles and permissions
    POST /api/staff/password           {old, new}
    POST /api/staff/totp               start binding a TOTP app → {secret, uri}
    POST /api/staff/totp/confirm       {code}
    GET  /api/staff/tokens             my tokens (never the secret)
    POST /api/staff/tokens             {name, scopes[], days} → the token, shown once
    POST /api/staff/tokens/{id}/revoke
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from bot.core.actor import ACTOR
from bot.core.clock import as_utc
from bot.core.forms import MalformedForm, read_form
from bot.domains.staff.accounts import AccountError, actor_for, roles_of
from bot.domains.staff.models import StaffAccount, StaffToken
from bot.domains.staff.roles import ROLES
from bot.gateway.staff.auth import SESSION_ID, STAFF, CookiePolicy, actor_of, audit, deny

COOKIES = web.AppKey("staff_cookies", CookiePolicy)
SIGN_IN_MESSAGES = {
    "bad_credentials": (401, "用户名或密码不正确"),
    "locked": (429, "登录失败次数过多，账号已暂时锁定，请稍后再试"),
    "address_limited": (429, "此地址登录失败次数过多，请稍后再试"),
    "totp_required": (401, "请输入两步验证码"),
    "totp_invalid": (401, "两步验证码不正确或已使用"),
}


def _iso(value: datetime | None) -> str | None:
    moment = as_utc(value)
    return moment.isoformat(timespec="seconds") if moment else None


def account_json(a: StaffAccount) -> dict[str, Any]:
    roles = sorted(roles_of(a))
    return {
        "id": a.id,
        "username": a.username,
        "display_name": a.display_name,
        "department": a.department,
        "roles": roles,
        "role_names": [ROLES[r][0] for r in roles if r in ROLES],
        "active": a.active,
        "must_change_password": a.must_change_password,
        "totp": bool(a.totp_secret),
        "locked_until": _iso(a.locked_until),
        "last_login_at": _iso(a.last_login_at),
    }


def token_json(t: StaffToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "last_eight": t.last_eight,
        "scopes": [s for s in t.scopes.split(",") if s],
        "created_at": _iso(t.created_at),
        "expires_at": _iso(t.expires_at),
        "revoked_at": _iso(t.revoked_at),
        "last_used_at": _iso(t.last_used_at),
        "last_used_ip": t.last_used_ip,
    }


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise AccountError("请求体不是有效的 JSON") from None
    else:
        try:
            data = dict(await read_form(request))
        except MalformedForm:  # e.g. multipart without a boundary, an unknown charset
            raise AccountError("请求体无法解析（应为 JSON 或表单）") from None
    if not isinstance(data, dict):
        raise AccountError("请求体应为 JSON 对象")
    return data


def _text(data: dict[str, Any], name: str, default: str = "") -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise AccountError(f"{name} 应为文字")
    return value


def _list(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name, [])
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AccountError(f"{name} 应为文字列表")
    return value


INT_RANGE = range(-(2**31), 2**31)  # what an INTEGER column holds (PostgreSQL's int4; SQLite's is wider)


def _int(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise AccountError(f"{name} 应为整数") from None
    if value not in INT_RANGE:  # a database would refuse it with an error of its own (a 500)
        raise AccountError(f"{name} 超出范围")
    return value


def handle_errors(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AccountError as exc:
            return deny(exc.status, "invalid" if exc.status == 400 else "refused", str(exc))

    return wrapped


# ---------------------------------------------------------------------------------------------- sign-in


async def login(request: web.Request) -> web.Response:
    staff = request.app[STAFF]
    data = await _body(request)
    username = _text(data, "username")
    result = await staff.accounts.sign_in(
        username, _text(data, "password"), request.remote or "", _text(data, "totp")
    )
    if result.account is None:
        status, message = SIGN_IN_MESSAGES[result.reason]
        await audit(
            request, "login", username=username[:64], outcome="failed", summary={"reason": result.reason}
        )
        headers = {"Retry-After": str(result.retry_after)} if result.retry_after else None
        return web.json_response({"error": result.reason, "message": message}, status=status, headers=headers)
    account = result.account
    old = request.cookies.get(request.app[COOKIES].name)
    if old:
        await staff.sessions.end(old)  # never keep an id from before sign-in
    session_id, session = await staff.sessions.create(
        account.id, account.session_epoch, request.remote or "", request.headers.get("User-Agent", "")
    )
    request[ACTOR] = actor_for(account)
    await audit(request, "login", object_type="account", object_id=account.id)
    body: dict[str, Any] = {
        "csrf_token": session.csrf,
        "me": account_json(account),
        "must_change_password": account.must_change_password,
        "totp_enrollment_required": result.totp_enrollment_required,
    }
    response = web.json_response(body)
    policy = request.app[COOKIES]
    response.set_cookie(
        policy.name, session_id, httponly=True, samesite="Lax", secure=policy.secure, path="/",
        max_age=staff.settings.session_max,
    )  # fmt: skip
    return response


async def logout(request: web.Request) -> web.Response:
    session_id = request.get(SESSION_ID)
    if session_id:
        await request.app[STAFF].sessions.end(str(session_id))
    await audit(request, "logout")
    response = web.json_response({"ok": True})
    response.del_cookie(request.app[COOKIES].name, path="/")
    return response


async def logout_all(request: web.Request) -> web.Response:
    actor = actor_of(request)
    await request.app[STAFF].accounts.sign_out_everywhere(actor.account_id)
    await audit(request, "logout.all", object_type="account", object_id=actor.account_id)
    response = web.json_response({"ok": True})
    response.del_cookie(request.app[COOKIES].name, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    actor = actor_of(request)
    account = await request.app[STAFF].accounts.get(actor.account_id)
    assert account is not None
    return web.json_response(
        {**account_json(account), "permissions": sorted(actor.permissions), "via": actor.via}
    )


async def change_password(request: web.Request) -> web.Response:
    actor = actor_of(request)
    data = await _body(request)
    await request.app[STAFF].accounts.change_password(
        actor.account_id, _text(data, "old"), _text(data, "new")
    )
    await audit(request, "password.change", object_type="account", object_id=actor.account_id)
    response = web.json_response({"ok": True, "message": "密码已修改，请重新登录"})
    response.del_cookie(request.app[COOKIES].name, path="/")
    return response


async def start_totp(request: web.Request) -> web.Response:
    actor = actor_of(request)
    secret, uri = await request.app[STAFF].accounts.start_totp(actor.account_id)
    await audit(request, "totp.start", object_type="account", object_id=actor.account_id)
    return web.json_response({"secret": secret, "uri": uri})


async def confirm_totp(request: web.Request) -> web.Response:
    actor = actor_of(request)
    data = await _body(request)
    await request.app[STAFF].accounts.confirm_totp(actor.account_id, _text(data, "code"))
    await audit(request, "totp.enable", object_type="account", object_id=actor.account_id)
    return web.json_response({"ok": True})


# ---------------------------------------------------------------------------------------------- tokens


async def create_token(request: web.Request, owner: StaffAccount) -> web.Response:
    actor = actor_of(request)
    data = await _body(request)
    days = data.get("days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool)):
        raise AccountError("days 应为整数")
    token, row = await request.app[STAFF].tokens.create(
        owner, _text(data, "name"), _list(data, "scopes"), days, actor.account_id
    )
    summary = {"owner": owner.username, "scopes": row.scopes, "expires_at": _iso(row.expires_at)}
    await audit(request, "token.create", object_type="token", object_id=row.id, summary=summary)
    return web.json_response({"token": token, "shown_once": True, **token_json(row)}, status=201)


async def my_tokens(request: web.Request) -> web.Response:
    rows = await request.app[STAFF].tokens.of(actor_of(request).account_id)
    return web.json_response({"tokens": [token_json(t) for t in rows]})


async def create_my_token(request: web.Request) -> web.Response:
    account = await request.app[STAFF].accounts.get(actor_of(request).account_id)
    assert account is not None
    return await create_token(request, account)


async def revoke_token(request: web.Request) -> web.Response:
    actor = actor_of(request)
    staff = request.app[STAFF]
    row = await staff.tokens.get(_int(request.match_info["id"], "id"))
    if row is None or (row.account_id != actor.account_id and not actor.can("accounts.manage")):
        raise AccountError("令牌不存在", 404)  # someone else's token: as if it did not exist
    revoked = await staff.tokens.revoke(row.id)
    await audit(request, "token.revoke", object_type="token", object_id=row.id, summary={"revoked": revoked})
    return web.json_response({"ok": True, "revoked": revoked})


def setup_routes(app: web.Application, public_base_url: str) -> None:
    app[COOKIES] = CookiePolicy.for_base_url(public_base_url)
    h = handle_errors
    app.add_routes(
        [
            web.post("/api/staff/login", h(login)),
            web.post("/api/staff/logout", h(logout)),
            web.post("/api/staff/logout-all", h(logout_all)),
            web.get("/api/staff/me", h(me)),
            web.post("/api/staff/password", h(change_password)),
            web.post("/api/staff/totp", h(start_totp)),
            web.post("/api/staff/totp/confirm", h(confirm_totp)),
            web.get("/api/staff/tokens", h(my_tokens)),
            web.post("/api/staff/tokens", h(create_my_token)),
            web.post("/api/staff/tokens/{id}/revoke", h(revoke_token)),
        ]
    )
