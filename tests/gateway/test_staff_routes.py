"""Every staff route of the real gateway, one row each: no credentials → 401, a person without the route's
permission → 403, the right role → 2xx (and, for a change, an audit row naming that person); the table
covers the router exactly; complaint handlers are scoped to their department."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.core.config import Settings
from bot.core.env import Secret
from bot.domains.complaints.intake import NewComplaint
from bot.domains.staff import Staff
from bot.domains.staff.audit import AuditFilter
from bot.gateway.app import Services, build_app, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.staff.routes import PUBLIC, ROUTE_PERMISSIONS, SELF
from sms_gateway.config import SmsSettings
from sms_gateway.twilio import fake as fake_twilio
from tests.support.broadcast import recipients_csv
from tests.support.services import with_action_server
from tests.support.staff import bearer, person

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
FROM = "+15005550006"
DEPARTMENT = "县市场监督管理局"

# role → who holds it in these tests (one person per role; "integration" holds no staff permission)
ROLE_OF = {
    "accounts.manage": "admin",
    "audit.read": "admin",
    "chat.test": "admin",
    "kb.read": "kb_editor",
    "complaints.read": "complaint_handler",
    "complaints.handle": "complaint_handler",
    "complaints.supervise": "complaint_supervisor",
    "broadcast.read": "broadcast_operator",
    "broadcast.compose": "broadcast_operator",
    "broadcast.export": "broadcast_operator",
    SELF: "viewer",
}


@dataclass
class Gateway:
    client: TestClient
    services: Services
    tokens: dict[str, dict[str, str]]
    complaint: str  # a complaint in DEPARTMENT's hands
    campaign: str  # a draft campaign of the broadcast operator

    @property
    def staff(self) -> Staff:
        assert self.services.staff is not None
        return self.services.staff


@pytest.fixture
async def gateway(aiohttp_client, aiohttp_server, redis_client, sqlite_url) -> AsyncIterator[Gateway]:
    fake = await aiohttp_server(fake_twilio.build_app(ACCOUNT_SID, AUTH_TOKEN, from_numbers=(FROM,)))
    sms = dataclasses.replace(
        SmsSettings(),
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=Secret(AUTH_TOKEN),
        twilio_from_number=FROM,
        twilio_api_base=str(fake.make_url("")).rstrip("/"),
    )
    settings = dataclasses.replace(Settings(), database_url=sqlite_url, wechat_message_mode="plain")
    settings = await with_action_server(aiohttp_server, settings)  # the knowledge-base search is its
    services = await build_services(
        settings, redis=redis_client, dialogue=ScriptedDialogue(), sms_settings=sms
    )
    assert services.staff is not None and services.complaints is not None and services.broadcasts is not None
    tokens = {}
    for role in ("admin", "kb_editor", "complaint_handler", "complaint_supervisor", "broadcast_operator",
                 "approver", "viewer", "integration"):  # fmt: skip
        tokens[role] = bearer(await person(services.staff, role.replace("_", "-"), [role], DEPARTMENT))
    created = await services.complaints.create(
        NewComplaint(channel="window", sender_id="staff:t", description="窗口工作人员态度生硬"),
        idempotency_key="route-table",
    )
    number = created.complaint.number
    await services.complaints.accept(number, "督办员")
    await services.complaints.dispatch(number, "督办员", DEPARTMENT)
    campaign = await services.broadcasts.create(name="测试", template="您好：测试通知。", created_by="x")
    client = await aiohttp_client(build_app(services))
    yield Gateway(client, services, tokens, number, campaign["id"])


Prepare = Callable[[Gateway], Awaitable[tuple[str, dict[str, Any] | None]]]  # → (path, json body)


def fixed(path: str, body: dict[str, Any] | None = None) -> Prepare:
    async def prepare(g: Gateway) -> tuple[str, dict[str, Any] | None]:
        return path.format(number=g.complaint, campaign=g.campaign), body

    return prepare


async def other_account(g: Gateway) -> str:
    account = await g.staff.accounts.by_username("viewer")
    assert account is not None
    return str(account.id)


def on_account(path: str, body: dict[str, Any] | None = None) -> Prepare:
    async def prepare(g: Gateway) -> tuple[str, dict[str, Any] | None]:
        return path.format(id=await other_account(g)), body

    return prepare


async def own_token(g: Gateway) -> tuple[str, dict[str, Any] | None]:
    account = await g.staff.accounts.by_username("viewer")
    assert account is not None
    _, row = await g.staff.tokens.create(account, "to revoke", ["kb.read"], 5, account.id)
    return f"/api/staff/tokens/{row.id}/revoke", {}


NEW_PASSWORD = {"old": "Lantern-oxbow-7-quietly", "new": "Copper-meadow-4-swiftly"}

# (method, route as registered, request maker, the permission's holder, expected status)
ROWS: list[tuple[str, str, Prepare, str, int]] = [
    ("GET", "/api/staff/me", fixed("/api/staff/me"), SELF, 200),
    ("POST", "/api/staff/logout", fixed("/api/staff/logout", {}), SELF, 200),
    ("POST", "/api/staff/logout-all", fixed("/api/staff/logout-all", {}), SELF, 200),
    ("POST", "/api/staff/password", fixed("/api/staff/password", NEW_PASSWORD), SELF, 200),
    ("POST", "/api/staff/totp", fixed("/api/staff/totp", {}), SELF, 200),
    ("POST", "/api/staff/totp/confirm", fixed("/api/staff/totp/confirm", {"code": "000000"}), SELF, 400),
    ("GET", "/api/staff/tokens", fixed("/api/staff/tokens"), SELF, 200),
    ("POST", "/api/staff/tokens", fixed("/api/staff/tokens", {"name": "cli", "scopes": ["kb.read"]}), SELF,
     201),
    ("POST", "/api/staff/tokens/{id}/revoke", own_token, SELF, 200),
    ("GET", "/api/staff/accounts", fixed("/api/staff/accounts"), "accounts.manage", 200),
    ("POST", "/api/staff/accounts", fixed("/api/staff/accounts", {
        "username": "new.clerk", "display_name": "新同事", "password": "Harbor-lattice-9-gently",
        "roles": ["viewer"], "department": DEPARTMENT}), "accounts.manage", 201),
    ("POST", "/api/staff/accounts/{id}", on_account("/api/staff/accounts/{id}", {"department": "县医保局"}),
     "accounts.manage", 200),
    ("POST", "/api/staff/accounts/{id}/password",
     on_account("/api/staff/accounts/{id}/password", {"password": "Harbor-lattice-9-gently"}),
     "accounts.manage", 200),
    ("POST", "/api/staff/accounts/{id}/logout-all", on_account("/api/staff/accounts/{id}/logout-all", {}),
     "accounts.manage", 200),
    ("GET", "/api/staff/accounts/{id}/tokens", on_account("/api/staff/accounts/{id}/tokens"),
     "accounts.manage", 200),
    ("POST", "/api/staff/accounts/{id}/tokens",
     on_account("/api/staff/accounts/{id}/tokens", {"name": "for them", "scopes": ["kb.read"]}),
     "accounts.manage", 201),
    ("GET", "/api/staff/roles", fixed("/api/staff/roles"), "accounts.manage", 200),
    ("GET", "/api/openapi.json", fixed("/api/openapi.json"), SELF, 200),
    ("GET", "/api/audit", fixed("/api/audit"), "audit.read", 200),
    ("GET", "/api/audit/export", fixed("/api/audit/export?format=xlsx"), "audit.read", 200),
    ("POST", "/api/chat", fixed("/api/chat", {"sender": "t", "text": "你好"}), "chat.test", 200),
    ("GET", "/api/kb/search", fixed("/api/kb/search?q=营业执照"), "kb.read", 200),
    ("GET", "/api/complaints", fixed("/api/complaints"), "complaints.read", 200),
    ("POST", "/api/complaints", fixed("/api/complaints", {"description": "群众来电反映窗口推诿"}),
     "complaints.handle", 201),
    ("GET", "/api/complaints/meta", fixed("/api/complaints/meta"), "complaints.read", 200),
    ("POST", "/api/complaints/sweep", fixed("/api/complaints/sweep", {}), "complaints.supervise", 200),
    ("GET", "/api/complaints/{number}", fixed("/api/complaints/{number}"), "complaints.read", 200),
    ("POST", "/api/complaints/{number}/{action}", fixed("/api/complaints/{number}/start", {}),
     "complaints.handle", 200),
    ("GET", "/api/broadcasts", fixed("/api/broadcasts"), "broadcast.read", 200),
    ("POST", "/api/broadcasts", fixed("/api/broadcasts", {"name": "n", "template": "您好：通知。"}),
     "broadcast.compose", 201),
    ("GET", "/api/broadcasts/groups", fixed("/api/broadcasts/groups"), "broadcast.read", 200),
    ("POST", "/api/broadcasts/groups", fixed("/api/broadcasts/groups"), "broadcast.compose", 201),
    ("GET", "/api/broadcasts/{id}", fixed("/api/broadcasts/{campaign}"), "broadcast.read", 200),
    ("PATCH", "/api/broadcasts/{id}", fixed("/api/broadcasts/{campaign}", {"name": "改", "template": "内容"}),
     "broadcast.compose", 200),
    ("POST", "/api/broadcasts/{id}/recipients", fixed("/api/broadcasts/{campaign}/recipients"),
     "broadcast.compose", 200),
    # an SMS campaign: the permission lets the request through, the campaign itself refuses a WeChat tag
    ("POST", "/api/broadcasts/{id}/wechat-tag", fixed("/api/broadcasts/{campaign}/wechat-tag", {"tag_id": 1}),
     "broadcast.compose", 400),
    ("POST", "/api/broadcasts/{id}/wechat-cases", fixed("/api/broadcasts/{campaign}/wechat-cases", {}),
     "broadcast.compose", 400),
    ("GET", "/api/broadcasts/{id}/preview", fixed("/api/broadcasts/{campaign}/preview"), "broadcast.read",
     200),
    ("GET", "/api/broadcasts/{id}/progress", fixed("/api/broadcasts/{campaign}/progress"), "broadcast.read",
     200),
    ("GET", "/api/broadcasts/{id}/export", fixed("/api/broadcasts/{campaign}/export"), "broadcast.export",
     200),
    ("POST", "/api/broadcasts/{id}/{action}", fixed("/api/broadcasts/{campaign}/cancel", {"reason": "测试"}),
     "broadcast.operate", 200),
]  # fmt: skip
HOLDER = {**ROLE_OF, "broadcast.operate": "broadcast_operator"}
MULTIPART = {"/api/broadcasts/groups", "/api/broadcasts/{id}/recipients"}


def test_the_table_covers_every_staff_route_of_the_gateway(gateway: Gateway) -> None:
    routes = {
        (r.method, r.resource.canonical)
        for r in gateway.client.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/") and r.method != "HEAD"
    }
    rows = {(method, path) for method, path, *_ in ROWS}
    assert routes - PUBLIC == rows
    assert set(ROUTE_PERMISSIONS) == rows  # and the permission table knows exactly these


async def _call(g: Gateway, method: str, route: str, prepare: Prepare, headers: dict[str, str]) -> Any:
    path, body = await prepare(g)
    if route in MULTIPART:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("name", "重点企业")
        form.add_field("file", recipients_csv(2), filename="名单.csv", content_type="text/csv")
        return await g.client.request(method, path, data=form, headers=headers)
    return await g.client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(
    ("method", "route", "prepare", "holder", "status"), ROWS, ids=[f"{m} {p}" for m, p, *_ in ROWS]
)
async def test_route(
    gateway: Gateway, method: str, route: str, prepare: Prepare, holder: str, status: int
) -> None:
    g = gateway
    assert (await _call(g, method, route, prepare, {})).status == 401
    assert (await _call(g, method, route, prepare, {"Authorization": "Bearer gvb_forged"})).status == 401
    if holder != SELF:
        wrong = await _call(g, method, route, prepare, g.tokens["integration"])
        assert wrong.status == 403, await wrong.text()
        assert "您没有权限" in (await wrong.json())["message"]
    role = HOLDER.get(holder, holder)
    before = len(await g.staff.audit.query(AuditFilter(limit=10_000)))
    right = await _call(g, method, route, prepare, g.tokens[role])
    assert right.status == status, await right.text()
    if method == "POST" and route not in ("/api/staff/logout",) and status < 300:
        rows = await g.staff.audit.query(AuditFilter(limit=10_000))
        assert len(rows) > before, "a change leaves an audit row"
        assert rows[0].username == role.replace("_", "-") and rows[0].outcome == "ok", (rows[0].action, route)


async def test_complaint_handlers_see_only_their_department(gateway: Gateway) -> None:
    g = gateway
    other = bearer(await person(g.staff, "other-dept", ["complaint_handler"], "县医保局"))
    resp = await g.client.get(f"/api/complaints/{g.complaint}", headers=other)
    assert resp.status == 404
    listed = await (await g.client.get("/api/complaints", headers=other)).json()
    assert listed["items"] == []
    resp = await g.client.post(f"/api/complaints/{g.complaint}/start", json={}, headers=other)
    assert resp.status == 404
    mine = await (await g.client.get("/api/complaints", headers=g.tokens["complaint_handler"])).json()
    assert [c["number"] for c in mine["items"]] == [g.complaint]
    resp = await g.client.post(
        f"/api/complaints/{g.complaint}/dispatch",
        json={"department": "县医保局"},
        headers=g.tokens["complaint_handler"],
    )
    assert resp.status == 403  # moving it between departments is for supervisors
    resp = await g.client.post(
        f"/api/complaints/{g.complaint}/return",
        json={"reason": "非本部门职责"},
        headers=g.tokens["complaint_handler"],
    )
    assert resp.status == 200  # the department hands it back ...
    resp = await g.client.post(
        f"/api/complaints/{g.complaint}/dispatch", json={"department": "县医保局"},
        headers=g.tokens["complaint_supervisor"],
    )  # fmt: skip
    assert resp.status == 200  # ... and the supervisor sends it on
    assert (await g.client.get(f"/api/complaints/{g.complaint}", headers=other)).status == 200


async def test_an_upload_over_a_mebibyte_is_accepted(gateway: Gateway) -> None:
    """Recipient lists reach BROADCAST_MAX_UPLOAD_MB (20 MB), not aiohttp's default 1 MiB."""
    import aiohttp

    rows = "".join(f"市民{i},1{30 + i % 60:02d}{i:08d}\n" for i in range(45_000))
    data = ("姓名,手机号\n" + rows).encode()
    assert len(data) > 1024 * 1024
    form = aiohttp.FormData()
    form.add_field("file", data, filename="名单.csv", content_type="text/csv")
    resp = await gateway.client.post(
        f"/api/broadcasts/{gateway.campaign}/recipients",
        data=form,
        headers=gateway.tokens["broadcast_operator"],
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["total"] == 45_000
