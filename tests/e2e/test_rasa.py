"""End to end: signed WeChat messages → gateway → the real Rasa server (trained model) → the action server
→ knowledge base → reply.  Rasa and the action server run as separate processes, as in production.

The stack (``rasa_stack``) is started once per session by tests/e2e/conftest.py."""

from __future__ import annotations

import dataclasses
import time
from urllib.parse import urlparse

import aiohttp
import pytest

from bot.gateway.app import build_app, build_services
from bot.gateway.conversation.dialogue import RasaRestDialogue
from eval.stack import Stack
from tests.support.rasa_stack import RASA_REDIS_DB
from tests.support.services import TEST_REDIS_URL
from tests.support.wechat import OPENID, WeChatRequest, decrypt_reply, message_xml, post, settings_for

pytestmark = pytest.mark.e2e


async def gateway_on_rasa(aiohttp_client, redis_client, stack, fake_wechat, http, deadline):
    settings = settings_for("safe", str(fake_wechat.make_url("")).rstrip("/"), stack.database_url)
    settings = dataclasses.replace(settings, wechat_reply_deadline=deadline)
    dialogue = RasaRestDialogue(http, stack.rasa_url, 10.0)
    return await aiohttp_client(
        build_app(await build_services(settings, redis=redis_client, dialogue=dialogue))
    )


@pytest.fixture
async def wechat(aiohttp_client, redis_client, rasa_stack, fake_wechat):
    """A gateway wired to the real Rasa; returns ``say(text) -> reply text``."""
    http = aiohttp.ClientSession()
    client = await gateway_on_rasa(aiohttp_client, redis_client, rasa_stack, fake_wechat, http, 10.0)
    openid = f"oE2e{time.time_ns()}"

    async def say(text: str, *, retries: int = 0) -> str:
        """Send a message (and ``retries`` WeChat retries of the very same request)."""
        request = WeChatRequest(message_xml("text", openid=openid, Content=text))
        status, body = await post(client, request)
        for _ in range(retries):
            again_status, again_body = await post(client, request)
            assert again_status == 200 and decrypt_reply(again_body, "safe") == decrypt_reply(body, "safe")
        assert status == 200
        reply = decrypt_reply(body, "safe")
        return reply.get("Content", "") if reply.get("MsgType") == "text" else f"<{reply.get('MsgType')}>"

    say.openid = openid  # type: ignore[attr-defined]
    yield say
    await http.close()


async def test_small_talk_round_trip(wechat) -> None:
    assert "政务服务助手" in await wechat("你好")
    assert await wechat("谢谢") != ""


async def test_service_guide_question_and_follow_up(wechat) -> None:
    answer = await wechat("办个体户营业执照要带什么材料")
    assert answer.splitlines()[0].find("个体工商户设立登记") >= 0, answer
    assert "经营者居民身份证" in answer
    fee = await wechat("那要多少钱")
    assert "个体工商户设立登记" in fee and ("免费" in fee or "不收费" in fee or "元" in fee), fee


async def create_case(stack: Stack, phone: str, status: str = "受理") -> str:
    """Register a case at the reference approval backend, as a window clerk would."""
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer e2e-token"}) as http:
        body = {"item_code": "36072200-XK-001", "applicant": {"name": "张三丰", "phone": phone},
                "status": status, "clerk": "3号窗口"}  # fmt: skip
        async with http.post(f"{stack.approval_url}/api/v1/cases", json=body) as resp:
            assert resp.status == 201, await resp.text()
            return (await resp.json())["ticket_no"]


async def stored_events(sender_id: str) -> list[dict]:
    """The conversation's tracker as Rasa's Redis tracker store keeps it (every session)."""
    import json

    import redis.asyncio as aioredis

    url = urlparse(TEST_REDIS_URL)
    client = aioredis.Redis(host=url.hostname or "127.0.0.1", port=url.port or 6379, db=int(RASA_REDIS_DB))
    try:
        stored = await client.get(f"govbot:tracker:{sender_id}")
        return json.loads(stored)["events"] if stored else []
    finally:
        await client.aclose()


async def age_conversation(sender_id: str, seconds: float) -> None:
    """Move the whole stored conversation `seconds` into the past (so Rasa's session has expired)."""
    import json

    import redis.asyncio as aioredis

    url = urlparse(TEST_REDIS_URL)
    client = aioredis.Redis(host=url.hostname or "127.0.0.1", port=url.port or 6379, db=int(RASA_REDIS_DB))
    try:
        key = f"govbot:tracker:{sender_id}"
        stored = await client.get(key)
        assert stored is not None, key
        dialogue = json.loads(stored)
        for event in dialogue["events"]:
            if event.get("timestamp"):
                event["timestamp"] -= seconds
        await client.set(key, json.dumps(dialogue), keepttl=True)
    finally:
        await client.aclose()


async def test_returning_citizen_keeps_the_context_and_the_tracker_stays_small(wechat) -> None:
    """Every visit is a new Rasa session (60 min): the slots come along, the history does not multiply."""
    sender = f"wx:{wechat.openid}"
    answer = await wechat("办个体户营业执照要带什么材料")
    assert "个体工商户设立登记" in answer.splitlines()[0], answer
    for visit in range(4):
        await age_conversation(sender, 2 * 3600)
        fee = await wechat("那要多少钱")  # a follow-up: answered from the item remembered in the slot
        assert "个体工商户设立登记" in fee, (visit, fee)
    events = await stored_events(sender)
    starts = [i for i, e in enumerate(events) if e.get("name") == "action_session_start"]
    assert len(starts) == 5
    sessions = [events[a:b] for a, b in zip(starts, [*starts[1:], len(events)], strict=True)]
    slot_sets = [sum(1 for e in session if e["event"] == "slot") for session in sessions]
    # Rasa 3.6 alone copies every SlotSet of all earlier sessions into each new one: more every visit.
    assert max(slot_sets[1:]) - min(slot_sets[1:]) <= 1, slot_sets


async def test_progress_lookup_with_phone_verification(wechat, rasa_stack) -> None:
    ticket = await create_case(rasa_stack, "13912345678")
    ask = await wechat(f"查一下受理号{ticket}办到哪了")
    assert "后4位" in ask or "后四位" in ask, ask
    wrong = await wechat("0000")
    assert "个体工商户设立登记" not in wrong
    answer = await wechat("5678")
    assert "个体工商户设立登记" in answer and "13912345678" not in answer, answer
    assert "张三丰" not in answer


async def test_complaint_with_details_starts_the_form_at_the_next_question(wechat) -> None:
    reply = await wechat("我要投诉，3号窗口态度很差")
    assert "登记" in reply and "窗口、部门" in reply, reply


async def test_human_handoff_transfers_in_office_hours(wechat) -> None:
    assert await wechat("转人工") == "<transfer_customer_service>"


@pytest.mark.parametrize("text", ["叫值班的人来跟我说", "你答非所问 找个人来", "转人工"])
async def test_a_hand_off_reached_from_another_action_is_said_once(rasa_stack, text) -> None:
    async with aiohttp.ClientSession() as http:
        dialogue = RasaRestDialogue(http, rasa_stack.rasa_url, 10.0)
        messages = await dialogue.turn(f"oE2eOnce{time.time_ns()}", text, {"channel": "wechat"})
    handoffs = [m for m in messages if (m.custom or {}).get("route") == "handoff"]
    assert len(handoffs) == 1, messages


async def test_traditional_chinese_is_understood(wechat) -> None:
    answer = await wechat("結婚登記需要帶什麼材料")
    assert "结婚登记" in answer.splitlines()[0], answer


async def test_menu_click_reaches_rasa(rasa_stack, aiohttp_client, redis_client, fake_wechat) -> None:
    async with aiohttp.ClientSession() as http:
        client = await gateway_on_rasa(aiohttp_client, redis_client, rasa_stack, fake_wechat, http, 10.0)
        req = WeChatRequest(message_xml("event", openid=OPENID + "m", Event="CLICK", EventKey="GUIDE"))
        status, body = await post(client, req)
        assert status == 200 and "请问您想咨询哪个事项" in decrypt_reply(body, "safe")["Content"]


async def test_rasa_slow_path_still_answers_through_the_api(
    rasa_stack, aiohttp_client, redis_client, fake_wechat
) -> None:
    """With a deadline shorter than a real turn, the citizen still gets the answer, pushed later."""
    from tests.support.wechat import pushed

    async with aiohttp.ClientSession() as http:
        client = await gateway_on_rasa(aiohttp_client, redis_client, rasa_stack, fake_wechat, http, 0.001)
        req = WeChatRequest(message_xml("text", openid=OPENID + "s", Content="你好"))
        status, body = await post(client, req)
        assert status == 200 and body == "success"
        sent = await pushed(fake_wechat, wait=10)
        assert "政务服务助手" in sent[0]["payload"]["text"]["content"]


async def test_sms_case_status_only_for_the_applicants_phone(rasa_stack, redis_client) -> None:
    """A signed Twilio webhook "查询 <ticket>" → Rasa → progress action → TwiML reply."""
    from tests.support.sms import start_harness

    ticket = await create_case(rasa_stack, "13912340000")
    async with aiohttp.ClientSession() as http:
        harness = await start_harness(
            redis_client, rasa_stack.database_url, dialogue=RasaRestDialogue(http, rasa_stack.rasa_url, 10.0),
            sync_reply_deadline=8.0,
        )  # fmt: skip
        try:
            status, twiml = await harness.inbound(f"查询 {ticket}", phone="+8613912340000")
            assert status == 200 and "个体工商户设立登记" in twiml, twiml
            assert "13912340000" not in twiml
            status, other = await harness.inbound(f"查询 {ticket}", phone="+8613700000000")
            assert status == 200 and "个体工商户设立登记" not in other and "<Message" in other, other
        finally:
            await harness.close()


async def test_disambiguation_reply_picks_an_item(wechat) -> None:
    choices = await wechat("营业执照")
    assert "回复数字" in choices, choices
    second = next(line for line in choices.splitlines() if line.startswith("2."))
    name = second.split(".", 1)[1].split("（")[0].strip()
    picked = await wechat("2")
    assert name in picked.splitlines()[0], (name, picked)


async def complaints_of(stack: Stack) -> list:
    from sqlalchemy import select

    from bot.core.db import create_engine, session_factory
    from bot.domains.complaints.models import Complaint

    engine = create_engine(stack.database_url)
    async with session_factory(engine)() as s:
        rows = list((await s.execute(select(Complaint))).scalars().all())
    await engine.dispose()
    return rows


async def test_complaint_intake_files_once(wechat, rasa_stack) -> None:
    before = len(await complaints_of(rasa_stack))
    first = await wechat("我要投诉")
    assert "描述" in first, first
    assert "窗口" in await wechat("今天上午在窗口等了两个小时没人办理，工作人员一直在玩手机")
    assert "电话" in await wechat("3号窗口")
    assert "保密" in await wechat("13812345678")
    readback = await wechat("是")
    assert "请确认" in readback and "138****5678" in readback, readback
    receipt = await wechat("确认", retries=2)  # WeChat retried the request twice
    assert "编号：TS" in receipt, receipt
    assert "编号" not in await wechat("确认")  # a second "确认" files nothing
    rows = await complaints_of(rasa_stack)
    assert len(rows) == before + 1
    assert rows[-1].confidential is True and rows[-1].respondent == "3号窗口"


async def test_complaint_cancelled_midway(wechat, rasa_stack) -> None:
    before = len(await complaints_of(rasa_stack))
    await wechat("我要投诉")
    assert "取消" in await wechat("算了")
    assert len(await complaints_of(rasa_stack)) == before


async def test_complaint_form_answers_a_guide_question_and_resumes(wechat) -> None:
    await wechat("我要投诉")
    answer = await wechat("结婚登记要带什么材料")
    assert "结婚登记" in answer and "描述" in answer, answer


async def test_emergency_is_diverted(wechat, rasa_stack) -> None:
    before = len(await complaints_of(rasa_stack))
    answer = await wechat("我要投诉，大厅着火了")
    assert "119" in answer
    assert len(await complaints_of(rasa_stack)) == before


async def test_a_second_complaint_about_the_same_window_is_offered_for_merging(wechat, rasa_stack) -> None:
    async def file(description: str) -> str:
        await wechat("我要投诉")
        await wechat(description)
        await wechat("5号窗口")
        await wechat("13812345678")
        await wechat("否")
        return await wechat("确认")

    first = await file("办理社保卡时工作人员让我来回跑了三趟")
    assert "编号：TS" in first
    before = len(await complaints_of(rasa_stack))
    offer = await file("今天又去了还是没办成，还让我回去等通知")
    assert "是否将本次内容补充" in offer, offer
    merged = await wechat("是")
    assert "已将本次内容补充到投诉" in merged, merged
    assert len(await complaints_of(rasa_stack)) == before
