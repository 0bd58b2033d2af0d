"""The sending engine in process (worker tasks in the test's event loop) against the Twilio fake running as
its own process: sending, pause/resume/cancel, the sending window with a controllable clock, opt-outs during
the campaign, provider errors (21610, 429, 5xx), scheduled starts and the shared rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import aiohttp
import pytest

from bot.core.phone import to_e164
from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.engine import BroadcastWorker, stream_key
from sms_gateway.broadcast.limiter import Priority, RateLimitedProvider, RateLimiter
from sms_gateway.broadcast.models import CampaignState
from sms_gateway.broadcast.worker import Stack, open_stack
from sms_gateway.models import LedgerStatus
from sms_gateway.provider import DeliveryState, OutboundRequest, SendReceipt, SmsProvider
from tests.support.broadcast import (
    BROADCAST_REDIS_URL,
    fake_messages,
    fake_post,
    fake_twilio_process,
    own_redis,
    phone,
    recipients_csv,
    sms_settings,
)

TEMPLATE = "{姓名}您好：{企业}年报截止日期为6月30日，请及时办理。"


class Clock:
    """A controllable UTC clock (the sending window reads it)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def at_shanghai(hour: int, minute: int = 0) -> datetime:
    # 2026-11-25 hh:mm in Asia/Shanghai (UTC+8) as UTC
    return datetime(2026, 11, 25, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@dataclass
class Env:
    stack: Stack
    control: aiohttp.ClientSession
    clock: Clock
    workers: list[asyncio.Task[None]]
    stops: list[asyncio.Event]

    @property
    def service(self) -> Any:
        return self.stack.service

    def start_worker(self, concurrency: int = 4) -> BroadcastWorker:
        w = BroadcastWorker(
            self.stack.service,
            self.stack.outbox,
            self.stack.redis,
            self.stack.limiter,
            concurrency=concurrency,
            clock=self.clock,
        )
        stop = asyncio.Event()
        self.stops.append(stop)
        self.workers.append(asyncio.create_task(w.run(stop)))
        return w

    async def campaign(self, n: int, *, template: str = TEMPLATE, **kw: Any) -> str:
        c = await self.service.create(
            name="年报提醒", template=template, created_by="alice", purpose="提醒", **kw
        )
        await self.service.set_recipients(c["id"], actor="alice", upload=("list.csv", recipients_csv(n)))
        await self.service.submit(c["id"], "alice")
        await self.service.approve(c["id"], "bob")
        return str(c["id"])


@pytest.fixture
async def env(database_url) -> AsyncIterator[Env]:
    clock = Clock(at_shanghai(10))
    settings = BroadcastSettings(rate=100000, burst=1000, claim_idle=1.0, poll_interval=0.1, concurrency=4)
    async with own_redis(), fake_twilio_process() as base, aiohttp.ClientSession(base_url=base) as control:
        async with open_stack(database_url, BROADCAST_REDIS_URL, sms_settings(base), settings) as stack:
            stack.service.clock = clock
            e = Env(stack, control, clock, [], [])
            try:
                yield e
            finally:
                for s in e.stops:
                    s.set()
                await asyncio.gather(*e.workers, return_exceptions=True)


async def wait_for(check: Callable[[], Any], limit: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def state_of(env: Env, cid: str) -> str:
    return str((await env.service.view(cid))["state"])


async def test_campaign_sends_each_recipient_once_and_completes(env: Env) -> None:
    cid = await env.campaign(50)
    env.start_worker()
    await env.service.start(cid, "bob")

    async def completed() -> bool:
        return await state_of(env, cid) == CampaignState.COMPLETED

    await wait_for(completed, what="completion")
    sent = await fake_messages(env.control)
    assert sorted(m["to"] for m in sent) == sorted(to_e164(phone(i)) for i in range(50))
    body = next(m["body"] for m in sent if m["to"] == to_e164(phone(7)))
    assert body == "【县行政服务中心】张7您好：企业7年报截止日期为6月30日，请及时办理。回T退订"
    progress = await env.service.progress(cid)
    assert progress["sent"] == 50 and progress["queued"] == 0 and progress["in_flight"] == 0
    assert progress["percent"] == 100.0


async def test_pause_resume_cancel_take_effect_within_a_second(env: Env) -> None:
    env.stack.limiter.rate = 40.0  # 40 segments/s: slow enough to pause halfway
    env.stack.limiter.burst = 5
    cid = await env.campaign(200)
    env.start_worker()
    await env.service.start(cid, "bob")

    async def some_sent() -> bool:
        return len(await fake_messages(env.control)) >= 20

    await wait_for(some_sent, what="first sends")
    await env.service.pause(cid, "bob")
    paused_at = time.monotonic()
    await asyncio.sleep(1.0)
    count_after_1s = len(await fake_messages(env.control))
    await asyncio.sleep(1.0)
    assert len(await fake_messages(env.control)) == count_after_1s, "sending continued while paused"
    assert time.monotonic() - paused_at >= 1.0
    progress = await env.service.progress(cid)
    assert progress["state"] == CampaignState.PAUSED and progress["queued"] > 0

    await env.service.resume(cid, "bob")

    async def more_sent() -> bool:
        return len(await fake_messages(env.control)) >= count_after_1s + 20

    await wait_for(more_sent, what="sending after resume")
    await env.service.cancel(cid, "bob", "内容有误")
    await asyncio.sleep(1.0)
    after_cancel = len(await fake_messages(env.control))
    await asyncio.sleep(1.0)
    assert len(await fake_messages(env.control)) == after_cancel, "sending continued after cancel"
    assert after_cancel < 200
    assert await state_of(env, cid) == CampaignState.CANCELLED
    rows = await env.service.results(cid)
    assert sum(r["result"] == "未发送（已取消）" for r in rows) == 200 - after_cancel
    # nobody got it twice
    tos = [m["to"] for m in await fake_messages(env.control)]
    assert len(tos) == len(set(tos))
    with pytest.raises(Exception, match="不能继续"):
        await env.service.resume(cid, "bob")


async def test_sending_window_with_controllable_clock(env: Env) -> None:
    env.clock.now = at_shanghai(20, 59)
    env.stack.limiter.rate = 20.0
    env.stack.limiter.burst = 2
    cid = await env.campaign(60)
    env.start_worker()
    await env.service.start(cid, "bob")

    async def some_sent() -> bool:
        return len(await fake_messages(env.control)) >= 5

    await wait_for(some_sent, what="sending inside the window")
    env.clock.now = at_shanghai(21, 0)  # the window closes
    await asyncio.sleep(0.6)
    closed_count = len(await fake_messages(env.control))
    progress = await env.service.progress(cid)
    assert progress["state"] == CampaignState.SENDING
    assert "将于 11-26 08:00 继续" in progress["waiting_for_window"]
    env.clock.now = at_shanghai(23, 30)
    await asyncio.sleep(1.0)
    assert len(await fake_messages(env.control)) == closed_count
    assert closed_count < 60
    env.clock.now = at_shanghai(8, 0) + timedelta(days=1)  # next morning

    async def completed() -> bool:
        return await state_of(env, cid) == CampaignState.COMPLETED

    await wait_for(completed, what="completion next morning")
    assert len(await fake_messages(env.control)) == 60


async def test_scheduled_campaign_starts_at_its_time(env: Env) -> None:
    cid = await env.campaign(5)
    await env.service.start(cid, "bob", at=env.clock.now + timedelta(hours=1))
    env.start_worker()
    await asyncio.sleep(0.5)
    assert await state_of(env, cid) == CampaignState.SCHEDULED
    assert await fake_messages(env.control) == []
    env.clock.now += timedelta(hours=1)

    async def completed() -> bool:
        return await state_of(env, cid) == CampaignState.COMPLETED

    await wait_for(completed, what="scheduled completion")
    assert len(await fake_messages(env.control)) == 5


async def test_opted_out_before_start_and_during_campaign(env: Env) -> None:
    env.stack.limiter.rate = 30.0
    env.stack.limiter.burst = 2
    cid = await env.campaign(40)
    optouts = env.stack.outbox._optouts
    await optouts.opt_out(to_e164(phone(0)), source="keyword", keyword="TD")  # before start: excluded
    env.start_worker()
    await env.service.start(cid, "bob")
    await optouts.opt_out(to_e164(phone(39)), source="keyword", keyword="退订")  # during: suppressed
    # Twilio's own list: 21610 at send time
    await fake_post(env.control, "/_fake/numbers", {"number": to_e164(phone(38)), "error_code": 21610})

    async def completed() -> bool:
        return await state_of(env, cid) == CampaignState.COMPLETED

    await wait_for(completed, what="completion")
    tos = {m["to"] for m in await fake_messages(env.control)}
    assert to_e164(phone(0)) not in tos and to_e164(phone(39)) not in tos
    progress = await env.service.progress(cid)
    assert progress["excluded"]["opted_out"] == 1
    assert progress["opted_out_during"] == 2  # 39 (our list) and 38 (21610)
    assert progress["sent"] == 37
    assert await optouts.is_opted_out(to_e164(phone(38)))  # 21610 marks the number opted out
    results = {r["phone"]: r["result"] for r in await env.service.results(cid)}
    assert results[to_e164(phone(0))] == "已退订"
    assert results[to_e164(phone(39))] == "发送时已退订"
    assert results[to_e164(phone(38))] == "发送时已退订"


async def test_429_backs_off_every_worker_then_sends(env: Env) -> None:
    cid = await env.campaign(30)
    await fake_post(env.control, "/_fake/fail", {"op": "create", "status": 429, "times": 3})
    w = env.start_worker()
    await env.service.start(cid, "bob")

    async def backoff_seen() -> bool:
        return w.backoff or bool(await env.stack.redis.exists("bcast:backoff"))

    await wait_for(backoff_seen, limit=10, what="back-off")

    async def all_sent() -> bool:
        p = await env.service.progress(cid)
        return p["sent"] == 30

    await wait_for(all_sent, limit=30, what="all sent after 429")
    tos = [m["to"] for m in await fake_messages(env.control)]
    assert len(tos) == 30 == len(set(tos))


async def test_pause_holds_the_ledger_retries_too(env: Env) -> None:
    cid = await env.campaign(10)
    await fake_post(env.control, "/_fake/fail", {"op": "create", "status": 429, "times": 10})
    w = env.start_worker()
    await env.service.start(cid, "bob")

    async def throttled() -> list[Any]:
        entries = await env.stack.outbox.entries(campaign_id=cid)
        return [e for e in entries if e.status == LedgerStatus.PENDING and e.attempts == 1]

    await wait_for(throttled, what="a first attempt answered 429")
    await env.service.pause(cid, "bob")
    await asyncio.sleep(0.5)  # the worker sees the pause
    held = {e.id: e.attempts for e in await throttled()}
    sent = len(await fake_messages(env.control))
    await asyncio.sleep(1.5)  # the back-off (0.5 s) is over: the retries are due, and held
    assert await env.stack.outbox.run_due() == 0  # the ledger's own sweep leaves broadcast rows alone
    assert await w.retry_due() == 0
    assert held and {e.id: e.attempts for e in await throttled()} == held
    assert len(await fake_messages(env.control)) == sent
    assert (await env.service.progress(cid))["state"] == CampaignState.PAUSED

    await env.service.resume(cid, "bob")

    async def completed() -> bool:
        return await state_of(env, cid) == CampaignState.COMPLETED

    await wait_for(completed, what="completion after resume")
    tos = [m["to"] for m in await fake_messages(env.control)]
    assert len(tos) == 10 == len(set(tos))
    assert {e.status for e in await env.stack.outbox.entries(campaign_id=cid)} == {LedgerStatus.ACCEPTED}


async def test_a_closed_window_holds_the_ledger_retries_too(env: Env) -> None:
    cid = await env.campaign(10)
    await fake_post(env.control, "/_fake/fail", {"op": "create", "status": 429, "times": 10})
    w = env.start_worker()
    await env.service.start(cid, "bob")

    async def throttled() -> list[Any]:
        entries = await env.stack.outbox.entries(campaign_id=cid)
        return [e for e in entries if e.status == LedgerStatus.PENDING]

    await wait_for(throttled, what="a first attempt answered 429")
    env.clock.now = at_shanghai(21, 30)  # the window (08:00-21:00) closes
    await asyncio.sleep(0.5)
    held = {e.id: e.attempts for e in await throttled()}
    sent = len(await fake_messages(env.control))
    await asyncio.sleep(1.5)  # the retries are due now, and held until the window opens
    assert await w.retry_due() == 0
    assert held and {e.id: e.attempts for e in await throttled()} == held
    assert len(await fake_messages(env.control)) == sent
    assert (await env.service.progress(cid))["waiting_for_window"]

    env.clock.now = at_shanghai(8, 5) + timedelta(days=1)

    async def completed() -> bool:
        return await state_of(env, cid) == CampaignState.COMPLETED

    await wait_for(completed, what="completion the next morning")
    tos = [m["to"] for m in await fake_messages(env.control)]
    assert len(tos) == 10 == len(set(tos))


async def test_5xx_after_accepting_is_reconciled_not_resent(env: Env) -> None:
    cid = await env.campaign(10)
    # Twilio accepted these but answered 500: ambiguous → looked up → adopted, never sent twice
    await fake_post(env.control, "/_fake/fail", {"op": "create", "status": 500, "create": True, "times": 3})
    # and these were not processed at all: looked up → not found → resent once
    await fake_post(env.control, "/_fake/fail", {"op": "create", "status": 503, "times": 2})
    env.start_worker()
    await env.service.start(cid, "bob")

    async def completed() -> bool:
        return await state_of(env, cid) == CampaignState.COMPLETED

    await wait_for(completed, limit=30, what="completion")
    # 已完成 only once nothing is in flight: every row was reconciled (adopted or resent) before
    entries = await env.stack.outbox.entries(campaign_id=cid)
    assert len(entries) == 10 and all(e.status == LedgerStatus.ACCEPTED for e in entries)
    tos = [m["to"] for m in await fake_messages(env.control)]
    assert sorted(tos) == sorted(to_e164(phone(i)) for i in range(10))


async def test_redelivered_entry_is_not_sent_again(env: Env) -> None:
    cid = await env.campaign(3)
    env.start_worker()
    await env.service.start(cid, "bob")

    async def completed() -> bool:
        return await state_of(env, cid) == CampaignState.COMPLETED

    await wait_for(completed, what="completion")
    # Replay every stream entry as if a crashed worker's messages were redelivered
    entries = cast(list[Any], await env.stack.redis.xrange(stream_key(cid)))
    w = BroadcastWorker(
        env.stack.service, env.stack.outbox, env.stack.redis, env.stack.limiter, clock=env.clock
    )
    rt = await w._runtime(await env.service.get(cid))
    w.runtimes[cid] = rt
    for entry_id, fields in entries:  # our client returns bytes (decode_responses=False)
        assert await w._process(rt, cast(bytes, entry_id), cast(dict[bytes, bytes], fields))
    assert len(await fake_messages(env.control)) == 3


async def test_rate_limiter_counts_segments_and_gives_priority() -> None:
    async with own_redis() as redis_client:
        limiter = RateLimiter(redis_client, rate=20.0, burst=4, key="bcast:test-rate")
        assert await limiter.try_acquire(4) == 0.0  # the burst
        wait = await limiter.try_acquire(2)
        assert 0.05 < wait <= 0.11  # 2 segments at 20/s
        # a reply is not queued behind bulk: it borrows up to the burst
        assert await limiter.try_acquire(3, Priority.HIGH) == 0.0
        # and bulk pays the debt
        assert await limiter.try_acquire(1) > 0.15
        # tokens taken for a send that did not happen are given back (never above the burst)
        await limiter.refund(100)
        assert await limiter.try_acquire(4) == 0.0
        assert await limiter.try_acquire(1) > 0
        # bounded burst: after a long idle time only `burst` segments pass at once
        limiter2 = RateLimiter(redis_client, rate=1000.0, burst=10, key="bcast:test-rate2")
        await asyncio.sleep(0.05)
        assert await limiter2.try_acquire(10) == 0.0
        assert await limiter2.try_acquire(10) > 0
        # measured rate over 2 s stays within 5 %
        limiter3 = RateLimiter(redis_client, rate=100.0, burst=5, key="bcast:test-rate3")
        taken = 0
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            if await limiter3.acquire(1, max_wait=1.0):
                taken += 1
        elapsed = time.monotonic() - start
        assert abs((taken - 5) / elapsed - 100.0) / 100.0 < 0.05  # minus the initial burst


class _RecordingProvider:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []

    async def send(self, request: OutboundRequest) -> SendReceipt:
        self.sent.append((time.monotonic(), request.body))
        return SendReceipt(f"SM{len(self.sent)}", DeliveryState.ACCEPTED, "queued")


async def test_replies_jump_ahead_of_bulk_traffic() -> None:
    """With the bucket drained by bulk sends, a reply through the gateway's wrapped provider goes out at
    once, and the bulk sender behind it waits longer (it pays the reply's segments)."""
    async with own_redis() as redis_client:
        limiter = RateLimiter(redis_client, rate=10.0, burst=3, key="bcast:test-prio")
        inner = _RecordingProvider()
        # a partial double: the limiter wrapper only calls send() and reads name
        gateway_provider = RateLimitedProvider(cast(SmsProvider, inner), limiter, Priority.HIGH)
        assert gateway_provider.name == "recording"  # everything else is the wrapped provider's
        assert await limiter.try_acquire(3) == 0.0  # bulk used the whole burst
        bulk_wait = await limiter.try_acquire(1)
        assert bulk_wait > 0.05  # bulk must wait now
        started = time.monotonic()
        request = OutboundRequest(
            "lid", 1, "+8613900000001", "【县行政服务中心】您的办件已办结。", "http://x/s"
        )
        await gateway_provider.send(request)
        assert time.monotonic() - started < 0.05  # the reply did not queue behind bulk
        assert await limiter.try_acquire(1) > bulk_wait  # and bulk now waits longer


async def test_campaign_where_nothing_is_accepted_ends_as_failed(env: Env) -> None:
    cid = await env.campaign(3)
    for i in range(3):
        await fake_post(env.control, "/_fake/numbers", {"number": to_e164(phone(i)), "error_code": 21614})
    env.start_worker()
    await env.service.start(cid, "bob")

    async def ended() -> str:
        state = await state_of(env, cid)
        return state if state in (CampaignState.FAILED, CampaignState.COMPLETED) else ""

    assert await wait_for(ended, what="the end") == CampaignState.FAILED
    view = await env.service.view(cid)
    assert "21614" in view["state_reason"]
    progress = await env.service.progress(cid)
    assert progress["failed"] == 3 and progress["failed_by_reason"] == {"21614": 3}


async def test_lost_queue_is_rebuilt_without_resending(env: Env) -> None:
    """Redis loses the stream mid-campaign (flush, failover): the workers rebuild it from the database and
    the ledger keeps everyone at one message."""
    env.stack.limiter.rate = 30.0
    env.stack.limiter.burst = 2
    cid = await env.campaign(40)
    env.start_worker()
    await env.service.start(cid, "bob")

    async def some_sent() -> bool:
        return len(await fake_messages(env.control)) >= 10

    await wait_for(some_sent, what="first sends")
    await env.stack.redis.flushdb()

    async def completed() -> bool:
        return await state_of(env, cid) == CampaignState.COMPLETED

    await wait_for(completed, limit=30, what="completion after the flush")
    tos = [m["to"] for m in await fake_messages(env.control)]
    assert len(tos) == 40 == len(set(tos))


async def test_consumers_of_dead_workers_are_forgotten_once_empty(env: Env) -> None:
    redis = env.stack.redis
    key = stream_key("bc-x")
    await redis.xgroup_create(key, "senders", id="0", mkstream=True)
    await redis.xadd(key, {"a": "1"})
    await redis.xadd(key, {"a": "2"})
    await redis.xreadgroup("senders", "dead-0", {key: ">"}, count=1)  # holds one entry
    read = cast(list[Any], await redis.xreadgroup("senders", "dead-1", {key: ">"}, count=1))
    eid = read[0][1][0][0]
    await redis.xack(key, "senders", eid)  # holds nothing
    w = BroadcastWorker(env.stack.service, env.stack.outbox, redis, env.stack.limiter, clock=env.clock)
    assert await w.forget_dead_consumers("bc-x", idle=0) == 1
    names = {c["name"] for c in await redis.xinfo_consumers(key, "senders")}
    assert names == {b"dead-0"}  # the one with a pending entry stays until its entry is reclaimed
