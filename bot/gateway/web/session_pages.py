"""The console's sign-in, sign-out, password and home pages (plain HTML forms; the same rules as the
``/api/staff/…`` routes: lockout, TOTP, a new session id, the audit log)."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from bot.core.actor import ACTOR
from bot.domains.staff.accounts import AccountError, actor_for
from bot.gateway.staff.auth import SESSION_ID, STAFF, actor_of, audit
from bot.gateway.staff.views import COOKIES, SIGN_IN_MESSAGES
from bot.gateway.web.render import PREFIX, page, visible_nav


def _safe_next(raw: str) -> str:
    """Only a path on this console (no scheme, no host): never an open redirect."""
    parts = urlsplit(raw or "")
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX + "/") or "\\" in raw:
        return PREFIX + "/"
    return raw


async def login_form(request: web.Request) -> web.Response:
    values = {"error": "", "next": _safe_next(request.query.get("next", "")), "username": ""}
    return page(request, "login.html", values)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, target = str(form.get("username", "")), _safe_next(str(form.get("next", "")))
    staff = request.app[STAFF]
    result = await staff.accounts.sign_in(
        username, str(form.get("password", "")), request.remote or "", str(form.get("totp", ""))
    )
    if result.account is None:
        await audit(request, "login", username=username[:64], outcome="failed",
                    summary={"reason": result.reason, "via": "console"})  # fmt: skip
        status, message = SIGN_IN_MESSAGES[result.reason]
        values = {"error": message, "next": target, "username": username}
        return page(request, "login.html", values, status=status)
    account = result.account
    old = request.cookies.get(request.app[COOKIES].name)
    if old:
        await staff.sessions.end(old)
    session_id, _ = await staff.sessions.create(
        account.id, account.session_epoch, request.remote or "", request.headers.get("User-Agent", "")
    )
    request[ACTOR] = actor_for(account)
    await audit(request, "login", object_type="account", object_id=account.id, summary={"via": "console"})
    response = web.HTTPFound(PREFIX + "/password" if account.must_change_password else target)
    policy = request.app[COOKIES]
    response.set_cookie(
        policy.name, session_id, httponly=True, samesite="Lax", secure=policy.secure, path="/",
        max_age=staff.settings.session_max,
    )  # fmt: skip
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session_id = request.get(SESSION_ID)
    if session_id:
        await request.app[STAFF].sessions.end(session_id)
    await audit(request, "logout", summary={"via": "console"})
    response = web.HTTPFound(PREFIX + "/login")
    response.del_cookie(request.app[COOKIES].name, path="/")
    raise response


async def password_form(request: web.Request) -> web.Response:
    account = await request.app[STAFF].accounts.get(actor_of(request).account_id)
    must = bool(account and account.must_change_password)
    return page(request, "password.html", {"error": "", "must_change": must})


async def change_password(request: web.Request) -> web.StreamResponse:
    actor = actor_of(request)
    form = await request.post()
    try:
        await request.app[STAFF].accounts.change_password(
            actor.account_id, str(form.get("old", "")), str(form.get("new", ""))
        )
    except AccountError as exc:
        return page(request, "password.html", {"error": str(exc), "must_change": False}, status=exc.status)
    await audit(request, "password.change", object_type="account", object_id=actor.account_id)
    response = web.HTTPFound(PREFIX + "/login")
    response.del_cookie(request.app[COOKIES].name, path="/")
    raise response


async def home(request: web.Request) -> web.StreamResponse:
    nav = visible_nav(actor_of(request), request.app)
    if len(nav) >= 1 and request.query.get("menu") is None:
        raise web.HTTPFound(nav[0].path)
    return page(request, "home.html", {})


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get(PREFIX + "/login", login_form),
            web.post(PREFIX + "/login", login),
            web.post(PREFIX + "/logout", logout),
            web.get(PREFIX + "/password", password_form),
            web.post(PREFIX + "/password", change_password),
            web.get(PREFIX + "/", home),
        ]
    )
