"""Privacy of case lookups (SQLite, and PostgreSQL when TEST_POSTGRES_URL is set): verification by the last 4
phone digits and binding on WeChat, the SMS sender match, identical answers for unknown and not-yours,
rate limits with cool-down, the audit table, masking in replies and logs, a failing backend."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import date

import pytest
from sqlalchemy import select

from bot.adapters.approval.ticket import make_ticket
from bot.core.logs import JsonFormatter
from bot.core.metrics import Metrics
from bot.domains.progress.models import ProgressBinding
from bot.domains.progress.service import LookupResult
from tests.support.progress import (
    APPLICANT,
    APPLICANT_PHONE,
    CENTER_PHONE,
    ID_NUMBER,
    OTHER_PHONE,
    WX_A,
    WX_B,
    Env,
)

SMS_A = f"sms:+86{APPLICANT_PHONE}"
SMS_B = f"sms:+86{OTHER_PHONE}"


def unknown_ticket(n: int = 1) -> str:
    return make_ticket(date.today(), 900_000 + n)


async def bindings(env: Env) -> list[tuple[str, str, str, bool]]:
    async with env.sessions() as session:
        rows = await session.scalars(select(ProgressBinding).order_by(ProgressBinding.id))
        return [(r.sender_id, r.ticket_no, r.verified_by, r.notify) for r in rows]


async def test_wechat_verifies_the_phone_digits_then_binds(env: Env) -> None:
    ticket = (await env.reference.create())["ticket_no"]
    asked = await env.say(WX_A, f"帮我查下受理号 {ticket}")
    assert asked.result is LookupResult.VERIFY_REQUESTED
    assert "后4位" in asked.messages[0]
    assert await env.reference.case_calls() == 0  # nothing is looked up before the citizen proves anything
    wrong = await env.say(WX_A, "1234")
    assert wrong.result is LookupResult.WRONG_DIGITS
    shown = await env.say(WX_A, APPLICANT_PHONE[-4:])
    assert shown.result is LookupResult.SHOWN
    text = shown.messages[0]
    assert "食品经营许可（新办）" in text and "张*三" in text
    assert APPLICANT not in text and APPLICANT_PHONE not in text and ID_NUMBER not in text
    assert APPLICANT_PHONE[-4:] not in text.replace(CENTER_PHONE, "")
    assert await bindings(env) == [(WX_A, ticket, "phone_last4", True)]
    # Later lookups from the bound account need nothing more, with or without the number.
    again = await env.say(WX_A, ticket)
    assert again.result is LookupResult.SHOWN
    plain = await env.say(WX_A, "我的件办到哪了")
    assert plain.result is LookupResult.SHOWN and plain.ticket_no == ticket
    assert await env.audit() == [
        (WX_A, ticket, "lookup", "verify_requested"),
        (WX_A, ticket, "verify", "wrong_digits"),
        (WX_A, ticket, "verify", "shown"),
        (WX_A, ticket, "lookup", "shown"),
        (WX_A, ticket, "lookup", "shown"),
    ]


async def test_ticket_and_digits_in_one_message_and_the_full_number(env: Env) -> None:
    ticket = (await env.reference.create())["ticket_no"]
    both = await env.say(WX_A, f"{ticket} 尾号{APPLICANT_PHONE[-4:]}")
    assert both.result is LookupResult.SHOWN
    full = await env.say(WX_B, ticket)
    assert full.result is LookupResult.VERIFY_REQUESTED
    assert (await env.say(WX_B, f"+86 {APPLICANT_PHONE}")).result is LookupResult.SHOWN
    assert {(s, v) for s, _, v, _ in await bindings(env)} == {(WX_A, "phone_last4"), (WX_B, "phone_full")}


async def test_unknown_and_not_yours_get_identical_answers_on_wechat(env: Env) -> None:
    mine = (await env.reference.create())["ticket_no"]
    unknown = unknown_ticket()
    ask_mine = await env.say(WX_B, mine)
    ask_unknown = await env.say(WX_A, unknown)
    assert ask_mine.messages == ask_unknown.messages  # the same question for both …
    assert ask_mine.result is ask_unknown.result is LookupResult.VERIFY_REQUESTED
    not_yours = await env.say(WX_B, OTHER_PHONE[-4:])
    not_found = await env.say(WX_A, OTHER_PHONE[-4:])
    assert not_yours.messages == not_found.messages  # … and the same answer
    assert not_yours.result is LookupResult.WRONG_DIGITS and not_found.result is LookupResult.NOT_FOUND
    assert CENTER_PHONE in not_found.messages[0]
    # The audit keeps the difference for staff.
    assert [r[3] for r in await env.audit()] == [
        "verify_requested",
        "verify_requested",
        "wrong_digits",
        "not_found",
    ]


async def test_sms_needs_the_applicants_own_number(env: Env) -> None:
    ticket = (await env.reference.create())["ticket_no"]
    shown = await env.say(SMS_A, f"查询进度 {ticket}", channel="sms")
    assert shown.result is LookupResult.SHOWN  # no extra step over SMS
    assert "【" not in shown.messages[0] and "】" not in shown.messages[0]
    not_yours = await env.say(SMS_B, ticket, channel="sms")
    not_found = await env.say(SMS_B, unknown_ticket(), channel="sms")
    assert not_yours.result is LookupResult.NOT_OWNER and not_found.result is LookupResult.NOT_FOUND
    assert not_yours.messages == not_found.messages
    # The SMS sender id is enough when the metadata carries no phone.
    meta_less = await env.service.handle(SMS_A, "sms", ticket, {})
    assert meta_less.result is LookupResult.SHOWN
    assert (SMS_A, ticket, "sms_sender", True) in await bindings(env)
    # Over SMS, 4 digits mean nothing: there is no verification step.
    assert (await env.say(SMS_B, "5678", channel="sms")).result is LookupResult.NO_PENDING
    # Without a number, the case this SMS number already saw is answered (checked against the sender again).
    assert (await env.say(SMS_A, "我的件办好了吗", channel="sms")).result is LookupResult.SHOWN
    assert (await env.say(SMS_B, "我的件办好了吗", channel="sms")).result is LookupResult.ASK_TICKET


async def test_enumeration_hits_the_rate_limit(env: Env) -> None:
    own = (await env.reference.create(phone=OTHER_PHONE))["ticket_no"]
    for n in range(5):
        result = await env.say(SMS_B, unknown_ticket(n), channel="sms")
        assert result.result is LookupResult.NOT_FOUND
    calls = await env.reference.case_calls()
    blocked = await env.say(SMS_B, own, channel="sms")  # even the citizen's own case, during the cool-down
    assert blocked.result is LookupResult.RATE_LIMITED
    assert "1小时后再试" in blocked.messages[0] and CENTER_PHONE in blocked.messages[0]
    assert await env.reference.case_calls() == calls  # the backend is not asked any more
    assert (await env.say(SMS_B, unknown_ticket(9), channel="sms")).result is LookupResult.RATE_LIMITED
    assert (await env.audit())[-1][3] == "rate_limited"
    # Another citizen is not affected.
    ticket = (await env.reference.create())["ticket_no"]
    assert (await env.say(SMS_A, ticket, channel="sms")).result is LookupResult.SHOWN


async def test_guessing_digits_locks_the_ticket_across_accounts(env: Env) -> None:
    ticket = (await env.reference.create())["ticket_no"]
    assert (await env.say(WX_A, f"{ticket} {APPLICANT_PHONE[-4:]}")).result is LookupResult.SHOWN
    for n in range(5):  # five accounts, one wrong guess each: no account reaches its own limit
        sender = f"wx:oGuess{n:022d}"
        await env.say(sender, ticket)
        assert (await env.say(sender, f"{1000 + n}")).result is LookupResult.WRONG_DIGITS
    # The ticket is locked for the last 4 digits: a new account is asked for the whole number instead …
    fresh = await env.say("wx:oGuessNext000000000000000", ticket)
    assert fresh.result is LookupResult.VERIFY_REQUESTED and "11位手机号码" in fresh.messages[0]
    assert (
        await env.say("wx:oGuessNext000000000000000", APPLICANT_PHONE[-4:])
    ).result is not LookupResult.SHOWN
    # … so the applicant, on a new phone or account, still gets in with it (strangers cannot lock them out),
    applicant = "wx:oApplicantNewPhone00000000"
    assert (await env.say(applicant, ticket)).result is LookupResult.VERIFY_REQUESTED
    assert (await env.say(applicant, APPLICANT_PHONE)).result is LookupResult.SHOWN
    # and the applicant's bound account still sees the case.
    assert (await env.say(WX_A, ticket)).result is LookupResult.SHOWN


async def test_wrong_digits_five_times_cool_down_then_expire(env: Env) -> None:
    env.configure(cooldown=0.6)
    ticket = (await env.reference.create())["ticket_no"]
    await env.say(WX_B, ticket)
    for n in range(5):
        assert (await env.say(WX_B, f"{2000 + n}")).result is LookupResult.WRONG_DIGITS
    assert (await env.say(WX_B, APPLICANT_PHONE[-4:])).result is LookupResult.RATE_LIMITED
    assert "1分钟后再试" in (await env.say(WX_B, ticket)).messages[0]
    await asyncio.sleep(0.7)
    assert (await env.say(WX_B, ticket)).result is LookupResult.VERIFY_REQUESTED
    assert (await env.say(WX_B, APPLICANT_PHONE[-4:])).result is LookupResult.SHOWN


async def test_malformed_numbers_are_failures_and_never_stored(env: Env) -> None:
    wrong_check = make_ticket(date.today(), 5)[:-1] + "0"
    if wrong_check == make_ticket(date.today(), 5):
        wrong_check = wrong_check[:-1] + "1"
    first = await env.say(WX_A, f"受理号 {wrong_check}")
    assert first.result is LookupResult.INVALID_TICKET and "15位" in first.messages[0]
    id_number = await env.say(WX_A, f"我的身份证号是{ID_NUMBER}")
    assert id_number.result is LookupResult.INVALID_TICKET
    assert ID_NUMBER not in id_number.messages[0]
    audit = await env.audit()
    assert audit == [
        (WX_A, wrong_check, "lookup", "invalid_ticket"),
        (WX_A, None, "lookup", "invalid_ticket"),
    ]
    for n in range(3):
        await env.say(WX_A, f"12345678901{n}")
    assert (await env.say(WX_A, make_ticket(date.today(), 6))).result is LookupResult.RATE_LIMITED


async def test_prompts_and_listing(env: Env) -> None:
    assert (await env.say(WX_A, "查进度")).result is LookupResult.ASK_TICKET
    assert (await env.say(WX_A, "1234")).result is LookupResult.NO_PENDING
    first = (await env.reference.create())["ticket_no"]
    second = (await env.reference.create("36072200-XK-012"))["ticket_no"]
    for ticket in (first, second):
        await env.say(WX_A, f"{ticket} {APPLICANT_PHONE[-4:]}")
    listed = await env.say(WX_A, "我的件办到哪了")
    assert listed.result is LookupResult.LISTED
    assert "食品经营许可（新办）" in listed.messages[0] and "食品小作坊登记" in listed.messages[0]
    # A ticket carried by the dialogue engine's slot (a menu payload) is used when the text has none.
    slot = await env.service.handle(
        WX_A, "wechat", "", {}, {"ticket_no": f"{second[:8]}-{second[8:14]}-{second[14]}"}
    )
    assert slot.result is LookupResult.SHOWN and slot.ticket_no == second
    assert slot.slots == {"ticket_no": None, "phone": None}


async def test_unsubscribe_and_resubscribe(env: Env) -> None:
    first = (await env.reference.create())["ticket_no"]
    second = (await env.reference.create())["ticket_no"]
    assert (await env.say(WX_A, "取消提醒")).messages[0] == "您目前没有开启进度提醒的办件。"
    for ticket in (first, second):
        shown = await env.say(WX_A, f"{ticket} {APPLICANT_PHONE[-4:]}")
        assert "回复“取消提醒”可关闭提醒" in shown.messages[0]
    one = await env.say(WX_A, f"取消提醒 {first}")
    assert one.result is LookupResult.UNSUBSCRIBED and "20" in one.messages[0]
    assert [n for _, _, _, n in await bindings(env)] == [False, True]
    everything = await env.say(WX_A, "不要再提醒我了")
    assert everything.result is LookupResult.UNSUBSCRIBED
    assert [n for _, _, _, n in await bindings(env)] == [False, False]
    shown = await env.say(WX_A, first)
    assert shown.result is LookupResult.SHOWN and "取消提醒" not in shown.messages[0]  # the opt-out sticks
    back = await env.say(WX_A, "开启提醒")
    assert back.result is LookupResult.RESUBSCRIBED
    assert [n for _, _, _, n in await bindings(env)] == [True, True]


async def test_backend_down_gives_a_polite_answer_in_time(env: Env) -> None:
    ticket = (await env.reference.create())["ticket_no"]
    await env.say(WX_A, ticket)
    await env.reference.fault(delay=3.0, times=-1, path_prefix="/api/v1/cases/")
    started = time.monotonic()
    down = await env.say(WX_A, APPLICANT_PHONE[-4:])
    assert time.monotonic() - started < 2.0  # well within the WeChat deadline
    assert down.result is LookupResult.UNAVAILABLE
    assert "暂时无法查询" in down.messages[0] and CENTER_PHONE in down.messages[0]
    await env.reference.fault(times=0)
    # The pending verification survived: the digits alone now work.
    assert (await env.say(WX_A, APPLICANT_PHONE[-4:])).result is LookupResult.SHOWN
    # A bound case answers with the window's own phone while the backend is down.
    await env.reference.fault(status=500, times=-1)
    env.adapter.settings = dataclasses.replace(env.adapter.settings, cache_ttl=0)
    bound_down = await env.say(WX_A, ticket)
    assert bound_down.result is LookupResult.UNAVAILABLE and "0797-3312315" in bound_down.messages[0]
    rendered = await Metrics(env.redis).render()
    assert 'govbot_progress_lookups_total{channel="wechat",result="unavailable"} 2' in rendered
    assert [r[3] for r in await env.audit()].count("unavailable") == 2


async def test_logs_are_masked(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    ticket = (await env.reference.create())["ticket_no"]
    await env.say(WX_A, ticket)
    await env.say(WX_A, "0000")
    await env.say(WX_A, APPLICANT_PHONE[-4:])
    await env.say(SMS_A, ticket, channel="sms")
    await env.reference.fault(status=503, times=-1)
    await env.say(SMS_B, unknown_ticket(), channel="sms")
    formatter = JsonFormatter()
    # Our own loggers (the reference backend's access log is another process's in production).
    lines = "\n".join(formatter.format(r) for r in caplog.records if r.name.startswith("bot."))
    assert "progress" in lines and "20" in lines
    for secret in (APPLICANT, APPLICANT_PHONE, OTHER_PHONE, ID_NUMBER, ticket, WX_A.split(":")[1]):
        assert secret not in lines, secret
    assert "wx:oAlic***" in lines and "138****5678" in lines
