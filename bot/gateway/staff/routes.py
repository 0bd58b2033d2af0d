"""Which permission each staff route needs: one table, checked on the server for every request.

``PUBLIC`` routes need no sign-in.  ``SELF`` routes need only a signed-in person (their own password,
tokens, sign-out).  Every other ``/api/`` route names a permission from
:data:`bot.domains.staff.roles.PERMISSIONS`; a route missing from the table is refused (deny by default),
and a test walks the application's router to keep the table complete.
"""

from __future__ import annotations

SELF = "self"
Key = tuple[str, str]  # (method, route path as registered)

PUBLIC: frozenset[Key] = frozenset(
    {("POST", "/api/staff/login"), ("GET", "/console/login"), ("POST", "/console/login")}
)

# Routes a person must still reach while their password must change or their second factor is missing.
ACCOUNT_SETUP: frozenset[Key] = frozenset(
    {
        ("GET", "/api/staff/me"),
        ("POST", "/api/staff/password"),
        ("POST", "/api/staff/logout"),
        ("POST", "/api/staff/totp"),
        ("POST", "/api/staff/totp/confirm"),
        ("GET", "/console/password"),
        ("POST", "/console/password"),
        ("POST", "/console/logout"),
    }
)

ROUTE_PERMISSIONS: dict[Key, str] = {
    # identity: oneself
    ("GET", "/api/staff/me"): SELF,
    ("POST", "/api/staff/logout"): SELF,
    ("POST", "/api/staff/logout-all"): SELF,
    ("POST", "/api/staff/password"): SELF,
    ("POST", "/api/staff/totp"): SELF,
    ("POST", "/api/staff/totp/confirm"): SELF,
    ("GET", "/api/staff/tokens"): SELF,
    ("POST", "/api/staff/tokens"): SELF,
    ("POST", "/api/staff/tokens/{id}/revoke"): SELF,
    # identity: administrators
    ("GET", "/api/staff/accounts"): "accounts.manage",
    ("POST", "/api/staff/accounts"): "accounts.manage",
    ("POST", "/api/staff/accounts/{id}"): "accounts.manage",
    ("POST", "/api/staff/accounts/{id}/password"): "accounts.manage",
    ("POST", "/api/staff/accounts/{id}/logout-all"): "accounts.manage",
    ("GET", "/api/staff/accounts/{id}/tokens"): "accounts.manage",
    ("POST", "/api/staff/accounts/{id}/tokens"): "accounts.manage",
    ("GET", "/api/staff/roles"): "accounts.manage",
    # the OpenAPI description of these routes (bot/gateway/openapi/), for anyone signed in
    ("GET", "/api/openapi.json"): SELF,
    ("GET", "/api/audit"): "audit.read",
    ("GET", "/api/audit/export"): "audit.read",
    # the bot
    ("POST", "/api/chat"): "chat.test",
    # knowledge base
    ("GET", "/api/kb/search"): "kb.read",
    # complaints
    ("GET", "/api/complaints"): "complaints.read",
    ("POST", "/api/complaints"): "complaints.handle",
    ("GET", "/api/complaints/meta"): "complaints.read",
    ("POST", "/api/complaints/sweep"): "complaints.supervise",
    ("GET", "/api/complaints/{number}"): "complaints.read",
    ("POST", "/api/complaints/{number}/{action}"): "complaints.handle",
    # broadcasts
    ("GET", "/api/broadcasts"): "broadcast.read",
    ("POST", "/api/broadcasts"): "broadcast.compose",
    ("GET", "/api/broadcasts/groups"): "broadcast.read",
    ("POST", "/api/broadcasts/groups"): "broadcast.compose",
    ("GET", "/api/broadcasts/{id}"): "broadcast.read",
    ("PATCH", "/api/broadcasts/{id}"): "broadcast.compose",
    ("POST", "/api/broadcasts/{id}/recipients"): "broadcast.compose",
    ("POST", "/api/broadcasts/{id}/wechat-tag"): "broadcast.compose",
    ("POST", "/api/broadcasts/{id}/wechat-cases"): "broadcast.compose",
    ("GET", "/api/broadcasts/{id}/preview"): "broadcast.read",
    ("GET", "/api/broadcasts/{id}/progress"): "broadcast.read",
    ("GET", "/api/broadcasts/{id}/export"): "broadcast.export",
    # per action: see BROADCAST_ACTIONS
    ("POST", "/api/broadcasts/{id}/{action}"): "broadcast.action",
}

# /api/broadcasts/{id}/{action}: the permission depends on the action.
BROADCAST_ACTIONS: dict[str, str] = {
    "submit": "broadcast.compose",
    "start": "broadcast.operate",
    "pause": "broadcast.operate",
    "resume": "broadcast.operate",
    "cancel": "broadcast.operate",
    "approve": "broadcast.approve",
    "reject": "broadcast.approve",
}


# What the audit log calls each change made through a route ("{action}" is the route's own part), and the
# path part that names the object.  Identity routes (/api/staff/…) write their own, richer entries.
AUDIT_ACTIONS: dict[Key, tuple[str, str]] = {
    ("POST", "/api/chat"): ("chat.test", ""),
    ("POST", "/api/complaints"): ("complaint.create", ""),
    ("POST", "/api/complaints/sweep"): ("complaint.sweep", ""),
    ("POST", "/api/complaints/{number}/{action}"): ("complaint.{action}", "number"),
    ("POST", "/api/broadcasts"): ("broadcast.create", ""),
    ("PATCH", "/api/broadcasts/{id}"): ("broadcast.update", "id"),
    ("POST", "/api/broadcasts/groups"): ("broadcast.group", ""),
    ("POST", "/api/broadcasts/{id}/recipients"): ("broadcast.recipients", "id"),
    ("POST", "/api/broadcasts/{id}/wechat-tag"): ("broadcast.recipients", "id"),
    ("POST", "/api/broadcasts/{id}/wechat-cases"): ("broadcast.recipients", "id"),
    ("POST", "/api/broadcasts/{id}/{action}"): ("broadcast.{action}", "id"),
    ("GET", "/api/broadcasts/{id}/export"): ("broadcast.export", "id"),
}


# The web console's pages (bot/gateway/web/): the same rule, one permission per page.
CONSOLE_PERMISSIONS: dict[Key, str] = {
    ("GET", "/console/"): SELF,
    ("POST", "/console/logout"): SELF,
    ("GET", "/console/password"): SELF,
    ("POST", "/console/password"): SELF,
    ("GET", "/console/api"): SELF,  # 接口说明: the OpenAPI description rendered (web/api_pages.py)
    # 知识库
    ("GET", "/console/kb"): "kb.read",
    ("GET", "/console/kb/items"): "kb.read",
    ("GET", "/console/kb/items/{code}"): "kb.read",
    ("POST", "/console/kb/items/{code}"): "kb.edit",
    ("GET", "/console/kb/aliases"): "kb.read",
    ("POST", "/console/kb/aliases"): "kb.edit",
    ("POST", "/console/kb/aliases/{id}/delete"): "kb.edit",
    ("GET", "/console/kb/unanswered"): "kb.read",
    ("POST", "/console/kb/unanswered/alias"): "kb.edit",
    ("GET", "/console/kb/import"): "kb.import",
    ("POST", "/console/kb/import"): "kb.import",
    ("POST", "/console/kb/import/apply"): "kb.import",
    # long work as background jobs (web/jobs.py): only the person who started a job sees it
    ("GET", "/console/jobs/{id}"): SELF,
    ("GET", "/console/jobs/{id}/status"): SELF,
    ("GET", "/console/jobs/{id}/download"): SELF,
    # 群发通知 (bot/gateway/web/broadcast_pages.py): each action as its API route needs (BROADCAST_ACTIONS)
    ("GET", "/console/broadcasts"): "broadcast.read",
    ("GET", "/console/broadcasts/new"): "broadcast.compose",
    ("POST", "/console/broadcasts"): "broadcast.compose",
    ("GET", "/console/broadcasts/review"): "broadcast.approve",
    ("GET", "/console/broadcasts/{id}"): "broadcast.read",
    ("GET", "/console/broadcasts/{id}/progress"): "broadcast.read",
    ("GET", "/console/broadcasts/{id}/edit"): "broadcast.compose",
    ("POST", "/console/broadcasts/{id}/edit"): "broadcast.compose",
    ("GET", "/console/broadcasts/{id}/export"): "broadcast.export",
    ("POST", "/console/broadcasts/{id}/export"): "broadcast.export",
    ("POST", "/console/broadcasts/{id}/recipients"): "broadcast.compose",
    ("POST", "/console/broadcasts/{id}/wechat-tag"): "broadcast.compose",
    ("POST", "/console/broadcasts/{id}/wechat-cases"): "broadcast.compose",
    **{("POST", f"/console/broadcasts/{{id}}/{a}"): p for a, p in BROADCAST_ACTIONS.items()},
    # the WeChat simulator (typing as a citizen; each message audited as chat.simulate)
    ("GET", "/console/simulator"): "chat.test",
    ("POST", "/console/simulator"): "chat.test",
    ("GET", "/console/simulator/pushes"): "chat.test",
    ("GET", "/console/simulator/sms"): "chat.test",
    ("POST", "/console/simulator/sms"): "chat.test",
    # accounts and their tokens (each change audited as the /api/staff/accounts views do)
    ("GET", "/console/accounts"): "accounts.manage",
    ("POST", "/console/accounts"): "accounts.manage",
    ("GET", "/console/accounts/{id}"): "accounts.manage",
    ("POST", "/console/accounts/{id}"): "accounts.manage",
    ("POST", "/console/accounts/{id}/password"): "accounts.manage",
    ("POST", "/console/accounts/{id}/logout-all"): "accounts.manage",
    ("POST", "/console/accounts/{id}/tokens"): "accounts.manage",
    ("POST", "/console/accounts/{id}/tokens/{token_id}/revoke"): "accounts.manage",
    # the audit log and the case-lookup audit
    ("GET", "/console/audit"): "audit.read",
    ("GET", "/console/audit/export"): "audit.read",
    ("POST", "/console/audit/export"): "audit.read",
    ("GET", "/console/lookups"): "progress.audit",
    # 投诉工单 (web/complaint_pages.py; department scoping and 派单/并单: the domain's access rules)
    ("GET", "/console/complaints"): "complaints.read",
    ("GET", "/console/complaints/export"): "complaints.export",
    ("POST", "/console/complaints/export"): "complaints.export",
    ("GET", "/console/complaints/{number}"): "complaints.read",
    ("POST", "/console/complaints/{number}/{action}"): "complaints.handle",
    ("GET", "/console/dashboard"): "reports.read",
    ("GET", "/console/dashboard/export"): "reports.read",
    ("GET", "/console/supervision"): "reports.read",
    ("GET", "/console/supervision/report"): "reports.read",
    ("POST", "/console/supervision/report"): "reports.read",
    ("POST", "/console/supervision/urge"): "complaints.supervise",
    # 督办单 (web/urge_pages.py): each department sees, signs for and answers its own
    ("GET", "/console/urges"): "complaints.read",
    ("POST", "/console/urges/{id}/sign"): "complaints.handle",
    ("POST", "/console/urges/{id}/answer"): "complaints.handle",
}


def permission_for(method: str, path: str, match_info: dict[str, str]) -> str | None:
    """The permission a request needs (``SELF`` for any signed-in person), or None when the route is not
    in the table (refused)."""
    permission = ROUTE_PERMISSIONS.get((method, path)) or CONSOLE_PERMISSIONS.get((method, path))
    if permission == "broadcast.action":  # an unknown action reaches the handler, which answers 404
        return BROADCAST_ACTIONS.get(match_info.get("action", ""), "broadcast.read")
    return permission
