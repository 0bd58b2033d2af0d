"""微信模拟器 over HTTP: a message typed as a citizen goes signed (and, in safe mode, encrypted) through
this gateway's own /wechat, and the reply — passive, or pushed later through the WeChat API fake — shows."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from aiohttp.test_utils import TestClient, TestServer, unused_port

from bot.adapters.wechat import fake_api
from bot.core.config import Settings
from bot.core.env import Secret
from bot.domains.staff.audit import AuditFilter
from bot.gateway.app import Services, build_app, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from sms_gateway.config import SmsSettings
from tests.support.sms import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, SIGNATURE
from tests.support.staff import PASSWORD
from tests.support.web import csrf_of
from tests.support.wechat import APP_ID, APP_SECRET, settings_for

OPENID = "oSimulator0000000000000000001"


async def test_the_simulator_needs_chat_test(console, sign_in) -> None:
    anonymous = await console()
    resp = await anonymous.get("/console/simulator", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/console/login")
    viewer = await sign_in("watcher", ["viewer"])
    assert (await viewer.get("/console/simulator")).status == 403
    refused = await viewer.post("/console/simulator", data={"openid": OPENID, "text": "你好"})
    assert refused.status == 403
    editor = await sign_in("editor", ["kb_editor"])
    resp = await editor.get("/console/simulator")
    page = await resp.text()
    assert resp.status == 200 and "微信模拟器" in page and 'for="text"' in page and 'for="openid"' in page


async def test_a_message_through_wechat_and_its_reply(sign_in, services: Services) -> None:
    client = await sign_in("editor", ["kb_editor"])
    page = await (await client.get(f"/console/simulator?openid={OPENID}")).text()
    token = csrf_of(page)
    refused = await client.post("/console/simulator", data={"openid": OPENID, "text": "你好"})
    assert refused.status == 403  # no CSRF token
    resp = await client.post(
        "/console/simulator",
        data={"csrf_token": token, "openid": OPENID, "text": "你好"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == f"/console/simulator?openid={OPENID}"
    page = await (await client.get(resp.headers["Location"])).text()
    assert "收到：你好" in page and "我 ·" in page
    assert "未使用微信接口模拟服务" in page  # WECHAT_API_BASE is WeChat's own here
    assert services.staff is not None
    entries = [
        e for e in await services.staff.audit.query(AuditFilter(limit=1000)) if e.action == "chat.simulate"
    ]
    assert len(entries) == 1 and entries[0].username == "editor" and OPENID not in entries[0].object_id
    # another person's simulator does not show this conversation
    other = await sign_in("editor2", ["kb_editor"])
    assert "收到：你好" not in await (await other.get(f"/console/simulator?openid={OPENID}")).text()


async def test_htmx_gets_the_conversation_and_errors_next_to_the_field(sign_in) -> None:
    client = await sign_in("editor", ["kb_editor"])
    token = csrf_of(await (await client.get("/console/simulator")).text())
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    resp = await client.post(
        "/console/simulator", data={"openid": OPENID, "text": "办理居住证"}, headers=headers
    )
    fragment = await resp.text()
    assert resp.status == 200 and fragment.startswith('<div id="chat"') and "收到：办理居住证" in fragment
    empty = await client.post("/console/simulator", data={"openid": OPENID, "text": " "}, headers=headers)
    assert "请输入要发送的文字" in await empty.text() and 'aria-invalid="true"' in await empty.text()
    plain = await client.post("/console/simulator", data={"csrf_token": token, "openid": OPENID, "text": ""})
    assert plain.status == 400 and "请输入要发送的文字" in await plain.text()
    bad = await client.post("/console/simulator", data={"csrf_token": token, "openid": "x/../y", "text": "a"})
    assert bad.status == 400 and "openid" in await bad.text()


async def test_safe_mode_and_pushes_recorded_by_the_wechat_fake(
    aiohttp_client, aiohttp_server, redis_client, sqlite_url
) -> None:
    fake = await aiohttp_server(fake_api.build_app(app_id=APP_ID, app_secret=APP_SECRET))
    # deadline 0: the gateway answers "success" at once and pushes the reply through the customer-service API
    settings = settings_for("safe", str(fake.make_url("")).rstrip("/"), sqlite_url, wechat_reply_deadline=0.0)
    services = await build_services(settings, redis=redis_client, dialogue=ScriptedDialogue())
    assert services.staff is not None
    await services.staff.accounts.create("editor", "编辑", PASSWORD, ["kb_editor"], "办公室", False)
    client: TestClient = await aiohttp_client(build_app(services))
    await client.post("/console/login", data={"username": "editor", "password": PASSWORD})
    token = csrf_of(await (await client.get(f"/console/simulator?openid={OPENID}")).text())
    resp = await client.post(
        "/console/simulator", data={"csrf_token": token, "openid": OPENID, "text": "你好"}
    )
    page = await resp.text()
    assert resp.status == 200 and "被动回复为 success" in page
    for _ in range(50):
        pushes = await (await client.get(f"/console/simulator/pushes?openid={OPENID}")).text()
        if "收到：你好" in pushes:
            break
        await asyncio.sleep(0.1)
    assert "客服消息" in pushes and "收到：你好" in pushes and 'hx-trigger="every 5s"' in pushes
    async with client.session.get(fake.make_url("/_fake/sent")) as sent:
        assert json.loads(await sent.text())[0]["touser"] == OPENID


async def editor_on(aiohttp_client, redis_client, sqlite_url: str, sms: SmsSettings, port: int) -> TestClient:
    """The gateway with ``sms`` on ``port`` (its PUBLIC_BASE_URL) and an editor signed in."""
    settings = dataclasses.replace(
        Settings(), database_url=sqlite_url, wechat_message_mode="plain", wechat_allow_plain=True
    )
    services = await build_services(
        settings, redis=redis_client, dialogue=ScriptedDialogue(), sms_settings=sms
    )
    assert services.staff is not None
    await services.staff.accounts.create("editor", "编辑", PASSWORD, ["kb_editor"], "办公室", False)
    client: TestClient = await aiohttp_client(TestServer(build_app(services), port=port))
    await client.post("/console/login", data={"username": "editor", "password": PASSWORD})
    return client


async def test_the_sms_twin_through_sms_twilio(aiohttp_client, redis_client, sqlite_url) -> None:
    port = unused_port()
    sms = dataclasses.replace(
        SmsSettings(),
        provider="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=Secret(AUTH_TOKEN),
        twilio_from_number=FROM_NUMBER,
        twilio_api_base="http://127.0.0.1:9",
        signature=SIGNATURE,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    client = await editor_on(aiohttp_client, redis_client, sqlite_url, sms, port)
    page = await (await client.get("/console/simulator/sms?phone=%2B8613812345678")).text()
    assert "短信模拟器" in page and 'for="phone"' in page and "短信渠道未启用" not in page
    form = {"phone": "+8613812345678", "text": "你好"}
    assert (await client.post("/console/simulator/sms", data=form)).status == 403  # no CSRF token
    resp = await client.post("/console/simulator/sms", data={**form, "csrf_token": csrf_of(page)})
    page = await resp.text()
    assert resp.status == 200 and f"【{SIGNATURE}】收到：你好" in page
    bad = await client.post(
        "/console/simulator/sms", data={**form, "phone": "138", "csrf_token": csrf_of(page)}
    )
    assert bad.status == 400 and "国际格式" in await bad.text()


async def test_the_sms_twin_through_the_aliyun_push(aiohttp_client, redis_client, sqlite_url) -> None:
    from sms_gateway.aliyun.fake import build_app as build_fake
    from sms_gateway.aliyun.templates import TemplateRegistry
    from tests.support.aliyun import aliyun_settings, fake_for

    fake = fake_for(TemplateRegistry.load())
    fake_server = TestServer(build_fake(fake), port=unused_port())
    await fake_server.start_server()
    port = unused_port()
    sms = aliyun_settings(f"http://127.0.0.1:{fake_server.port}", f"http://127.0.0.1:{port}")
    client = await editor_on(aiohttp_client, redis_client, sqlite_url, sms, port)
    try:
        page = await (await client.get("/console/simulator/sms?phone=%2B8613812345678")).text()
        form = {"phone": "+8613812345678", "text": "你好", "csrf_token": csrf_of(page)}
        resp = await client.post("/console/simulator/sms", data=form)
        page = await resp.text()
        # the reply went out through the fake as the approved chat_reply template
        assert resp.status == 200 and f"【{SIGNATURE}】政务服务助手答复：收到：你好" in page
        assert [s.template_code for s in fake.sent] == ["SMS_480010"]
        abroad = await client.post("/console/simulator/sms", data={**form, "phone": "+15005550006"})
        assert "只收发大陆手机号" in await abroad.text()
    finally:
        await fake_server.close()


async def test_the_sms_twin_says_when_sms_is_off(sign_in) -> None:
    client = await sign_in("editor", ["kb_editor"])
    page = await (await client.get("/console/simulator/sms")).text()
    assert "短信渠道未启用" in page
    resp = await client.post("/console/simulator/sms", data={"phone": "+8613812345678", "text": "你好",
                                                             "csrf_token": csrf_of(page)})  # fmt: skip
    assert "短信渠道未启用" in await resp.text()
    assert (await (await sign_in("watcher", ["viewer"])).get("/console/simulator/sms")).status == 403
