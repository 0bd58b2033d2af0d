"""A staff reply reaching the citizen: through the WeChat API fake (customer-service message, template
fallback outside the 48-hour window) and through the SMS outbox with the Twilio fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.adapters.wechat import fake_api
from bot.adapters.wechat.api_client import WeChatApiClient
from bot.adapters.wechat.token_service import TokenService
from bot.core.db import create_engine, session_factory
from bot.domains.complaints.delivery import ChannelReplySender, Recipient, SmsReplySender, WeChatReplySender
from bot.domains.complaints.intake import NewComplaint
from bot.domains.complaints.service import ComplaintService
from tests.support.complaints import WX, Clock, local, new
from tests.support.sms import PHONE, start_harness
from tests.support.wechat import APP_ID, APP_SECRET

OPENID = WX.removeprefix("wx:")
TEMPLATE = "TPL_complaint_result"


async def _handle(service: ComplaintService, number: str) -> None:
    await service.accept(number, "张科员")
    await service.dispatch(number, "张科员", "县人社局")
    await service.start(number, "李股长")
    await service.reply(number, "李股长", "经核实，已对3号窗口工作人员批评教育。")


@pytest.fixture(name="http")
async def http_fixture() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _service(url: str, sender: object) -> tuple[ComplaintService, object]:
    engine = create_engine(url)
    return ComplaintService(session_factory(engine), clock=Clock(local(2026, 3, 2)), sender=sender), engine  # type: ignore[arg-type]


async def _sent(http: aiohttp.ClientSession, server) -> list[dict]:
    async with http.get(server.make_url("/_fake/sent")) as resp:
        return await resp.json()


async def test_reply_reaches_citizen_through_wechat_fake(
    fake_wechat, redis_client, http: aiohttp.ClientSession, database_url: str
) -> None:
    base = str(fake_wechat.make_url("")).rstrip("/")
    api = WeChatApiClient(http, TokenService(redis_client, http, APP_ID, APP_SECRET, base), base)
    service, engine = await _service(database_url, WeChatReplySender(api, TEMPLATE))
    try:
        number = (await service.create(new(), idempotency_key="wx-1")).complaint.number
        await _handle(service, number)
        (sent,) = await _sent(http, fake_wechat)
        assert sent["kind"] == "custom" and sent["touser"] == OPENID and sent["msgtype"] == "text"
        content = sent["payload"]["text"]["content"]
        assert (
            content.startswith(f"您的投诉（{number}）已答复")
            and "批评教育" in content
            and "回复数字" in content
        )
        (notice,) = await service.notices(number)
        assert notice.status == "sent" and notice.via == "wechat_cs"
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_outside_the_window_a_template_message_is_sent(
    aiohttp_server, redis_client, http: aiohttp.ClientSession, database_url: str
) -> None:
    server = await aiohttp_server(
        fake_api.build_app(APP_ID, APP_SECRET, enforce_cs_window=True, template_ids=[TEMPLATE])
    )
    base = str(server.make_url("")).rstrip("/")
    api = WeChatApiClient(http, TokenService(redis_client, http, APP_ID, APP_SECRET, base), base)
    service, engine = await _service(database_url, WeChatReplySender(api, TEMPLATE))
    try:
        number = (await service.create(new(), idempotency_key="wx-2")).complaint.number
        await _handle(service, number)  # no message from the citizen for 48 h: 45015 → template
        (sent,) = await _sent(http, server)
        assert sent["kind"] == "template" and sent["touser"] == OPENID
        data = {k: v["value"] for k, v in sent["payload"]["data"].items()}
        assert data["character_string1"] == number and data["phrase2"] == "已答复"
        assert data["thing3"] == "已答复，回复“查询投诉”查看" and len(data["thing3"]) <= 20
        assert data["time4"].startswith("20") and "first" not in data and "remark" not in data
        (notice,) = await service.notices(number)
        assert notice.status == "sent" and notice.via == "wechat_template"
        assert sent["payload"]["client_msg_id"] == notice.key
        assert server.app[fake_api.FAKE_STATE].errors[45015] == 1
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_reply_reaches_citizen_through_sms(
    aiohttp_server, redis_client, http: aiohttp.ClientSession, database_url: str
) -> None:
    sms = await start_harness(redis_client, database_url)
    wechat_server = await aiohttp_server(fake_api.build_app(APP_ID, APP_SECRET, enforce_cs_window=True))
    base = str(wechat_server.make_url("")).rstrip("/")
    api = WeChatApiClient(http, TokenService(redis_client, http, APP_ID, APP_SECRET, base), base)
    sender = ChannelReplySender(wechat=WeChatReplySender(api), sms=SmsReplySender(sms.outbox))
    service, engine = await _service(database_url, sender)
    try:
        # filed by SMS: answered by SMS
        filed = NewComplaint(
            channel="sms", sender_id=f"sms:{PHONE}", description="5号窗口推诿", respondent="5号窗口"
        )
        by_sms = (await service.create(filed, idempotency_key="sms-1")).complaint.number
        await _handle(service, by_sms)
        (notice,) = await service.notices(by_sms)
        assert notice.status == "sent" and notice.via == "sms"
        (message,) = sms.sent(PHONE)
        assert by_sms in message.body and "批评教育" in message.body
        # filed on WeChat with a phone, window closed and no template: falls back to SMS
        by_wx = (await service.create(new(phone=PHONE), idempotency_key="wx-3")).complaint.number
        await _handle(service, by_wx)
        (notice,) = await service.notices(by_wx)
        assert notice.status == "sent" and notice.via == "sms"
        assert any(by_wx in m.body for m in sms.sent(PHONE))
        # a retry of the same notice never sends a second SMS (the ledger key is the notice key)
        recipient = Recipient(by_wx, "wechat", WX, PHONE)
        await SmsReplySender(sms.outbox).send(recipient, notice.text, key=notice.key)
        assert sum(by_wx in m.body for m in sms.sent(PHONE)) == 1
        # filed on WeChat without a phone and unreachable: the notice fails and is kept for staff
        lost = (await service.create(new(respondent="9号窗口"), idempotency_key="wx-4")).complaint.number
        await _handle(service, lost)
        (notice,) = await service.notices(lost)
        assert notice.status == "failed" and "45015" in (notice.error or "")
    finally:
        await engine.dispose()  # type: ignore[attr-defined]
        await sms.close()
