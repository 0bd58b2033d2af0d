"""The SMS channel on Alibaba Cloud SMS, over real HTTP: SmsUp and SmsReport pushes to the path-token
endpoints (the same table harness as Twilio's webhooks), replies composed from the registered templates
and sent through the Aliyun fake by the official SDK, delivery reports applied to the ledger."""

from __future__ import annotations

from typing import Any

import pytest

from bot.gateway.conversation.dialogue import BotMessage
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from sms_gateway.models import LedgerStatus
from tests.support.aliyun import NATIONAL, PHONE, AliyunHarness, start_aliyun
from tests.support.channel_table import ChannelCase, Observed, check

SIG = "【县行政服务中心】"
ACK = '{"code": 0, "msg": "接收成功"}'
up = AliyunHarness.up_record


@pytest.fixture
async def aliyun(redis_client, sqlite_url):
    started: list[AliyunHarness] = []

    async def make(**kwargs: Any) -> AliyunHarness:
        harness = await start_aliyun(redis_client, sqlite_url, **kwargs)
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await harness.close()


# request: the push's JSON payload; options: token (a wrong one), raw (bytes instead of the payload)
Case = ChannelCase[Any]

CASES = [
    Case("a citizen's question", [up("你好")], 200, "政务服务助手答复：收到：你好", "你好"),
    Case("traditional script normalised", [up("營業執照")], 200, "收到：营业执照", "营业执照"),
    Case("one record as an object, not an array", up("你好"), 200, "收到：你好", "你好"),
    Case("sequence_id as a string", [up("你好", sequence="abc-1")], 200, "收到：你好", "你好"),
    Case("phone with +86", [up("你好", phone="+86" + NATIONAL)], 200, "收到：你好", "你好"),
    Case("wrong path token", [up("你好")], 403, None, options={"token": "x" * 24}),
    Case("not JSON", None, 400, None, options={"raw": b"{not json"}),
    Case("a record without sequence_id is set aside", [{"phone_number": NATIONAL, "content": "你好"}], 200,
         None),
    Case("a record with a landline is set aside", [up("你好", phone="07973322110")], 200, None),
    *[Case(f"opt-out keyword {kw}", [up(kw)], 200, "您已取消接收本中心短信") for kw in ["TD", "退订", "T"]],
    *[Case(f"opt-in keyword {kw}", [up(kw)], 200, "您已恢复接收本中心短信") for kw in ["订阅", "START"]],
    Case("help keyword", [up("帮助")], 200, "发送问题查办事指南"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
async def test_sms_up_push(aliyun, case: Case) -> None:
    harness = await aliyun()
    status, body = await harness.push("up", case.request, **case.options)
    if status == 200:
        assert body == ACK or body.replace(" ", "") == ACK.replace(" ", ""), body
    await harness.settle()
    sent = [s.content for s in harness.sent()]
    check(case, Observed(status, body, sent, harness.dialogue.calls), sender=f"sms:{PHONE}", channel="sms")
    for content in sent:  # what the handset shows: our signature once, then an approved template
        assert content.startswith(SIG) and content.count("【") == 1
    if sent:
        (entry,) = await harness.ledger()
        assert entry.body == sent[0]  # the ledger holds exactly what was sent


async def test_a_repeated_push_is_one_turn_and_one_reply(aliyun) -> None:
    harness = await aliyun()
    record = up("你好")
    for _ in range(3):  # Aliyun repeats pushes it thinks were lost
        assert (await harness.push("up", [record]))[0] == 200
    await harness.settle()
    assert len(harness.dialogue.calls) == 1 and len(harness.sent()) == 1


async def test_a_batch_of_many_replies_to_each_sender_once(aliyun) -> None:
    harness = await aliyun()
    phones = [f"1390000{n:04d}" for n in range(40)]
    status, _ = await harness.push("up", [up(f"问题{n}", phone=p) for n, p in enumerate(phones)])
    assert status == 200
    await harness.settle(10.0)
    assert sorted(s.phone for s in harness.fake.sent) == sorted(phones)
    assert {text for _, text, _ in harness.dialogue.calls} == {f"问题{n}" for n in range(40)}


async def test_the_fake_pushes_a_reply_and_its_delivery_report(aliyun) -> None:
    harness = await aliyun()
    await harness.citizen_replies(NATIONAL, "你好")  # pushed by the fake as SmsUp, like Aliyun
    assert await harness.wait_for(lambda: len(harness.sent()) == 1)

    async def delivered() -> bool:
        entries = await harness.ledger()
        return len(entries) == 1 and entries[0].status == LedgerStatus.DELIVERED

    assert await harness.wait_for(delivered)  # the fake's SmsReport push found its row by OutId
    (entry,) = await harness.ledger()
    assert entry.provider_sid == harness.fake.sent[0].biz_id
    kinds = [(kind, tries) for kind, _, tries in harness.fake.pushes]
    assert ("SmsUp", 1) in kinds and ("SmsReport", 1) in kinds  # answered {"code": 0} the first time


async def test_a_repeated_or_forged_report_changes_nothing(aliyun) -> None:
    harness = await aliyun()
    await harness.push("up", [up("你好")])
    await harness.settle()
    (entry,) = await harness.ledger()
    (sent,) = harness.sent()
    failed = {"phone_number": NATIONAL, "send_time": "2026-12-07 10:00:00",
              "report_time": "2026-12-07 10:00:05", "success": False, "err_code": "MK:0001",
              "err_msg": "失败", "sms_size": "1",
              "biz_id": sent.biz_id, "out_id": f"{entry.id}:1"}  # fmt: skip
    assert (await harness.push("report", [failed], token="y" * 24))[0] == 403
    assert (await harness.ledger())[0].status == LedgerStatus.DELIVERED
    delivered = {**failed, "success": True, "err_code": "DELIVERED"}
    for _ in range(2):
        assert (await harness.push("report", [delivered]))[0] == 200
    events = await harness.outbox.events(entry.id)  # the send's receipt and one delivery report
    assert [e[1] for e in events] == ["OK", "DELIVERED"]
    assert (await harness.ledger())[0].status == LedgerStatus.DELIVERED


async def test_an_opted_out_number_gets_silence(aliyun) -> None:
    harness = await aliyun()
    await harness.push("up", [up("TD")])
    await harness.push("up", [up("你好")])
    await harness.push("up", [up("TD")])
    await harness.settle()
    assert [s.template_code for s in harness.sent()] == ["SMS_480006"]  # one confirmation, then nothing
    assert harness.dialogue.calls == []


LONG_GUIDE = "【有限责任公司设立登记】\n" + "\n".join(
    f"{n}. 第{n}项材料的名称与份数，须加盖公章并由法定代表人签字" for n in range(1, 8)
)
SHORT = {"item": "有限责任公司设立登记", "answer": "需材料7项：公司登记申请书等", "window": "一楼3-6号窗口",
         "phone": "0797-3312315"}  # fmt: skip


def guide_reply(text: str, short: dict[str, str] | None = SHORT) -> ScriptedDialogue:
    custom: dict[str, Any] = {"answered": "kb", "route": "guide", "item_code": "X1"}
    if short is not None:
        custom["sms_template"] = {"kind": "guide_short", "values": short}
    return ScriptedDialogue(reply=lambda _: [BotMessage(text=text, custom=custom)])


async def test_a_long_guide_answer_goes_as_the_short_answer_template(aliyun) -> None:
    harness = await aliyun(dialogue=guide_reply(LONG_GUIDE))
    await harness.push("up", [up("开公司要什么材料")])
    await harness.settle()
    (sent,) = harness.sent()
    assert sent.template_code == "SMS_480004"
    assert sent.content == (
        f"{SIG}您咨询的有限责任公司设立登记：需材料7项：公司登记申请书等。详询一楼3-6号窗口电话0797-3312315"
    )


async def test_a_short_guide_answer_is_sent_whole(aliyun) -> None:
    harness = await aliyun(dialogue=guide_reply("【个体户注销】\n承诺办结时限：即办"))
    await harness.push("up", [up("个体户注销要多久")])
    await harness.settle()
    assert [s.content for s in harness.sent()] == [
        f"{SIG}政务服务助手答复：〔个体户注销〕；承诺办结时限：即办"
    ]


async def test_a_long_answer_without_a_template_is_kept_for_more(aliyun) -> None:
    harness = await aliyun(dialogue=guide_reply(LONG_GUIDE, short=None))
    await harness.push("up", [up("开公司要什么材料")])
    await harness.settle()
    first = [s.content for s in harness.sent()]
    assert len(first) == 3 and "回复“更多”" in first[-1]
    assert all(s.template_code == "SMS_480010" for s in harness.sent())
    seen = "".join(first)
    for _ in range(6):  # "更多" until everything arrived
        harness.dialogue.reply = lambda _: [BotMessage(text="（不应调用）")]
        await harness.push("up", [up("更多")])
        await harness.settle()
        seen = "".join(s.content for s in harness.sent())
        if "7. " in seen:
            break
    for n in range(1, 8):  # nothing dropped: every numbered material reached the handset
        assert f"{n}. 第{n}项材料" in seen
    assert len(harness.dialogue.calls) == 1  # "更多" was answered from what was kept, not by the bot


async def test_a_message_a_dead_worker_accepted_is_answered_by_the_sweep(aliyun) -> None:
    harness = await aliyun()

    async def dies(messages) -> None:  # the worker stored the messages, answered the push, then died
        return None

    harness.channel._answer_in_order = dies
    status, _ = await harness.push("up", [up("你好"), up("在吗")])
    assert status == 200 and await harness.channel.inbox.pending() == 2
    assert harness.sent() == []
    del harness.channel._answer_in_order  # the instance attribute goes; the sweep runs the real method
    assert await harness.channel.recover_inbox(older_than=60) == 0  # not stale yet: maybe still running
    assert await harness.channel.recover_inbox(older_than=0) == 2
    await harness.settle()
    assert [text for _, text, _ in harness.dialogue.calls] == ["你好", "在吗"]  # in order
    assert len(harness.sent()) == 2 and await harness.channel.inbox.pending() == 0
    assert await harness.channel.recover_inbox(older_than=0) == 0
    await harness.push("up", [up("你好", sequence=harness.dialogue.calls[0][2]["message_id"][10:])])
    await harness.settle()
    assert len(harness.sent()) == 2  # Aliyun repeating the push afterwards changes nothing


async def test_a_campaign_batch_is_sent_in_one_call_and_its_reports_find_each_row(aliyun) -> None:
    from sms_gateway.models import Purpose
    from sms_gateway.outbox import BatchItem

    harness = await aliyun()
    text = "{name}您好：营业执照年报，请于6月30日前到县行政服务中心办理。详询0797-3322110"
    phones = [f"+86139000{n:05d}" for n in range(5)]
    items = [
        BatchItem(p, harness.outbox.composer.whole([text.format(name=f"张{n}")], opt_out_hint=True)[0],
                  f"broadcast:c9:{p}")
        for n, p in enumerate(phones)
    ]  # fmt: skip
    report = await harness.outbox.send_batch(items, purpose=Purpose.BROADCAST, campaign_id="c9")
    assert report["accepted"] == 5
    assert len({s.biz_id for s in harness.fake.sent}) == 1  # one SendBatchSms call

    async def all_delivered() -> bool:
        rows = await harness.outbox.entries(campaign_id="c9")
        return len(rows) == 5 and all(r.status == LedgerStatus.DELIVERED for r in rows)

    assert await harness.wait_for(all_delivered)  # reports carry the call's BizId and "bc.c9", not a row id


async def test_rows_whose_report_never_came_are_looked_up(aliyun) -> None:
    from datetime import timedelta

    from bot.core.clock import utcnow

    harness = await aliyun()
    harness.fake.report_url = ""  # every delivery report lost
    await harness.push("up", [up("你好")])
    await harness.push("up", [up("在吗", phone="13900000077")])
    await harness.settle()
    assert {e.status for e in await harness.outbox.entries()} == {LedgerStatus.ACCEPTED}
    failed = next(s for s in harness.fake.sent if s.phone == "13900000077")
    failed.status, failed.err_code = 2, "MOBILE_NOT_ON_SERVICE"  # what QuerySendDetails will say
    assert await harness.outbox.run_due() == 0  # not overdue yet: nothing looked up
    harness.outbox.clock = lambda: utcnow() + timedelta(seconds=harness.settings.report_wait + 60)
    assert await harness.outbox.run_due() == 2
    by_phone = {e.recipient: e for e in await harness.outbox.entries()}
    assert by_phone[PHONE].status == LedgerStatus.DELIVERED
    assert by_phone["+8613900000077"].status == LedgerStatus.FAILED
    assert await harness.outbox.run_due() == 0  # settled rows are not looked up again


@pytest.mark.parametrize(
    ("code", "http_status", "status", "retry_in_hours"),
    [
        ("OK", 200, LedgerStatus.ACCEPTED, None),
        ("isv.MOBILE_NUMBER_ILLEGAL", 200, LedgerStatus.FAILED, None),
        ("isv.TEMPLATE_MISSING_PARAMETERS", 200, LedgerStatus.FAILED, None),
        ("isv.PARAM_LENGTH_LIMIT", 200, LedgerStatus.FAILED, None),
        ("isv.BLACK_KEY_CONTROL_LIMIT", 200, LedgerStatus.FAILED, None),
        ("isv.SMS_TEMPLATE_ILLEGAL", 200, LedgerStatus.FAILED, None),
        ("isv.BUSINESS_LIMIT_CONTROL", 200, LedgerStatus.PENDING, 24),  # deferred past the day's window
        ("isv.AMOUNT_NOT_ENOUGH", 200, LedgerStatus.PENDING, 0),  # held, retried (and an error is logged)
        ("isv.OUT_OF_SERVICE", 200, LedgerStatus.PENDING, 0),
        ("Throttling.User", 400, LedgerStatus.PENDING, 0),
        ("isp.SYSTEM_ERROR", 200, "unknown", None),  # maybe sent: looked up before any resend
        ("InternalError", 500, "unknown", None),
    ],
)
async def test_each_answer_code_leaves_the_ledger_row_in_its_state(
    aliyun, code: str, http_status: int, status: str, retry_in_hours: int | None
) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from bot.core.clock import utcnow
    from sms_gateway.models import Purpose, SmsOutbound

    harness = await aliyun(throttle_backoff=60.0)
    if code != "OK":
        harness.fake.injected.append((code, http_status))
    (message,) = harness.outbox.composer.whole(["您好"], templated=None)
    (entry,) = await harness.outbox.send_messages(PHONE, [message], purpose=Purpose.REPLY, key=f"t:{code}")
    assert entry.status == status, code
    async with harness.sessions() as s:
        row = (await s.execute(select(SmsOutbound).where(SmsOutbound.id == entry.id))).scalar_one()
    if retry_in_hours is not None:
        assert row.next_attempt_at is not None
        wait = row.next_attempt_at.replace(tzinfo=row.next_attempt_at.tzinfo or utcnow().tzinfo) - utcnow()
        assert wait > timedelta(hours=retry_in_hours - 1), (code, wait)
        assert retry_in_hours or wait < timedelta(hours=1), (code, wait)


LONG_ANSWER = "经核查，" + "窗口工作人员已按规定退还多收费用并当面致歉，" * 3


@pytest.mark.parametrize(
    ("label", "answer", "template_codes"),
    [
        ("a short reply is the complaint_reply template", "已退还多收的50元", ["SMS_480003"]),
        ("a long reply is sent whole as chat replies", LONG_ANSWER,
         ["SMS_480010"] * 6),
    ],
)  # fmt: skip
async def test_a_staff_reply_to_a_complaint_goes_as_its_template(
    aliyun, label: str, answer: str, template_codes: list[str]
) -> None:
    from bot.domains.complaints.delivery import Recipient, SmsReplySender
    from bot.domains.complaints.service import reply_notice

    harness = await aliyun()
    recipient = Recipient("TS20261207001", "sms", f"sms:{PHONE}", PHONE)
    notice = reply_notice(recipient.number, answer)
    assert (
        await SmsReplySender(harness.outbox).send(recipient, notice, key=f"{recipient.number}:reply:4")
        == "sms"
    )
    sent = harness.sent()
    assert [s.template_code for s in sent] == template_codes, label
    if len(sent) == 1:
        assert sent[0].content == (
            f"{SIG}您的投诉建议（编号TS20261207001）已答复：{answer}。请回复数字1-5评价（5为非常满意）"
        )
    else:  # nothing of the answer is lost
        assert "窗口工作人员已按规定退还多收费用并当面致歉" in "".join(s.content for s in sent)


async def test_a_push_that_cannot_be_stored_is_not_acknowledged(aliyun) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    harness = await aliyun()
    real = harness.channel.inbox.accept

    async def down(*args: Any) -> bool:
        raise RedisConnectionError("redis down")

    harness.channel.inbox.accept = down
    record = up("你好")
    status, body = await harness.push("up", [record])
    assert status == 503 and "code" not in body  # Aliyun pushes it again: nothing is lost
    harness.channel.inbox.accept = real
    assert (await harness.push("up", [record]))[0] == 200
    await harness.settle()
    assert len(harness.sent()) == 1 and [t for _, t, _ in harness.dialogue.calls] == ["你好"]
