"""账号与权限: people (list, create, roles, department, disable, password reset, sign out everywhere) and
their personal API tokens (created and shown once, revoked), through the staff domain's Accounts and
Tokens exactly as the ``/api/staff/accounts`` views do, each change written to the audit log the same way."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.domains.staff.accounts import AccountError, roles_of
from bot.domains.staff.models import StaffAccount
from bot.domains.staff.roles import PERMISSIONS, ROLES, permissions_of
from bot.gateway.staff.auth import STAFF, actor_of, audit
from bot.gateway.staff.views import _iso, account_json, token_json
from bot.gateway.web.app_services import services_of
from bot.gateway.web.listing import PAGE_SIZE, Pager, page_number, shown
from bot.gateway.web.render import PREFIX, page
from knowledge_base.importer import load_items

PATH = PREFIX + "/accounts"
# Where an error message belongs on the form (the first word found in it).
FIELD_WORDS = (("用户名", "username"), ("姓名", "display_name"), ("角色", "roles"), ("密码", "password"),
               ("权限", "scopes"), ("令牌", "name"), ("有效期", "days"))  # fmt: skip


def _field_of(message: str, default: str) -> str:
    return next((f for word, f in FIELD_WORDS if word in message), default)


def _role_choices() -> list[tuple[str, str]]:
    return [(key, name) for key, (name, _) in ROLES.items()]


async def _departments(request: web.Request, people: list[StaffAccount]) -> list[str]:
    """Suggestions for the department field: the catalogue's implementing departments and those in use."""
    async with services_of(request).sessions() as session:
        items = await load_items(session)
    return sorted(
        {i.department for i in items if i.department} | {a.department for a in people if a.department}
    )


async def _list_values(request: web.Request, **extra: Any) -> dict[str, Any]:
    people = await request.app[STAFF].accounts.all()
    number = page_number(request.query.get("page"))
    chunk = people[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1]
    rows = [{**account_json(a), "last_login": shown(a.last_login_at)} for a in chunk[:PAGE_SIZE]]
    values: dict[str, Any] = {
        "accounts": rows,
        "pager": Pager(number, len(chunk) > PAGE_SIZE, {}),
        "roles": _role_choices(),
        "departments": await _departments(request, people),
        "errors": {},
        "form": {"username": "", "display_name": "", "department": "", "roles": []},
    }
    values.update(extra)
    return values


async def accounts(request: web.Request) -> web.Response:
    return page(request, "accounts.html", await _list_values(request))


async def create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    chosen = [str(r) for r in form.getall("roles", [])]
    entered = {k: str(form.get(k, "")) for k in ("username", "display_name", "department")}
    try:
        account = await request.app[STAFF].accounts.create(
            entered["username"], entered["display_name"], str(form.get("password", "")), chosen,
            entered["department"],
        )  # fmt: skip
    except AccountError as exc:
        errors = {_field_of(str(exc), "username"): str(exc)}
        values = await _list_values(request, errors=errors, form={**entered, "roles": chosen})
        return page(request, "accounts.html", values, status=exc.status)
    await audit(request, "account.create", object_type="account", object_id=account.id,
                summary={"after": account_json(account)})  # fmt: skip
    raise web.HTTPSeeOther(f"{PATH}/{account.id}?done=created")


async def _account(request: web.Request) -> StaffAccount:
    raw = request.match_info["id"]
    account = await request.app[STAFF].accounts.get(int(raw)) if raw.isdigit() else None
    if account is None:
        raise web.HTTPNotFound(text="账号不存在")
    return account


DONE = {
    "created": "账号已创建，初始密码须在首次登录时修改。",
    "updated": "已保存。",
    "password": "已重置密码：此人须用临时密码登录并立即修改；其所有会话已退出。",
    "logout": "已让此人在所有设备上退出登录。",
    "revoked": "令牌已吊销。",
}


async def _detail_values(request: web.Request, account: StaffAccount, **extra: Any) -> dict[str, Any]:
    tokens = await request.app[STAFF].tokens.of(account.id)
    allowed = permissions_of(roles_of(account))
    values: dict[str, Any] = {
        "account": account_json(account),
        "last_login": shown(account.last_login_at),
        "tokens": [
            {
                **token_json(t),
                "created": shown(t.created_at),
                "expires": shown(t.expires_at),
                "revoked": shown(t.revoked_at),
                "used": shown(t.last_used_at),
            }
            for t in tokens
        ],
        "roles": _role_choices(),
        "departments": await _departments(request, await request.app[STAFF].accounts.all()),
        "scopes": [(p, PERMISSIONS[p]) for p in PERMISSIONS if p in allowed],
        "done": DONE.get(request.query.get("done", ""), ""),
        "errors": {},
        "new_token": None,
        "is_me": account.id == actor_of(request).account_id,
    }
    values.update(extra)
    return values


async def detail(request: web.Request) -> web.Response:
    account = await _account(request)
    return page(request, "account.html", await _detail_values(request, account))


async def update(request: web.Request) -> web.StreamResponse:
    before = await _account(request)
    form = await request.post()
    active = form.get("active") == "1"
    if not active and before.id == actor_of(request).account_id:
        values = await _detail_values(request, before, errors={"active": "不能停用自己的账号"})
        return page(request, "account.html", values, status=400)
    try:
        after = await request.app[STAFF].accounts.update(
            before.id,
            roles=[str(r) for r in form.getall("roles", [])],
            department=str(form.get("department", "")),
            display_name=str(form.get("display_name", "")),
            active=active,
        )
    except AccountError as exc:
        values = await _detail_values(request, before, errors={_field_of(str(exc), "roles"): str(exc)})
        return page(request, "account.html", values, status=exc.status)
    await audit(request, "account.update", object_type="account", object_id=after.id,
                summary={"before": account_json(before), "after": account_json(after)})  # fmt: skip
    raise web.HTTPSeeOther(f"{PATH}/{after.id}?done=updated")


async def reset_password(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    form = await request.post()
    try:
        await request.app[STAFF].accounts.reset_password(account.id, str(form.get("password", "")))
    except AccountError as exc:
        values = await _detail_values(request, account, errors={"password": str(exc)})
        return page(request, "account.html", values, status=exc.status)
    await audit(request, "password.reset", object_type="account", object_id=account.id)
    raise web.HTTPSeeOther(f"{PATH}/{account.id}?done=password")


async def logout_everywhere(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    await request.app[STAFF].accounts.sign_out_everywhere(account.id)
    await audit(request, "logout.all", object_type="account", object_id=account.id)
    raise web.HTTPSeeOther(f"{PATH}/{account.id}?done=logout")


async def create_token(request: web.Request) -> web.Response:
    """The token is shown on this answer only (never stored in clear, never shown again)."""
    owner = await _account(request)
    form = await request.post()
    raw_days = str(form.get("days", "")).strip()
    try:
        if raw_days and not raw_days.isdigit():
            raise AccountError("有效期应为整数天数")
        token, row = await request.app[STAFF].tokens.create(
            owner, str(form.get("name", "")), [str(s) for s in form.getall("scopes", [])],
            int(raw_days) if raw_days else None, actor_of(request).account_id,
        )  # fmt: skip
    except AccountError as exc:
        values = await _detail_values(request, owner, errors={_field_of(str(exc), "name"): str(exc)})
        return page(request, "account.html", values, status=exc.status)
    summary = {"owner": owner.username, "scopes": row.scopes, "expires_at": _iso(row.expires_at)}
    await audit(request, "token.create", object_type="token", object_id=row.id, summary=summary)
    values = await _detail_values(request, owner, new_token={"token": token, "name": row.name})
    response = page(request, "account.html", values, status=201)
    response.headers["Cache-Control"] = "no-store"
    return response


async def revoke_token(request: web.Request) -> web.StreamResponse:
    owner = await _account(request)
    staff = request.app[STAFF]
    raw = request.match_info["token_id"]
    row = await staff.tokens.get(int(raw)) if raw.isdigit() else None
    if row is None or row.account_id != owner.id:
        raise web.HTTPNotFound(text="令牌不存在")
    revoked = await staff.tokens.revoke(row.id)
    await audit(request, "token.revoke", object_type="token", object_id=row.id, summary={"revoked": revoked})
    raise web.HTTPSeeOther(f"{PATH}/{owner.id}?done=revoked")


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get(PATH, accounts),
            web.post(PATH, create),
            web.get(PATH + "/{id}", detail),
            web.post(PATH + "/{id}", update),
            web.post(PATH + "/{id}/password", reset_password),
            web.post(PATH + "/{id}/logout-all", logout_everywhere),
            web.post(PATH + "/{id}/tokens", create_token),
            web.post(PATH + "/{id}/tokens/{token_id}/revoke", revoke_token),
        ]
    )
