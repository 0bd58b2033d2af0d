"""The console's sign-in, sign-out, password and home pages over HTTP."""

from __future__ import annotations

from bot.gateway.app import Services
from tests.support.staff import OTHER_PASSWORD, PASSWORD, bearer, person
from tests.support.web import csrf_of


async def test_pages_need_a_sign_in_and_come_back_after_it(console, services: Services) -> None:
    assert services.staff is not None
    await services.staff.accounts.create("boss", "主任", PASSWORD, ["admin"], "办公室", False)
    client = await console()
    resp = await client.get("/console/audit?x=1", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/console/login?next=")
    page = await (await client.get("/console/login?next=/console/")).text()
    assert 'lang="zh-CN"' in page and "工作人员登录" in page and 'for="username"' in page
    bad = await client.post("/console/login", data={"username": "boss", "password": "x", "next": "/console/"})
    assert bad.status == 401 and "用户名或密码不正确" in await bad.text()
    resp = await client.post(
        "/console/login",
        data={"username": "boss", "password": PASSWORD, "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert resp.status == 302 and resp.headers["Location"] == "/console/"  # never an open redirect
    assert "HttpOnly" in resp.headers["Set-Cookie"]
    home = await client.get("/console/?menu=1")
    assert home.status == 200 and "主任(boss)" in await home.text()


async def test_static_assets_are_served_from_the_repository(console) -> None:
    client = await console()
    for path in (
        "vendor/htmx-2.0.11/htmx.min.js",
        "vendor/echarts-5.6.0/echarts.common.min.js",
        "console.css",
    ):
        resp = await client.get(f"/console/static/{path}")
        assert resp.status == 200, path
    assert (await client.get("/console/static/../../app.py")).status in (403, 404)


async def test_logout_needs_the_forms_csrf_token(sign_in) -> None:
    client = await sign_in("boss", ["admin"])
    page = await (await client.get("/console/?menu=1")).text()
    token = csrf_of(page)
    refused = await client.post("/console/logout", data={}, allow_redirects=False)
    assert refused.status == 403 and "防伪令牌" in await refused.text()
    resp = await client.post("/console/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/console/login"
    assert (await client.get("/console/?menu=1", allow_redirects=False)).status == 302


async def test_a_first_password_must_change_in_the_console(console, services: Services) -> None:
    assert services.staff is not None
    await services.staff.accounts.create("newbie", "新人", PASSWORD, ["viewer"], "办公室")
    client = await console()
    resp = await client.post(
        "/console/login", data={"username": "newbie", "password": PASSWORD}, allow_redirects=False
    )
    assert resp.headers["Location"] == "/console/password"
    resp = await client.get("/console/?menu=1", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/console/password"
    page = await (await client.get("/console/password")).text()
    assert "须先修改密码" in page
    weak = await client.post(
        "/console/password", data={"csrf_token": csrf_of(page), "old": PASSWORD, "new": "short"}
    )
    assert weak.status == 400 and "至少 12" in await weak.text()
    resp = await client.post(
        "/console/password",
        data={"csrf_token": csrf_of(page), "old": PASSWORD, "new": OTHER_PASSWORD},
        allow_redirects=False,
    )
    assert resp.status == 302 and resp.headers["Location"] == "/console/login"


async def test_navigation_shows_only_what_the_role_may_open(sign_in) -> None:
    client = await sign_in("viewer1", ["viewer"])
    page = await (await client.get("/console/?menu=1")).text()
    assert "账号与权限" not in page and "审计日志" not in page
    resp = await client.get("/console/audit")
    assert resp.status in (403, 404)


async def test_a_console_form_that_cannot_be_parsed_is_a_400(sign_in) -> None:
    """A form body aiohttp cannot read (multipart without a boundary), sent with the session's CSRF header:
    every console handler reads the form, so the request is refused at once with a 400 page, not a 500."""
    admin = await sign_in("boss", ["admin"])
    token = csrf_of(await (await admin.get("/console/accounts")).text())
    for path in ("/console/password", "/console/accounts", "/console/logout"):
        resp = await admin.post(
            path, data=b"x", headers={"Content-Type": "multipart/form-data", "X-CSRF-Token": token}
        )
        assert resp.status == 400, (path, await resp.text())
        assert "无法解析" in await resp.text()


async def test_a_console_form_that_cannot_be_parsed_is_a_400_with_a_token_too(
    console, services: Services
) -> None:
    """The same body sent with a personal API token (no session, so no CSRF check reads the form)."""
    assert services.staff is not None
    headers = {
        **bearer(await person(services.staff, "boss", ["admin"])),
        "Content-Type": "multipart/form-data",
    }
    client = await console()
    for path in ("/console/accounts", "/console/kb/items/36072200-XK-001", "/console/broadcasts"):
        resp = await client.post(path, data=b"x", headers=headers, allow_redirects=False)
        assert resp.status == 400, (path, resp.status, await resp.text())
        assert "无法解析" in await resp.text()
