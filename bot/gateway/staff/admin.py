"""Administrators' staff views: accounts (create, change roles and department, disable, reset a
password, sign someone out everywhere, their tokens), the roles table, and the audit log with exports.
Every change is written to the audit log.

    GET  /api/staff/accounts           everyone
    POST /api/staff/accounts           {username, display_name, password, roles[], department}
    POST /api/staff/accounts/{id}      {roles?, department?, display_name?, active?}
    POST /api/staff/accounts/{id}/password     {password}: a temporary one, to change at next sign-in
    POST /api/staff/accounts/{id}/logout-all
    GET|POST /api/staff/accounts/{id}/tokens   someone's tokens; create one for them
    GET  /api/staff/roles              the roles and permissions table
    GET  /api/audit?since=&until=&account=&action=&object=&outcome=&limit=&offset=
    GET  /api/audit/export?format=csv|xlsx&…
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.domains.staff.accounts import AccountError
from bot.domains.staff.audit import AuditFilter, export_csv, export_xlsx
from bot.domains.staff.models import StaffAccount, StaffAudit
from bot.domains.staff.roles import PERMISSIONS, ROLES
from bot.gateway.staff.auth import STAFF, actor_of, audit
from bot.gateway.staff.views import (
    _body,
    _int,
    _iso,
    _list,
    _text,
    account_json,
    create_token,
    handle_errors,
    token_json,
)


def audit_json(r: StaffAudit) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": _iso(r.at),
        "account_id": r.account_id,
        "username": r.username,
        "roles": r.roles,
        "action": r.action,
        "object_type": r.object_type,
        "object_id": r.object_id,
        "outcome": r.outcome,
        "summary": json.loads(r.summary or "{}"),
        "client_ip": r.client_ip,
        "user_agent": r.user_agent,
        "request_id": r.request_id,
    }


# ---------------------------------------------------------------------------------------------- accounts


async def _account(request: web.Request) -> StaffAccount:
    account = await request.app[STAFF].accounts.get(_int(request.match_info["id"], "id"))
    if account is None:
        raise AccountError("账号不存在", 404)
    return account


async def list_accounts(request: web.Request) -> web.Response:
    return web.json_response({"accounts": [account_json(a) for a in await request.app[STAFF].accounts.all()]})


async def create_account(request: web.Request) -> web.Response:
    data = await _body(request)
    account = await request.app[STAFF].accounts.create(
        _text(data, "username"), _text(data, "display_name"), _text(data, "password"),
        _list(data, "roles"), _text(data, "department"),
    )  # fmt: skip
    await audit(request, "account.create", object_type="account", object_id=account.id,
                summary={"after": account_json(account)})  # fmt: skip
    return web.json_response(account_json(account), status=201)


async def update_account(request: web.Request) -> web.Response:
    before = await _account(request)
    data = await _body(request)
    active = data.get("active")
    if active is not None and not isinstance(active, bool):
        raise AccountError("active 应为 true 或 false")
    if active is False and before.id == actor_of(request).account_id:
        raise AccountError("不能停用自己的账号")
    after = await request.app[STAFF].accounts.update(
        before.id,
        roles=_list(data, "roles") if "roles" in data else None,
        department=_text(data, "department") if "department" in data else None,
        display_name=_text(data, "display_name") if "display_name" in data else None,
        active=active,
    )
    await audit(request, "account.update", object_type="account", object_id=after.id,
                summary={"before": account_json(before), "after": account_json(after)})  # fmt: skip
    return web.json_response(account_json(after))


async def reset_password(request: web.Request) -> web.Response:
    account = await _account(request)
    data = await _body(request)
    await request.app[STAFF].accounts.reset_password(account.id, _text(data, "password"))
    await audit(request, "password.reset", object_type="account", object_id=account.id)
    return web.json_response({"ok": True})


async def logout_account_everywhere(request: web.Request) -> web.Response:
    account = await _account(request)
    await request.app[STAFF].accounts.sign_out_everywhere(account.id)
    await audit(request, "logout.all", object_type="account", object_id=account.id)
    return web.json_response({"ok": True})


async def account_tokens(request: web.Request) -> web.Response:
    account = await _account(request)
    rows = await request.app[STAFF].tokens.of(account.id)
    return web.json_response({"tokens": [token_json(t) for t in rows]})


async def create_account_token(request: web.Request) -> web.Response:
    return await create_token(request, await _account(request))


async def roles(_request: web.Request) -> web.Response:
    return web.json_response(
        {
            "roles": {k: {"name": n, "permissions": sorted(p)} for k, (n, p) in ROLES.items()},
            "permissions": PERMISSIONS,
        }
    )


# ---------------------------------------------------------------------------------------------- audit


def _moment(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise AccountError(f"{name} 应为 ISO 8601 日期时间") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _audit_filter(request: web.Request, limit: int) -> AuditFilter:
    q = request.query
    account = q.get("account")
    return AuditFilter(
        since=_moment(q.get("since"), "since"),
        until=_moment(q.get("until"), "until"),
        account_id=_int(account, "account") if account else None,
        action=q.get("action") or None,
        object_id=q.get("object") or None,
        outcome=q.get("outcome") or None,
        limit=_int(q.get("limit", str(limit)), "limit"),
        offset=_int(q.get("offset", "0"), "offset"),
    )


async def audit_list(request: web.Request) -> web.Response:
    rows = await request.app[STAFF].audit.query(_audit_filter(request, 100))
    return web.json_response({"entries": [audit_json(r) for r in rows]})


async def audit_export(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise AccountError("format 应为 csv 或 xlsx")
    rows = await request.app[STAFF].audit.query(_audit_filter(request, 10_000))
    await audit(
        request, "audit.export", summary={"rows": len(rows), "format": fmt, "query": dict(request.query)}
    )
    if fmt == "csv":
        body, mime = export_csv(rows), "text/csv; charset=utf-8"
    else:
        body, mime = export_xlsx(rows), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return web.Response(
        body=body, content_type=mime.split(";")[0], charset="utf-8" if fmt == "csv" else None,
        headers={"Content-Disposition": f'attachment; filename="audit.{fmt}"'},
    )  # fmt: skip


def setup_routes(app: web.Application) -> None:
    h = handle_errors
    app.add_routes(
        [
            web.get("/api/staff/accounts", h(list_accounts)),
            web.post("/api/staff/accounts", h(create_account)),
            web.post("/api/staff/accounts/{id}", h(update_account)),
            web.post("/api/staff/accounts/{id}/password", h(reset_password)),
            web.post("/api/staff/accounts/{id}/logout-all", h(logout_account_everywhere)),
            web.get("/api/staff/accounts/{id}/tokens", h(account_tokens)),
            web.post("/api/staff/accounts/{id}/tokens", h(create_account_token)),
            web.get("/api/staff/roles", h(roles)),
            web.get("/api/audit", h(audit_list)),
            web.get("/api/audit/export", h(audit_export)),
        ]
    )
