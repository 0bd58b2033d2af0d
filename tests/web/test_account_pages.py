"""账号与权限 over HTTP: people and their tokens, changed through the staff domain and audited as the
JSON API does; only for accounts.manage; every form refuses a missing CSRF token."""

from __future__ import annotations

import re

from bot.domains.staff.audit import AuditFilter
from bot.gateway.app import Services
from tests.support.staff import OTHER_PASSWORD, PASSWORD
from tests.support.web import csrf_of


async def _actions(services: Services) -> list[str]:
    assert services.staff is not None
    return [e.action for e in reversed(await services.staff.audit.query(AuditFilter(limit=1000)))]


async def test_accounts_need_accounts_manage(console, sign_in) -> None:
    anonymous = await console()
    resp = await anonymous.get("/console/accounts", allow_redirects=False)
    assert resp.status == 302 and "/console/login" in resp.headers["Location"]
    viewer = await sign_in("watcher", ["viewer"])
    assert (await viewer.get("/console/accounts")).status == 403
    assert (await viewer.get("/console/accounts/1")).status == 403
    assert (await viewer.post("/console/accounts", data={"username": "x"})).status == 403
    admin = await sign_in("boss", ["admin"])
    page = await (await admin.get("/console/accounts")).text()
    assert "账号与权限" in page and "watcher" in page and 'for="username"' in page and "只读" in page
    assert '<datalist id="departments">' in page and '<option value="行政服务中心办公室">' in page


async def test_create_change_reset_disable(sign_in, services: Services) -> None:
    admin = await sign_in("boss", ["admin"])
    token = csrf_of(await (await admin.get("/console/accounts")).text())
    form = {"username": "clerk", "display_name": "窗口员", "department": "社保窗口", "roles": "viewer",
            "password": PASSWORD}  # fmt: skip
    assert (await admin.post("/console/accounts", data=form)).status == 403  # no CSRF token
    bad = await admin.post("/console/accounts", data={**form, "csrf_token": token, "password": "short"})
    text = await bad.text()
    assert bad.status == 400 and 'id="password-error"' in text and 'value="clerk"' in text
    resp = await admin.post("/console/accounts", data={**form, "csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    detail = resp.headers["Location"]
    page = await (await admin.get(detail)).text()
    assert "窗口员（clerk）" in page and "账号已创建" in page
    assert services.staff is not None
    clerk = await services.staff.accounts.by_username("clerk")
    assert clerk is not None and clerk.must_change_password and clerk.department == "社保窗口"
    base = detail.split("?")[0]
    change = {"display_name": "窗口员甲", "department": "医保窗口", "roles": ["viewer", "complaint_handler"],
              "active": "1"}  # fmt: skip
    assert (await admin.post(base, data=change)).status == 403
    resp = await admin.post(base, data={**change, "csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    clerk = await services.staff.accounts.by_username("clerk")
    assert clerk is not None and clerk.department == "医保窗口" and "complaint_handler" in clerk.roles
    none = await admin.post(base, data={**change, "roles": [], "csrf_token": token})
    assert none.status == 400 and 'id="roles-error"' in await none.text()
    assert (await admin.post(base + "/password", data={"password": OTHER_PASSWORD})).status == 403
    resp = await admin.post(base + "/password", data={"password": OTHER_PASSWORD, "csrf_token": token})
    assert resp.status == 200 and "已重置密码" in await resp.text()
    resp = await admin.post(base + "/logout-all", data={"csrf_token": token})
    assert resp.status == 200 and "所有设备上退出" in await resp.text()
    resp = await admin.post(base, data={**change, "active": "", "csrf_token": token})
    clerk = await services.staff.accounts.by_username("clerk")
    assert (
        clerk is not None
        and not clerk.active
        and "已停用" in await (await admin.get("/console/accounts")).text()
    )
    boss = await services.staff.accounts.by_username("boss")
    assert boss is not None
    me = await admin.post(f"/console/accounts/{boss.id}", data={**change, "roles": "admin", "active": "",
                                                                 "csrf_token": token})  # fmt: skip
    assert me.status == 400 and "不能停用自己的账号" in await me.text()
    assert (await admin.get("/console/accounts/99999")).status == 404
    actions = await _actions(services)
    assert ["account.create", "account.update", "password.reset", "logout.all", "account.update"] == [
        a for a in actions if a in ("account.create", "account.update", "password.reset", "logout.all")
    ]


async def test_tokens_shown_once_and_revoked(sign_in, services: Services) -> None:
    admin = await sign_in("boss", ["admin"])
    await sign_in("clerk", ["viewer"])
    assert services.staff is not None
    clerk = await services.staff.accounts.by_username("clerk")
    assert clerk is not None
    base = f"/console/accounts/{clerk.id}"
    page = await (await admin.get(base)).text()
    token = csrf_of(page)
    assert "progress.audit" in page and "accounts.manage" not in page  # only the owner's permissions
    form = {"name": "对接", "scopes": ["kb.read"], "days": "30"}
    assert (await admin.post(base + "/tokens", data=form)).status == 403
    too_much = await admin.post(
        base + "/tokens", data={**form, "scopes": ["accounts.manage"], "csrf_token": token}
    )
    assert too_much.status == 403 and 'id="scopes-error"' in await too_much.text()
    resp = await admin.post(base + "/tokens", data={**form, "csrf_token": token})
    page = await resp.text()
    assert resp.status == 201 and "只显示这一次" in page and resp.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="token-value" readonly value="(gvb_[^"]+)"', page)
    assert secret is not None
    assert secret.group(1) not in await (await admin.get(base)).text()  # never again
    actor = await services.staff.tokens.authenticate(secret.group(1), "127.0.0.1")
    assert actor is not None and actor.username == "clerk"
    row = (await services.staff.tokens.of(clerk.id))[0]
    revoke = f"{base}/tokens/{row.id}/revoke"
    assert (await admin.post(revoke, data={})).status == 403
    resp = await admin.post(revoke, data={"csrf_token": token})
    assert resp.status == 200 and "令牌已吊销" in await resp.text()
    assert await services.staff.tokens.authenticate(secret.group(1), "127.0.0.1") is None
    boss = await services.staff.accounts.by_username("boss")
    assert boss is not None
    elsewhere = await admin.post(
        f"/console/accounts/{boss.id}/tokens/{row.id}/revoke", data={"csrf_token": token}
    )
    assert elsewhere.status == 404  # a token of someone else than the page's person
    actions = await _actions(services)
    assert "token.create" in actions and "token.revoke" in actions
