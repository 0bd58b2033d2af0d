"""The outbound ledger against the Twilio fake over real HTTP (twilio's own async client), on SQLite and,
with TEST_POSTGRES_URL, PostgreSQL: every error path, callbacks before the send call returns, repeated and
stale callbacks, crashes between the ledger write and the provider call, and opt-out on every path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.core.metrics import Metrics
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from sms_gateway.models import LedgerStatus, Purpose, Via
from sms_gateway.outbox import BatchItem, LedgerEntry, SmsOutbox
from sms_gateway.provider import DeliveryState, OutboundRequest, RetryLater, SendReceipt, StatusUpdate
from sms_gateway.twilio.fake import HttpFailure, NumberRule
from tests.support.sms import FROM_NUMBER, OTHER_PHONE, PHONE, SmsHarness, start_harness

S = LedgerStatus
SIG = "【县行政服务中心】"


@pytest.fixture
async def sms(redis_client, database_url):
    started: list[SmsHarness] = []

    async def make(**kwargs: Any) -> SmsHarness:
        harness = await start_harness(redis_client, database_url, **kwargs)
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await harness.close()


async def status_of(harness: SmsHarness, ledger_id: str) -> str:
    entry = await harness.outbox.get(ledger_id)
    assert entry is not None
    return entry.status


async def reaches(harness: SmsHarness, ledger_id: str, *statuses: str, within: float = 5.0) -> LedgerEntry:
    async def check() -> bool:
        return await status_of(harness, ledger_id) in statuses

    assert await harness.wait_for(check, within), f"{await status_of(harness, ledger_id)} not in {statuses}"
    entry = await harness.outbox.get(ledger_id)
    assert entry is not None
    return entry


def fail_next(
    harness: SmsHarness,
    op: str,
    status: int | None,
    *,
    create: bool = False,
    delay: float = 0.0,
    times: int = 1,
) -> None:
    harness.fake.failures.append(HttpFailure(op, status, None, delay, create, times))


class Crash(BaseException):
    """The process dying at a given point (not an Exception: nothing may catch it)."""


# ---------------------------------------------------------------------------------------------- happy path


async def test_a_message_is_written_before_the_call_and_tracked_to_delivered(sms, monkeypatch) -> None:
    harness = await sms()
    provider = harness.outbox.provider
    real_send = provider.send
    seen: list[tuple[str, int]] = []

    async def send(request: OutboundRequest) -> SendReceipt:
        # while the provider is being called the row is already committed, claimed and counted
        seen.append((await status_of(harness, request.ledger_id), request.attempt))
        return await real_send(request)

    monkeypatch.setattr(provider, "send", send)
    (entry,) = await harness.outbox.send("13812345678", "您的办件已办结，请到3号窗口领取。")
    assert seen == [(S.SENDING, 1)]
    assert entry.status == S.ACCEPTED and entry.attempts == 1 and entry.recipient == PHONE
    (message,) = harness.sent()
    assert message.body == f"{SIG}您的办件已办结，请到3号窗口领取。"
    assert message.params["From"] == FROM_NUMBER and message.params["Attempt"] == "1"
    assert message.status_callback == f"{harness.base_url}/sms/twilio/status?lid={entry.id}&n=1"
    assert entry.provider_sid == message.sid
    delivered = await reaches(harness, entry.id, S.DELIVERED)
    assert delivered.provider_sid == message.sid
    events = await harness.outbox.events(entry.id)
    assert [(e[1], e[4]) for e in events] == [
        ("queued", "receipt"),
        ("sent", "callback"),
        ("delivered", "callback"),
    ]
    assert all(cb["response_status"] == 200 for cb in harness.fake.callbacks)


async def test_a_long_notification_is_sent_whole_in_order(sms) -> None:
    harness = await sms(max_segments_per_message=3)
    text = "".join(f"第{i}项：请携带身份证原件及复印件一份到窗口办理。" for i in range(1, 21))
    entries = await harness.outbox.send(PHONE, text)
    assert len(entries) >= 3 and [e.part for e in entries] == list(range(1, len(entries) + 1))
    bodies = [m.body for m in harness.sent()]
    assert bodies == [e.body for e in entries]
    assert all(
        b.startswith(SIG) and harness.outbox.composer.message(b[len(SIG) :]).segments <= 3 for b in bodies
    )
    assert "".join(b.removeprefix(SIG).replace("\n", "") for b in bodies) == text


async def test_a_bad_number_is_refused_before_writing(sms) -> None:
    harness = await sms()
    with pytest.raises(ValueError):
        await harness.outbox.send("12345", "x")
    assert await harness.outbox.entries() == []


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("code", "opts_out"), [(21610, True), (21614, False)])
async def test_refused_at_send_time(sms, code: int, opts_out: bool) -> None:
    harness = await sms()
    harness.fake.numbers[PHONE] = NumberRule(code)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.FAILED and entry.error_code == code
    assert await harness.channel.optouts.is_opted_out(PHONE) is opts_out
    harness.advance(3600)
    await harness.outbox.run_due()
    assert harness.fake.stats["create"] == 1 and harness.sent() == []
    (again,) = await harness.outbox.send(PHONE, "第二条通知")
    assert again.status == (S.SUPPRESSED if opts_out else S.FAILED)
    assert harness.fake.stats["create"] == (1 if opts_out else 2)


@pytest.mark.parametrize("code", [30005, 30006])
async def test_permanent_failures_in_callbacks_are_not_retried(sms, code: int) -> None:
    harness = await sms()
    harness.fake.numbers[PHONE] = NumberRule(code)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    failed = await reaches(harness, entry.id, S.FAILED)
    assert failed.error_code == code and failed.attempts == 1
    harness.advance(3600)
    await harness.outbox.run_due()
    assert len(harness.sent()) == 1
    assert not await harness.channel.optouts.is_opted_out(PHONE)


async def test_21610_in_a_callback_opts_the_number_out(sms) -> None:
    harness = await sms()
    harness.fake.callback_delay = 30  # only our hand-made callback arrives
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.provider_sid
    assert await harness.status_callback(entry.id, 1, entry.provider_sid, "failed", error_code=21610) == 200
    assert (await harness.outbox.get(entry.id)).status == S.FAILED
    assert await harness.channel.optouts.is_opted_out(PHONE)


@pytest.mark.parametrize("code", [30003, 30008])
async def test_transient_failures_get_at_most_two_delayed_retries(sms, code: int) -> None:
    harness = await sms(retry_delays=(300.0, 600.0))
    harness.fake.numbers[PHONE] = NumberRule(code)  # never reachable
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    await reaches(harness, entry.id, S.PENDING)
    await harness.outbox.run_due()
    assert len(harness.sent()) == 1  # the first retry waits its delay
    harness.advance(301)
    await harness.outbox.run_due()
    assert len(harness.sent()) == 2
    await reaches(harness, entry.id, S.PENDING)
    harness.advance(301)
    await harness.outbox.run_due()
    assert len(harness.sent()) == 2  # the second delay is longer
    harness.advance(300)
    await harness.outbox.run_due()
    final = await reaches(harness, entry.id, S.FAILED)
    assert final.attempts == 3 and final.error_code == code
    harness.advance(3600)
    await harness.outbox.run_due()
    assert len(harness.sent()) == 3
    assert [m.attempt for m in harness.sent()] == [1, 2, 3]


async def test_a_transient_failure_then_delivery(sms) -> None:
    harness = await sms()
    harness.fake.numbers[PHONE] = NumberRule(30003, times=1)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    await reaches(harness, entry.id, S.PENDING)
    await harness.outbox.run_due()
    final = await reaches(harness, entry.id, S.DELIVERED)
    first, second = harness.sent()
    assert first.status == "undelivered" and second.status == "delivered"
    assert final.attempts == 2 and final.provider_sid == second.sid
    assert second.status_callback.endswith(f"lid={entry.id}&n=2")


# ---------------------------------------------------------------------------------- 429 / 5xx / timeouts


async def test_429_backs_off_and_retries(sms) -> None:
    harness = await sms(throttle_backoff=30.0)
    fail_next(harness, "create", 429)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.PENDING and entry.error_code == 20429 and harness.sent() == []
    await harness.outbox.run_due()
    assert harness.fake.stats["create"] == 1  # still backing off
    harness.advance(31)
    await harness.outbox.run_due()
    assert (await harness.outbox.get(entry.id)).status == S.ACCEPTED
    assert len(harness.sent()) == 1 and harness.fake.stats["list"] == 0  # 429 needs no reconciliation


async def test_429_gives_up_after_its_retries(sms) -> None:
    harness = await sms(throttle_max_retries=2)
    fail_next(harness, "create", 429, times=10)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    for _ in range(4):
        harness.advance(600)
        await harness.outbox.run_due()
    assert (await harness.outbox.get(entry.id)).status == S.FAILED
    assert harness.fake.stats["create"] == 3 and harness.sent() == []


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_without_processing_is_looked_up_then_resent_once(sms, status: int) -> None:
    harness = await sms()
    fail_next(harness, "create", status)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.UNKNOWN and harness.sent() == []
    # several gateway workers sweep at once: one lookup wins, one resend
    await asyncio.gather(harness.outbox.run_due(), restarted(harness).run_due(), restarted(harness).run_due())
    assert harness.fake.stats["list"] == 1 and harness.fake.stats["create"] == 2  # looked up, then resent
    await reaches(harness, entry.id, S.DELIVERED)
    assert len(harness.sent()) == 1


async def test_5xx_after_processing_is_adopted_not_resent(sms) -> None:
    harness = await sms()
    harness.fake.callback_delay = 30  # callbacks too late to help: only the lookup can tell
    fail_next(harness, "create", 500, create=True)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.UNKNOWN and len(harness.sent()) == 1
    await harness.outbox.run_due()
    settled = await harness.outbox.get(entry.id)
    assert settled is not None and settled.status == S.ACCEPTED
    assert settled.provider_sid == harness.sent()[0].sid
    assert harness.fake.stats["create"] == 1
    assert [e[4] for e in await harness.outbox.events(entry.id)] == ["lookup"]


async def test_5xx_after_processing_settled_by_callbacks(sms) -> None:
    harness = await sms(reconcile_delay=60.0)
    fail_next(harness, "create", 502, create=True)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.UNKNOWN
    settled = await reaches(harness, entry.id, S.DELIVERED)  # the callbacks carry the ledger id
    assert settled.provider_sid == harness.sent()[0].sid
    harness.advance(120)
    await harness.outbox.run_due()
    assert harness.fake.stats["create"] == 1 and harness.fake.stats["list"] == 0


async def test_timeout_after_acceptance_is_adopted_not_resent(sms) -> None:
    harness = await sms(send_timeout=0.3)
    harness.fake.callback_delay = 30
    fail_next(harness, "create", None, create=True, delay=1.5)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.UNKNOWN
    await harness.outbox.run_due()
    settled = await harness.outbox.get(entry.id)
    assert settled is not None and settled.status == S.ACCEPTED and settled.provider_sid
    assert len(harness.sent()) == 1 and harness.fake.stats["create"] == 1


async def test_timeout_without_processing_is_resent_once(sms) -> None:
    harness = await sms(send_timeout=0.3)
    fail_next(harness, "create", 503, delay=1.0)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.UNKNOWN
    await harness.outbox.run_due()
    await reaches(harness, entry.id, S.DELIVERED)
    assert len(harness.sent()) == 1 and harness.fake.stats["create"] == 2


async def test_a_failing_lookup_never_leads_to_a_resend(sms) -> None:
    harness = await sms()
    fail_next(harness, "create", 500)
    fail_next(harness, "list", 503, times=2)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    await harness.outbox.run_due()
    assert await status_of(harness, entry.id) == S.UNKNOWN and harness.fake.stats["create"] == 1
    harness.advance(60)
    await harness.outbox.run_due()
    assert await status_of(harness, entry.id) == S.UNKNOWN and harness.fake.stats["create"] == 1
    harness.advance(60)
    await harness.outbox.run_due()
    await reaches(harness, entry.id, S.DELIVERED)
    assert harness.fake.stats["list"] == 3 and len(harness.sent()) == 1


async def test_an_older_identical_message_is_not_taken_for_this_one(sms) -> None:
    harness = await sms()
    (older,) = await harness.outbox.send(PHONE, "请于明日上午到窗口领取证件。")
    await reaches(harness, older.id, S.DELIVERED)
    fail_next(harness, "create", 500)
    (entry,) = await harness.outbox.send(PHONE, "请于明日上午到窗口领取证件。")
    await harness.outbox.run_due()
    settled = await reaches(harness, entry.id, S.DELIVERED)
    assert len(harness.sent()) == 2 and settled.provider_sid != older.provider_sid


# ---------------------------------------------------------------------------------------------- callbacks


async def test_callbacks_arriving_before_the_send_call_returns(sms) -> None:
    harness = await sms(fake_options={"callbacks_before_response": True})
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.DELIVERED  # the late receipt did not move it back to "accepted"
    assert entry.provider_sid == harness.sent()[0].sid
    events = await harness.outbox.events(entry.id)
    assert [(e[1], e[4]) for e in events] == [
        ("sent", "callback"),
        ("delivered", "callback"),
        ("queued", "receipt"),
    ]


async def test_a_failure_callback_before_the_send_call_returns(sms) -> None:
    harness = await sms(fake_options={"callbacks_before_response": True})
    harness.fake.numbers[PHONE] = NumberRule(30003, times=1)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.PENDING  # retry scheduled, not overwritten by the receipt
    await harness.outbox.run_due()
    final = await harness.outbox.get(entry.id)
    assert final is not None and final.status == S.DELIVERED and final.attempts == 2
    assert len(harness.sent()) == 2


async def test_duplicate_callbacks_change_nothing(sms) -> None:
    harness = await sms()
    harness.fake.duplicate_callbacks = True
    harness.fake.numbers[PHONE] = NumberRule(30003, times=1)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    await reaches(harness, entry.id, S.PENDING)
    await harness.settle()
    await harness.outbox.run_due()
    await reaches(harness, entry.id, S.DELIVERED)
    await harness.settle()
    assert len(harness.sent()) == 2  # one retry, although the failure was reported twice
    assert harness.fake.stats["callbacks"] == 8
    events = await harness.outbox.events(entry.id)
    assert len(events) == len({(e[0], e[1]) for e in events}) == 6  # receipt+sent+final, per attempt


async def test_replayed_out_of_order_and_stale_callbacks(sms) -> None:
    harness = await sms()
    harness.fake.numbers[PHONE] = NumberRule(30003, times=1)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    await reaches(harness, entry.id, S.PENDING)
    await harness.outbox.run_due()
    final = await reaches(harness, entry.id, S.DELIVERED)
    first_sid, second_sid = (m.sid for m in harness.sent())
    before = await harness.outbox.events(entry.id)
    # a replay of the last callback
    assert await harness.status_callback(entry.id, 2, second_sid, "delivered") == 200
    # an out-of-order "sent" after "delivered"
    assert await harness.status_callback(entry.id, 2, second_sid, "sent") == 200
    # a late report about the first attempt
    assert await harness.status_callback(entry.id, 1, first_sid, "failed", error_code=30003) == 200
    after = await harness.outbox.get(entry.id)
    assert after is not None
    assert (after.status, after.provider_sid, after.attempts) == (S.DELIVERED, second_sid, final.attempts)
    assert len(await harness.outbox.events(entry.id)) == len(before) + 1  # only the new (stale) report
    replay = StatusUpdate(second_sid, DeliveryState.DELIVERED, "delivered", ledger_id=entry.id, attempt=2)
    assert await harness.outbox.apply(replay) == "duplicate"
    late = StatusUpdate(first_sid, DeliveryState.FAILED, "canceled", ledger_id=entry.id, attempt=1)
    assert await harness.outbox.apply(late) == "stale"
    regress = StatusUpdate(second_sid, DeliveryState.ACCEPTED, "sending", ledger_id=entry.id, attempt=2)
    assert await harness.outbox.apply(regress) == "ignored"


async def test_status_callbacks_are_signature_checked(sms) -> None:
    harness = await sms()
    harness.fake.callback_delay = 30
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.provider_sid
    forged = await harness.status_callback(entry.id, 1, entry.provider_sid, "failed", signature="Zm9yZ2Vk")
    assert forged == 403
    assert await status_of(harness, entry.id) == S.ACCEPTED
    assert await harness.status_callback("0" * 32, 1, "SM" + "0" * 32, "delivered") == 200  # unknown row
    # Twilio's Messaging Service callbacks may lack our query string: matched by the message sid
    assert await harness.status_callback(None, None, entry.provider_sid, "delivered") == 200
    assert await status_of(harness, entry.id) == S.DELIVERED


# ---------------------------------------------------------------------------------------------- crashes


def restarted(harness: SmsHarness) -> SmsOutbox:
    """A new gateway process on the same database (the old one died)."""
    return SmsOutbox(
        harness.settings,
        harness.sessions,
        harness.outbox.provider,
        harness.channel.optouts,
        Metrics(harness.redis),
        clock=harness.now,
    )


async def test_crash_between_ledger_write_and_provider_call(sms) -> None:
    harness = await sms()
    messages = harness.outbox.composer.whole(["您预约的业务明天上午9点办理。"])
    (entry,) = await harness.outbox.write(PHONE, messages, purpose=Purpose.NOTIFICATION)  # ...and dies
    assert entry.status == S.PENDING and harness.sent() == []
    await harness.outbox.run_due()
    assert harness.sent() == []  # within its lease the writer may still be sending it
    harness.advance(60)
    new, other_worker = restarted(harness), restarted(harness)
    await asyncio.gather(new.run_due(), other_worker.run_due(), harness.outbox.run_due())
    await new.run_due()
    assert len(harness.sent()) == 1
    await reaches(harness, entry.id, S.DELIVERED)
    assert harness.fake.stats["list"] == 0  # a pending row was certainly never sent: no lookup needed


async def test_crash_after_the_claim_before_the_call(sms, monkeypatch) -> None:
    harness = await sms()

    async def die(request: OutboundRequest) -> SendReceipt:
        raise Crash

    monkeypatch.setattr(harness.outbox.provider, "send", die)
    with pytest.raises(Crash):
        await harness.outbox.send(PHONE, "办件通知")
    (entry,) = await harness.ledger()
    assert entry.status == S.SENDING and harness.sent() == []
    monkeypatch.undo()
    await harness.outbox.run_due()
    assert harness.sent() == []  # lease not expired yet
    harness.advance(60)
    await restarted(harness).run_due()
    await reaches(harness, entry.id, S.DELIVERED)
    assert len(harness.sent()) == 1 and harness.fake.stats["list"] == 1


async def test_crash_after_the_provider_accepted(sms, monkeypatch) -> None:
    harness = await sms()
    harness.fake.callback_delay = 30
    real_send = harness.outbox.provider.send

    async def accept_then_die(request: OutboundRequest) -> SendReceipt:
        await real_send(request)
        raise Crash

    monkeypatch.setattr(harness.outbox.provider, "send", accept_then_die)
    with pytest.raises(Crash):
        await harness.outbox.send(PHONE, "办件通知")
    monkeypatch.undo()
    (entry,) = await harness.ledger()
    assert entry.status == S.SENDING and len(harness.sent()) == 1
    harness.advance(60)
    await restarted(harness).run_due()
    settled = await harness.outbox.get(entry.id)
    assert settled is not None and settled.status == S.ACCEPTED
    assert settled.provider_sid == harness.sent()[0].sid
    assert len(harness.sent()) == 1 and harness.fake.stats["create"] == 1


async def test_an_unconfirmed_twiml_reply_is_reconciled_later(sms) -> None:
    harness = await sms()
    status, _ = await harness.inbound("你好")  # answered with TwiML that Twilio never acted on
    assert status == 200
    (entry,) = await harness.ledger()
    assert (entry.status, entry.via) == (S.SENDING, Via.SYNC)
    harness.advance(5 * 60)
    await harness.outbox.run_due()
    assert harness.sent() == []  # the TwiML lease is long
    harness.advance(6 * 60)
    await harness.outbox.run_due()
    await reaches(harness, entry.id, S.DELIVERED)
    (message,) = harness.sent()
    assert message.body == f"{SIG}收到：你好" and message.direction == "outbound-api"


# ---------------------------------------------------------------------------------------------- opt-out


async def _path_async_reply(harness: SmsHarness) -> list[LedgerEntry]:
    status, _ = await harness.inbound("你好")  # the answer misses the deadline...
    assert status == 200
    await harness.channel.optouts.opt_out(PHONE, source="staff")  # ...and the citizen opts out meanwhile
    await harness.settle()
    return await harness.ledger()


async def _path_notification(harness: SmsHarness) -> list[LedgerEntry]:
    await harness.channel.optouts.opt_out(PHONE, source="keyword", keyword="T")
    return await harness.outbox.send(PHONE, "办件通知", purpose=Purpose.NOTIFICATION)


async def _path_broadcast(harness: SmsHarness) -> list[LedgerEntry]:
    await harness.channel.optouts.opt_out(PHONE, source="keyword", keyword="退订")
    return await harness.outbox.send(PHONE, "普法宣传", purpose=Purpose.BROADCAST, campaign_id="c-1")


async def _path_sync_reply(harness: SmsHarness) -> list[LedgerEntry]:
    await harness.channel.optouts.opt_out(PHONE, source="keyword", keyword="T")
    messages = harness.outbox.composer.whole(["同步回复"])
    return await harness.outbox.write(PHONE, messages, purpose=Purpose.REPLY, via=Via.SYNC)


async def _path_transient_retry(harness: SmsHarness) -> list[LedgerEntry]:
    harness.fake.numbers[PHONE] = NumberRule(30003, times=1)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    await reaches(harness, entry.id, S.PENDING)
    await harness.channel.optouts.opt_out(PHONE, source="keyword", keyword="T")
    await harness.outbox.run_due()
    return await harness.ledger()


async def _path_reconcile_resend(harness: SmsHarness) -> list[LedgerEntry]:
    fail_next(harness, "create", 500)
    (entry,) = await harness.outbox.send(PHONE, "办件通知")
    assert entry.status == S.UNKNOWN
    await harness.channel.optouts.opt_out(PHONE, source="keyword", keyword="T")
    await harness.outbox.run_due()
    return await harness.ledger()


async def _path_crash_recovery(harness: SmsHarness) -> list[LedgerEntry]:
    messages = harness.outbox.composer.whole(["办件通知"])
    await harness.outbox.write(PHONE, messages, purpose=Purpose.NOTIFICATION)
    await harness.channel.optouts.opt_out(PHONE, source="keyword", keyword="T")
    harness.advance(60)
    await restarted(harness).run_due()
    return await harness.ledger()


OPT_OUT_PATHS = {
    "late reply": _path_async_reply,
    "notification": _path_notification,
    "broadcast": _path_broadcast,
    "synchronous reply": _path_sync_reply,
    "transient retry": _path_transient_retry,
    "reconcile and resend": _path_reconcile_resend,
    "crash recovery": _path_crash_recovery,
}


@pytest.mark.parametrize("path", list(OPT_OUT_PATHS))
async def test_opt_out_is_respected_on_every_path(sms, path: str) -> None:
    harness = await sms(dialogue=ScriptedDialogue(delay=0.3), sync_reply_deadline=0.05)
    sent_before = len(harness.sent())
    entries = await OPT_OUT_PATHS[path](harness)
    await harness.settle()
    assert entries and entries[-1].status == S.SUPPRESSED, path
    assert (await harness.ledger())[-1].status == S.SUPPRESSED
    assert len(harness.sent()) <= max(sent_before, 1)  # at most the attempt made before the opt-out
    created = harness.fake.stats["create"]
    harness.advance(3600)
    await harness.outbox.run_due()
    assert harness.fake.stats["create"] == created


# ---------------------------------------------------------------------------------------------- broadcasts


async def test_a_broadcast_is_sent_once_per_campaign_and_recipient(sms) -> None:
    harness = await sms()
    first = await harness.outbox.send(
        PHONE, "【普法】新修订的条例将于下月施行。", purpose=Purpose.BROADCAST, campaign_id="c-7"
    )
    again = await harness.outbox.send(
        PHONE, "【普法】新修订的条例将于下月施行。", purpose=Purpose.BROADCAST, campaign_id="c-7"
    )
    assert [e.id for e in first] == [e.id for e in again]
    (message,) = harness.sent()
    assert message.body == f"{SIG}〔普法〕新修订的条例将于下月施行。回T退订"
    await harness.outbox.send(
        OTHER_PHONE, "【普法】新修订的条例将于下月施行。", purpose=Purpose.BROADCAST, campaign_id="c-7"
    )
    await harness.outbox.send(PHONE, "另一期内容", purpose=Purpose.BROADCAST, campaign_id="c-8")
    assert len(harness.sent(to=None)) == 3
    await harness.settle()
    counts = await harness.outbox.campaign_counts("c-7")
    assert sum(counts.values()) == 2 and set(counts) <= {S.ACCEPTED, S.SENT, S.DELIVERED}
    with pytest.raises(ValueError):
        await harness.outbox.send(PHONE, "x", purpose=Purpose.BROADCAST)


async def test_the_sweep_sends_queued_replies_and_leaves_broadcasts_to_their_workers(sms) -> None:
    harness = await sms()
    phones = [f"+86137000000{i:02d}" for i in range(5)]
    for phone in phones:
        await harness.outbox.send(
            phone, "普法宣传", purpose=Purpose.BROADCAST, campaign_id="c-9", dispatch=False
        )
    await harness.outbox.send(PHONE, "办件通知", dispatch=False)
    assert harness.sent(to=None) == []
    assert await harness.outbox.run_due() == 1
    assert [m.to for m in harness.sent(to=None)] == [PHONE]
    # broadcast rows wait for a broadcast worker, which holds them while the campaign is paused
    assert set(await harness.outbox.campaign_counts("c-9")) == {S.PENDING}


# ---------------------------------------------------------------------------------------------- bulk path


def batch(harness: SmsHarness, phones: list[str], campaign: str = "c-b") -> list[BatchItem]:
    (message,) = harness.outbox.composer.whole(["【普法】宪法宣传周，欢迎参加普法活动。"], opt_out_hint=True)
    return [BatchItem(p, message, f"broadcast:{campaign}:{p}") for p in phones]


async def test_a_batch_is_written_claimed_sent_and_settled_together(sms, monkeypatch) -> None:
    harness = await sms()
    harness.fake.callback_delay = 30  # status callbacks come later: the receipts alone settle the rows
    ok = [f"+8613700000{i:03d}" for i in range(8)]
    opted_before, unsubscribed, throttled = "+8613711111111", "+8613722222222", "+8613733333333"
    await harness.channel.optouts.opt_out(opted_before, source="keyword", keyword="T")
    harness.fake.unsubscribed.add(unsubscribed)  # Twilio answers 21610 at create time
    real_send = harness.outbox.provider.send
    seen: dict[str, tuple[str, int]] = {}

    async def send(request: OutboundRequest) -> SendReceipt:
        seen[request.to] = (await status_of(harness, request.ledger_id), request.attempt)
        if request.to == throttled:  # what the adapter raises for Twilio's 429 (tested with the fake)
            raise RetryLater("HTTP 429 code 20429", 20429)
        return await real_send(request)

    monkeypatch.setattr(harness.outbox.provider, "send", send)
    items = batch(harness, [*ok, opted_before, unsubscribed, throttled])
    report = await harness.outbox.send_batch(items, purpose=Purpose.BROADCAST, campaign_id="c-b")
    assert report == {"accepted": 8, "suppressed": 1, "rejected": 1, "throttled": 1}
    # every row was committed and claimed before its provider call; the opted-out number was never called
    assert opted_before not in seen and set(seen.values()) == {(S.SENDING, 1)}
    rows = {e.recipient: e for e in await harness.outbox.entries(campaign_id="c-b")}
    assert {rows[p].status for p in ok} == {S.ACCEPTED}
    assert all(rows[p].provider_sid for p in ok)
    assert rows[opted_before].status == S.SUPPRESSED and rows[opted_before].attempts == 0
    assert rows[unsubscribed].status == S.FAILED and rows[unsubscribed].error_code == 21610
    assert await harness.channel.optouts.is_opted_out(unsubscribed)
    assert rows[throttled].status == S.PENDING and rows[throttled].attempts == 1
    assert [(e[1], e[4]) for e in await harness.outbox.events(rows[ok[0]].id)] == [("queued", "receipt")]
    assert sorted(m.to for m in harness.sent(to=None)) == sorted(ok)
    # the same batch again (a redelivered queue entry): nothing is written or sent twice
    again = await harness.outbox.send_batch(items, purpose=Purpose.BROADCAST, campaign_id="c-b")
    assert again == {"existing": 11}
    assert len(harness.sent(to=None)) == 8


async def test_callbacks_that_beat_the_batch_settlement_are_never_undone(sms) -> None:
    harness = await sms()
    harness.fake.callbacks_before_response = True  # sent and delivered reported before the 201 arrives
    phones = [f"+8613600000{i:03d}" for i in range(5)]
    report = await harness.outbox.send_batch(
        batch(harness, phones), purpose=Purpose.BROADCAST, campaign_id="c-b"
    )
    assert report == {"accepted": 5}
    for entry in await harness.outbox.entries(campaign_id="c-b"):
        assert entry.status == S.DELIVERED and entry.provider_sid
        statuses = [e[1] for e in await harness.outbox.events(entry.id)]
        assert sorted(statuses) == ["delivered", "queued", "sent"]  # the receipt's "queued" recorded once


async def test_a_crash_inside_a_batch_leaves_rows_to_reconcile_never_to_resend_blind(
    sms, monkeypatch
) -> None:
    harness = await sms()
    real_send = harness.outbox.provider.send

    async def accept_then_die(request: OutboundRequest) -> SendReceipt:
        await real_send(request)
        raise Crash  # the worker dies after Twilio accepted, before the outcomes are recorded

    monkeypatch.setattr(harness.outbox.provider, "send", accept_then_die)
    phones = [f"+8613500000{i:03d}" for i in range(3)]
    with pytest.raises(Crash):
        await harness.outbox.send_batch(batch(harness, phones), purpose=Purpose.BROADCAST, campaign_id="c-b")
    monkeypatch.undo()
    assert {e.status for e in await harness.outbox.entries(campaign_id="c-b")} == {S.SENDING}
    assert len(harness.sent(to=None)) == 3
    harness.advance(60)
    await restarted(harness).run_due()
    await harness.settle()
    entries = await harness.outbox.entries(campaign_id="c-b")
    assert {e.status for e in entries} <= {S.ACCEPTED, S.SENT, S.DELIVERED}
    assert len(harness.sent(to=None)) == 3  # looked up and adopted, none sent again


async def test_the_send_request_is_the_one_twilios_sdk_makes(sms) -> None:
    """The adapter posts Messages.json itself (cheaper per message than the SDK's layers): the fake must
    receive exactly the fields and headers ``Client.messages.create_async`` sends for the same message."""
    harness = await sms()
    provider = harness.outbox.provider
    callback = f"{harness.base_url}/sms/twilio/status?lid=x&n=2"
    request = OutboundRequest("lid-1", 2, PHONE, "办件通知", callback)
    receipt = await provider.send(request)
    await provider._client.messages.create_async(
        to=PHONE, body="办件通知", status_callback=request.status_callback, attempt=2, from_=FROM_NUMBER
    )
    ours, sdks = harness.sent()  # both passed the fake's Basic-auth check
    assert ours.params == sdks.params
    assert receipt.provider_sid == ours.sid and receipt.provider_status == "queued"
    assert receipt.state is DeliveryState.ACCEPTED and receipt.created_at is not None
