"""Browser sessions over HTTP: sign-in and its cookie, session fixation, CSRF, sign-out and sign-out
everywhere, disabled accounts, the first-password change, lockout answers and audit rows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bot.core.db import create_engine, session_factory
from bot.domains.staff import Staff
from bot.domains.staff.audit import AuditFilter
from bot.domains.staff.config import StaffSettings
from tests.support.staff import OTHER_PASSWORD, PASSWORD, bearer, staff_app

BASE = "http://127.0.0.1:8080"


@pytest.fixture
async def staff(sqlite_url: str, redis_client: aioredis.Redis) -> AsyncIterator[Staff]:
    engine = create_engine(sqlite_url)
    yield Staff.build(session_factory(engine), redis_client, StaffSettings(lockout_failures=3))
    await engine.dispose()


@pytest.fixture
async def make_client(aiohttp_client, staff: Staff):
    async def make(public_base_url: str = BASE) -> TestClient:
        return await aiohttp_client(staff_app(staff, public_base_url))

    return make


async def _login(client: TestClient, username: str = "boss", password: str = PASSWORD) -> ClientResponse:
    return await client.post("/api/staff/login", json={"username": username, "password": password})


async def _admin(staff: Staff, must_change: bool = False) -> int:
    account = await staff.accounts.create("boss", "主任", PASSWORD, ["admin"], "办公室", must_change)
    return account.id


async def test_sign_in_sets_a_safe_cookie_and_audits(make_client, staff: Staff) -> None:
    await _admin(staff)
    client = await make_client()
    assert (await _login(client, password="wrong")).status == 401
    resp = await _login(client)
    assert resp.status == 200
    body = await resp.json()
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("govbot_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in this test: a Secure cookie would never come back
    assert body["me"]["username"] == "boss" and len(body["csrf_token"]) >= 43
    me = await (await client.get("/api/staff/me")).json()
    assert me["username"] == "boss" and "accounts.manage" in me["permissions"] and me["via"] == "session"
    rows = await staff.audit.query(AuditFilter(action="login"))
    assert [(r.username, r.outcome) for r in rows] == [("boss", "ok"), ("boss", "failed")]


async def test_over_https_the_cookie_is_secure_and_host_prefixed(make_client, staff: Staff) -> None:
    await _admin(staff)
    client = await make_client("https://bot.example.gov.cn")
    cookie = (await _login(client)).headers["Set-Cookie"]
    assert cookie.startswith("__Host-govbot_session=") and "Secure" in cookie and "Path=/" in cookie


async def test_a_planted_session_id_is_worthless(make_client, staff: Staff) -> None:
    await _admin(staff)
    client = await make_client()
    client.session.cookie_jar.update_cookies({"govbot_session": "chosen-by-an-attacker"})
    assert (await client.get("/api/staff/me")).status == 401
    resp = await _login(client)
    new = resp.cookies["govbot_session"].value
    assert new != "chosen-by-an-attacker" and len(new) >= 43
    first = new
    resp = await _login(client)  # signing in again: yet another id, the old one ends
    assert resp.cookies["govbot_session"].value != first
    assert await staff.sessions.load(first) is None


async def test_csrf_is_required_for_changes_made_with_a_session(make_client, staff: Staff) -> None:
    await _admin(staff)
    client = await make_client()
    csrf = (await (await _login(client)).json())["csrf_token"]
    body = {"name": "cli", "scopes": ["audit.read"]}
    assert (await client.post("/api/staff/tokens", json=body)).status == 403  # no token
    wrong = await client.post("/api/staff/tokens", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status == 403 and (await wrong.json())["error"] == "csrf"
    cross = await client.post(
        "/api/staff/tokens", json=body, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    )
    assert cross.status == 403  # another site, even with the token
    ok = await client.post("/api/staff/tokens", json=body, headers={"X-CSRF-Token": csrf, "Origin": BASE})
    assert ok.status == 201
    token = (await ok.json())["token"]
    assert (await client.get("/api/staff/me")).status == 200  # reading needs no CSRF token
    fresh = await make_client()  # an API token carries no ambient authority: no CSRF token needed
    resp = await fresh.post("/api/staff/tokens", json=body, headers=bearer(token))
    assert resp.status == 201
    rows = await staff.audit.query(AuditFilter(action="csrf.rejected"))
    assert len(rows) == 3 and all(r.username == "boss" for r in rows)


async def test_sign_out_and_sign_out_everywhere(make_client, staff: Staff) -> None:
    await _admin(staff)
    laptop, phone, third = await make_client(), await make_client(), await make_client()
    csrf = (await (await _login(laptop)).json())["csrf_token"]
    phone_csrf = (await (await _login(phone)).json())["csrf_token"]
    await _login(third)
    assert (await laptop.post("/api/staff/logout", headers={"X-CSRF-Token": csrf})).status == 200
    assert (await laptop.get("/api/staff/me")).status == 401
    assert (await phone.get("/api/staff/me")).status == 200
    resp = await phone.post("/api/staff/logout-all", headers={"X-CSRF-Token": phone_csrf})
    assert resp.status == 200
    assert (await phone.get("/api/staff/me")).status == 401
    assert (await third.get("/api/staff/me")).status == 401  # every other session ended too


async def test_a_disabled_account_stops_at_once(make_client, staff: Staff) -> None:
    await _admin(staff)
    clerk = await staff.accounts.create("clerk", "科员", PASSWORD, ["viewer"], "办公室", False)
    token, _ = await staff.tokens.create(clerk, "cli", ["kb.read"], 30, clerk.id)
    admin, browser = await make_client(), await make_client()
    csrf = (await (await _login(admin)).json())["csrf_token"]
    await _login(browser, "clerk")
    assert (await browser.get("/api/staff/me")).status == 200
    assert (await browser.get("/api/staff/me", headers=bearer(token))).status == 200
    resp = await admin.post(
        f"/api/staff/accounts/{clerk.id}", json={"active": False}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 200 and (await resp.json())["active"] is False
    assert (await browser.get("/api/staff/me")).status == 401
    fresh = await make_client()
    assert (await fresh.get("/api/staff/me", headers=bearer(token))).status == 401
    assert (await _login(fresh, "clerk")).status == 401
    rows = await staff.audit.query(AuditFilter(action="account.update"))
    assert rows[0].username == "boss" and '"active": false' in rows[0].summary


async def test_the_first_password_must_change_before_anything_else(make_client, staff: Staff) -> None:
    await _admin(staff, must_change=True)
    client = await make_client()
    body = await (await _login(client)).json()
    assert body["must_change_password"] is True
    resp = await client.get("/api/staff/accounts")
    assert resp.status == 403 and (await resp.json())["error"] == "password_change_required"
    assert (await client.get("/api/staff/me")).status == 200
    headers = {"X-CSRF-Token": body["csrf_token"]}
    weak = await client.post(
        "/api/staff/password", json={"old": PASSWORD, "new": "12345678"}, headers=headers
    )
    assert weak.status == 400 and "至少 12" in (await weak.json())["message"]
    resp = await client.post(
        "/api/staff/password", json={"old": PASSWORD, "new": OTHER_PASSWORD}, headers=headers
    )
    assert resp.status == 200
    assert (await client.get("/api/staff/me")).status == 401  # a new password: sign in again
    assert (await _login(client, password=OTHER_PASSWORD)).status == 200
    assert (await client.get("/api/staff/accounts")).status == 200


async def test_lockout_answers_429_with_retry_after(make_client, staff: Staff) -> None:
    await _admin(staff)
    client = await make_client()
    for _ in range(3):
        assert (await _login(client, password="wrong")).status == 401
    locked = await _login(client)
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0
    assert "锁定" in (await locked.json())["message"]


async def test_administrators_manage_accounts_and_tokens(make_client, staff: Staff) -> None:
    await _admin(staff)
    client = await make_client()
    headers = {"X-CSRF-Token": (await (await _login(client)).json())["csrf_token"]}
    new = {"username": "Li.Si", "display_name": "李四", "password": "Harbor-lattice-9-gently",
           "roles": ["complaint_handler"], "department": "县人社局"}  # fmt: skip
    created = await client.post("/api/staff/accounts", json=new, headers=headers)
    assert created.status == 201 and (await created.json())["username"] == "li.si"
    again = await client.post("/api/staff/accounts", json={**new, "username": "LI.SI"}, headers=headers)
    assert again.status == 409
    bad = await client.post(
        "/api/staff/accounts", json={**new, "username": "x2", "roles": ["root"]}, headers=headers
    )
    assert bad.status == 400 and "未知角色" in (await bad.json())["message"]
    account_id = (await created.json())["id"]
    scoped = {"name": "对接", "scopes": ["accounts.manage"]}
    resp = await client.post(f"/api/staff/accounts/{account_id}/tokens", json=scoped, headers=headers)
    assert resp.status == 403  # beyond what the owner may do
    resp = await client.post(
        f"/api/staff/accounts/{account_id}/tokens", json={"name": "对接", "scopes": ["complaints.read"]},
        headers=headers,
    )  # fmt: skip
    assert resp.status == 201
    listed = await (await client.get(f"/api/staff/accounts/{account_id}/tokens")).json()
    assert [t["name"] for t in listed["tokens"]] == ["对接"] and "token" not in listed["tokens"][0]
    export = await client.get("/api/audit/export?format=csv")
    assert export.status == 200 and "account.create" in (await export.text())


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded; charset=nope",
    ],
)
async def test_a_body_that_cannot_be_parsed_is_a_400(make_client, staff: Staff, content_type: str) -> None:
    """A form body aiohttp cannot read (multipart without a boundary, say) is the caller's mistake: 400 in
    the API's error shape, never a 500 (found by the schemathesis fuzzing)."""
    admin = await staff.accounts.get(await _admin(staff))
    assert admin is not None
    token, _ = await staff.tokens.create(admin, "t", ["accounts.manage"], 5, admin.id)
    client = await make_client()
    for path, headers in (("/api/staff/login", {}), ("/api/staff/tokens", bearer(token))):
        headers = {**headers, "Content-Type": content_type}
        resp = await client.post(path, data=b"--x\r\nbroken", headers=headers)
        assert resp.status == 400, (path, await resp.text())
        assert (await resp.json())["error"] == "invalid"


async def test_an_unreadable_form_with_a_session_is_refused_not_a_500(make_client, staff: Staff) -> None:
    """The CSRF check reads a form body for its csrf_token field; a body aiohttp cannot parse has none."""
    await _admin(staff)
    client = await make_client()
    csrf = (await (await _login(client)).json())["csrf_token"]
    broken = {"Content-Type": "multipart/form-data"}  # no boundary
    resp = await client.post("/api/staff/tokens", data=b"x", headers=broken)
    assert resp.status == 403 and (await resp.json())["error"] == "csrf"
    resp = await client.post("/api/staff/tokens", data=b"x", headers={**broken, "X-CSRF-Token": csrf})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid"  # the handler's answer


async def test_numbers_out_of_an_integer_columns_range_are_a_400(make_client, staff: Staff) -> None:
    """An account or token id, or an audit offset, past 32 bits: 400, not the database's OverflowError (a
    500, found by the schemathesis fuzzing)."""
    admin = await staff.accounts.get(await _admin(staff))
    assert admin is not None
    token, _ = await staff.tokens.create(admin, "t", ["accounts.manage", "audit.read"], 5, admin.id)
    client = await make_client()
    huge = str(2**80)
    for method, path in (
        ("GET", f"/api/staff/accounts/{huge}/tokens"),
        ("POST", f"/api/staff/accounts/{huge}/logout-all"),
        ("POST", f"/api/staff/tokens/{huge}/revoke"),
        ("GET", f"/api/audit?offset={huge}"),
        ("GET", f"/api/audit?account=-{huge}"),
        ("GET", f"/api/audit/export?format=csv&limit={huge}"),
    ):
        resp = await client.request(method, path, json={}, headers=bearer(token))
        assert resp.status == 400, (method, path, await resp.text())
        assert "超出范围" in (await resp.json())["message"]
    assert (await client.get(f"/api/staff/accounts/{2**31 - 1}/tokens", headers=bearer(token))).status == 404
