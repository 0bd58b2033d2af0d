"""Inbound SMS over real HTTP: requests signed with twilio's RequestValidator, real Redis and SQLite, the
Twilio fake for anything sent through the ledger, the scripted dialogue engine as the bot."""

from __future__ import annotations

import asyncio
import logging
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from bot.core.logs import JsonFormatter
from bot.gateway.conversation.dialogue import BotMessage
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from sms_gateway.compose import MORE_HINT
from sms_gateway.models import LedgerStatus, Purpose
from sms_gateway.twilio.fake import NumberRule
from tests.support.channel_table import ChannelCase, Observed, check
from tests.support.sms import OTHER_PHONE, PHONE, SmsHarness, new_message_sid, start_harness

SIG = "【县行政服务中心】"
THIRD_PHONE = "+8613700000001"


@pytest.fixture
async def sms(redis_client, sqlite_url):
    started: list[SmsHarness] = []

    async def make(**kwargs: Any) -> SmsHarness:
        harness = await start_harness(redis_client, sqlite_url, **kwargs)
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await harness.close()


def messages_of(twiml: str) -> list[tuple[str, str]]:
    """(body, action URL) of every <Message> in a TwiML answer."""
    root = ET.fromstring(twiml.encode("utf-8"))
    assert root.tag == "Response"
    return [((m.text or ""), m.get("action") or "") for m in root.iter("Message")]


# ---------------------------------------------------------------------------------------------- table


# request: the SMS body; options: signing knobs for SmsHarness.inbound (forged signatures, other URLs, …)
Case = ChannelCase[str]


OPT_OUT_REPLY = "您已退订"
OPT_IN_REPLY = "您已恢复接收短信"
HELP_REPLY = "人工咨询请拨0797-3322110"

CASES = [
    Case("signed question", "你好", 200, "收到：你好", "你好"),
    Case(
        "traditional and full-width normalised", "營業執照　ＡＢＣ", 200, "收到：营业执照 ABC", "营业执照 ABC"
    ),
    Case("forged signature", "你好", 403, None, options={"signature": "bm90IGEgc2lnbmF0dXJlIGF0IGFsbA=="}),
    Case(
        "signed for another URL", "你好", 403, None, options={"sign_url": "https://evil.example/sms/twilio"}
    ),
    Case("signed with another token", "你好", 403, None, options={"auth_token": "someone-elses-token"}),
    Case("missing signature header", "你好", 403, None, options={"omit_signature": True}),
    Case("body changed after signing", "你好", 403, None, options={"after_signing": {"Body": "T"}}),
    Case(
        "another account's webhook",
        "你好",
        403,
        None,
        options={"extra": {"AccountSid": "ACffffffffffffffffffffffffffffffff"}},
    ),
    Case(
        "signed but without MessageSid",
        "你好",
        400,
        None,
        options={"extra": {"MessageSid": "", "SmsMessageSid": "", "SmsSid": ""}},
    ),
    *[
        Case(f"opt-out keyword {kw}", kw, 200, OPT_OUT_REPLY)
        for kw in ["T", "TD", "N", "退订", "退訂", "STOP"]
    ],
    Case("opt-out keyword UNSUBSCRIBE", "UNSUBSCRIBE", 200, OPT_OUT_REPLY),
    Case("opt-out keyword, lower case with a full stop", "td。", 200, OPT_OUT_REPLY),
    *[Case(f"opt-in keyword {kw}", kw, 200, OPT_IN_REPLY) for kw in ["START", "订阅", "恢复"]],
    *[Case(f"help keyword {kw}", kw, 200, HELP_REPLY) for kw in ["HELP", "帮助", "?", "？"]],
    Case(
        "a sentence containing 退订 is a question", "怎么退订短信", 200, "收到：怎么退订短信", "怎么退订短信"
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
async def test_inbound(sms, case: Case) -> None:
    harness = await sms()
    status, body = await harness.inbound(case.request, **case.options)
    replies = messages_of(body) if status == 200 else []
    seen = Observed(status, body, [text for text, _ in replies], harness.dialogue.calls)
    check(case, seen, sender=f"sms:{PHONE}", channel="sms")
    for _, _, metadata in harness.dialogue.calls:
        assert metadata["phone"] == PHONE and metadata["provider"] == "twilio"
    entries = await harness.ledger()
    if not replies:
        assert entries == []
        return
    ((text, action),) = replies
    assert text.startswith(SIG) and text.count("【") == 1
    assert len(entries) == 1
    assert entries[0].body == text and entries[0].status == LedgerStatus.SENDING and entries[0].via == "sync"
    assert action == f"{harness.base_url}/sms/twilio/status?lid={entries[0].id}&n=1"


# ---------------------------------------------------------------------------------------------- opt-out


async def test_opt_out_one_confirmation_then_silence_until_opt_in(sms) -> None:
    harness = await sms()
    _, first = await harness.inbound("T")
    assert OPT_OUT_REPLY in messages_of(first)[0][0]
    assert await harness.channel.optouts.is_opted_out(PHONE)
    for text in ["你好", "退订", "HELP", "查询 2024000123", "更多"]:
        status, body = await harness.inbound(text)
        assert status == 200 and messages_of(body) == [], text
    assert harness.dialogue.calls == []
    # nothing else may reach the number either
    assert (await harness.outbox.send(PHONE, "办件通知"))[0].status == LedgerStatus.SUPPRESSED
    assert harness.sent() == []
    _, back = await harness.inbound("订阅")
    assert OPT_IN_REPLY in messages_of(back)[0][0]
    _, answer = await harness.inbound("你好")
    assert "收到：你好" in messages_of(answer)[0][0]
    # a new opt-out gets a new (single) confirmation
    _, again = await harness.inbound("STOP")
    assert OPT_OUT_REPLY in messages_of(again)[0][0]
    purposes = [e.purpose for e in await harness.ledger()]
    assert purposes.count(Purpose.OPT_OUT_CONFIRMATION) == 2


async def test_the_confirmation_is_claimed_once_even_if_written_twice(sms) -> None:
    harness = await sms()
    await harness.channel.optouts.opt_out(PHONE, source="keyword", keyword="T")
    composer = harness.outbox.composer
    first = await harness.outbox.send_messages(
        PHONE, composer.whole(["确认一"]), purpose=Purpose.OPT_OUT_CONFIRMATION
    )
    second = await harness.outbox.send_messages(
        PHONE, composer.whole(["确认二"]), purpose=Purpose.OPT_OUT_CONFIRMATION
    )
    assert first[0].status == LedgerStatus.ACCEPTED
    assert second[0].status == LedgerStatus.SUPPRESSED
    assert [m.body for m in harness.sent()] == [f"{SIG}确认一"]


async def test_opt_out_of_one_number_leaves_others_alone(sms) -> None:
    harness = await sms()
    await harness.inbound("退订")
    _, body = await harness.inbound("你好", phone=OTHER_PHONE)
    assert "收到：你好" in messages_of(body)[0][0]


# ---------------------------------------------------------------------------------------------- dedup


async def test_a_reposted_message_sid_gets_the_same_answer_and_one_turn(sms) -> None:
    harness = await sms()
    sid = new_message_sid()
    first = await harness.inbound("你好", message_sid=sid)
    second = await harness.inbound("你好", message_sid=sid)
    assert first == second and first[0] == 200
    assert len(harness.dialogue.calls) == 1
    assert len(await harness.ledger()) == 1
    assert await harness.redis.exists(f"sms:in:twilio:{sid}")


async def test_a_concurrent_retry_waits_for_the_first_answer(sms) -> None:
    # The retry waits up to the deadline for the first request's rendered reply (the turn and the ledger's
    # writes); a deadline with room to spare keeps a loaded CI machine from turning this into a timeout.
    harness = await sms(dialogue=ScriptedDialogue(delay=0.3), sync_reply_deadline=10.0)
    sid = new_message_sid()
    first, second = await asyncio.gather(
        harness.inbound("你好", message_sid=sid), harness.inbound("你好", message_sid=sid)
    )
    assert first == second
    assert "收到：你好" in messages_of(first[1])[0][0]
    assert len(harness.dialogue.calls) == 1


async def test_opt_out_keyword_reposted_is_not_confirmed_twice(sms) -> None:
    harness = await sms()
    sid = new_message_sid()
    await harness.inbound("T", message_sid=sid)
    await harness.inbound("T", message_sid=sid)
    entries = await harness.ledger()
    assert [e.purpose for e in entries] == [Purpose.OPT_OUT_CONFIRMATION]


# ---------------------------------------------------------------------------------------------- paths


async def test_slow_answer_goes_through_the_ledger(sms) -> None:
    harness = await sms(dialogue=ScriptedDialogue(delay=0.5), sync_reply_deadline=0.1)
    sid = new_message_sid()
    status, body = await harness.inbound("社保卡怎么补办", message_sid=sid)
    assert status == 200 and messages_of(body) == []
    await harness.settle()
    sent = harness.sent()
    assert [m.body for m in sent] == [f"{SIG}收到：社保卡怎么补办"]
    assert sent[0].direction == "outbound-api"
    assert await harness.wait_for(_all_status(harness, LedgerStatus.DELIVERED))
    (entry,) = await harness.ledger()
    assert entry.purpose == Purpose.REPLY and entry.via == "api" and entry.provider_sid == sent[0].sid
    # Twilio retrying the same webhook later gets an empty answer and no second SMS
    status, body = await harness.inbound("社保卡怎么补办", message_sid=sid)
    assert messages_of(body) == []
    await harness.settle()
    assert len(harness.sent()) == 1 and len(harness.dialogue.calls) == 1


def _all_status(harness: SmsHarness, status: str):
    async def check() -> bool:
        entries = await harness.ledger()
        return bool(entries) and all(e.status == status for e in entries)

    return check


async def test_a_failing_turn_after_the_deadline_still_answers(sms) -> None:
    def boom(text: str) -> list[BotMessage]:
        raise RuntimeError("bug in an action")

    harness = await sms(dialogue=ScriptedDialogue(reply=boom, delay=0.3), sync_reply_deadline=0.05)
    status, body = await harness.inbound("你好")
    assert status == 200 and messages_of(body) == []
    await harness.settle()
    assert [m.body for m in harness.sent()] == [
        f"{SIG}抱歉，系统暂时繁忙，请稍后再试。急事请拨打0797-3322110。"
    ]


async def test_a_failing_turn_within_the_deadline_answers_politely(sms) -> None:
    def boom(text: str) -> list[BotMessage]:
        raise RuntimeError("bug in an action")

    harness = await sms(dialogue=ScriptedDialogue(reply=boom))
    status, body = await harness.inbound("你好")
    assert status == 200
    assert [b for b, _ in messages_of(body)] == [
        f"{SIG}抱歉，系统暂时繁忙，请稍后再试。急事请拨打0797-3322110。"
    ]
    metrics = await harness.channel._metrics.render()
    assert 'govbot_sms_inbound_total{path="sync",result="error"} 1' in metrics


async def test_twiml_replies_are_sent_by_twilio_and_tracked_in_the_ledger(sms) -> None:
    """The full loop: the fake receives an SMS, calls our webhook, sends our TwiML <Message>s and reports
    their status to the action URL, which updates the ledger rows written before the answer."""
    harness = await sms()
    result = await harness.fake.inbound(PHONE, "你好", None, None)
    assert result["status"] == 200 and len(result["replies"]) == 1
    await harness.settle()
    (reply,) = harness.sent(direction="outbound-reply")
    assert reply.body == f"{SIG}收到：你好" and reply.status == "delivered"
    assert await harness.wait_for(_all_status(harness, LedgerStatus.DELIVERED))
    (entry,) = await harness.ledger()
    assert entry.provider_sid == reply.sid and entry.via == "sync"


async def test_long_answer_within_budget_and_more_gives_the_rest(sms) -> None:
    long_text = "".join(
        f"第{i}条说明：办理时请携带相关证明材料并按窗口要求填写申请表。" for i in range(1, 13)
    )
    harness = await sms(dialogue=ScriptedDialogue(reply=lambda text: [BotMessage(text=long_text)]))
    _, body = await harness.inbound("怎么办理")
    (first,) = messages_of(body)
    assert first[0].endswith(MORE_HINT)
    assert harness.outbox.composer.message(first[0].removeprefix(SIG)).segments <= 3
    collected = [first[0]]
    for _ in range(10):
        _, more = await harness.inbound("更多")
        parts = messages_of(more)
        if not parts:
            break
        collected.append(parts[0][0])
        assert harness.outbox.composer.message(parts[0][0].removeprefix(SIG)).segments <= 3
        if not parts[0][0].endswith(MORE_HINT):
            break
    assert len(harness.dialogue.calls) == 1  # "更多" is served from the stash, not the bot
    text = "".join(c.removeprefix(SIG).replace(MORE_HINT, "").replace("\n", "") for c in collected)
    assert text == long_text


async def test_materials_list_is_answered_whole(sms) -> None:
    items = [f"{i}. 材料{i}：身份证明原件及复印件" for i in range(1, 31)]
    texts = ["〔护照〕\n申请材料（共30项）：\n" + "\n".join(items[:15]), "\n".join(items[15:])]
    harness = await sms(dialogue=ScriptedDialogue(reply=lambda text: [BotMessage(text=t) for t in texts]))
    _, body = await harness.inbound("护照要带什么材料")
    bodies = [b for b, _ in messages_of(body)]
    assert len(bodies) >= 2
    assert not any(MORE_HINT in b for b in bodies)
    joined = "\n".join(bodies)
    assert all(item in joined for item in items)
    assert len(await harness.ledger()) == len(bodies)


async def test_transfer_without_text_gives_the_phone_number(sms) -> None:
    harness = await sms(
        dialogue=ScriptedDialogue(reply=lambda text: [BotMessage(custom={"handoff": "transfer"})])
    )
    _, body = await harness.inbound("转人工")
    assert "0797-3322110" in messages_of(body)[0][0]


async def test_public_url_behind_a_proxy(sms) -> None:
    harness = await sms(public_base_url="https://sms.example.gov.cn/gateway")
    assert harness.inbound_url == "https://sms.example.gov.cn/gateway/sms/twilio"
    status, body = await harness.inbound("你好")  # signed over the public URL, posted to 127.0.0.1
    assert status == 200 and "收到：你好" in messages_of(body)[0][0]
    status, _ = await harness.inbound("你好", sign_url=harness.local_url("/sms/twilio"))
    assert status == 403
    entry = (await harness.ledger())[0]
    assert messages_of(body)[0][1].startswith("https://sms.example.gov.cn/gateway/sms/twilio/status?lid=")
    assert entry.status == LedgerStatus.SENDING


# ---------------------------------------------------------------------------------------------- masking


async def test_no_log_line_carries_a_phone_number(sms, caplog) -> None:
    caplog.set_level(logging.INFO)  # the gateway's production level
    harness = await sms(dialogue=ScriptedDialogue(delay=0.2), sync_reply_deadline=0.05)
    harness.fake.numbers[OTHER_PHONE] = NumberRule(21610)  # the reply is refused: logged as opted out
    await harness.inbound("T")
    await harness.inbound("你好", phone=OTHER_PHONE)
    await harness.settle()
    await harness.outbox.send(THIRD_PHONE, "身份证号360702199001011234的办件已受理，联系电话13912345678")
    await harness.inbound("伪造", signature="AAAA")
    assert await harness.channel.optouts.is_opted_out(OTHER_PHONE)
    assert caplog.records
    formatter = JsonFormatter()
    raw_digits = ["13812345678", "13987654321", "13700000001", "360702199001011234", "13912345678"]
    for record in caplog.records:
        values = " ".join(str(v) for v in record.__dict__.values())
        rendered = formatter.format(record)
        for digits in raw_digits:
            assert digits not in values, (record.name, record.getMessage())
            assert digits not in rendered
    (notice,) = harness.sent(THIRD_PHONE)
    assert notice.body == f"{SIG}身份证号3****************4的办件已受理，联系电话139****5678"


async def test_more_after_a_complete_answer_says_that_was_all(sms) -> None:
    answer = [
        BotMessage(text="【护照】收费标准：120元/本"),
        BotMessage(custom={"answered": "kb", "route": "guide"}),
    ]
    harness = await sms(dialogue=ScriptedDialogue(reply=lambda text: answer))
    await harness.inbound("护照多少钱")
    _, more = await harness.inbound("更多")
    (part,) = messages_of(more)
    assert "以上就是全部内容" in part[0]
    assert len(harness.dialogue.calls) == 1  # not sent to the bot (which would call it out of scope)


async def test_an_oversize_body_is_a_413(sms) -> None:
    harness = await sms()
    big = "Body=" + "a" * (2 * 1024 * 1024)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for path in ("/sms/twilio", "/sms/twilio/status"):
        async with harness.http.post(harness.local_url(path), data=big, headers=headers) as resp:
            assert resp.status == 413, path
    assert harness.dialogue.calls == []
