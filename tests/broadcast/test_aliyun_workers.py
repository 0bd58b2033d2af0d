"""A 5,000-recipient campaign through Alibaba Cloud SMS: two worker processes
(``python -m sms_gateway.broadcast.worker`` with ``SMS_PROVIDER=aliyun``) and the Aliyun fake as its own
process, called by the official SDK in SendBatchSms batches.  A worker is SIGKILLed mid-send and
restarted; 50 numbers are at their daily flow-control limit; some numbers opt out before the start and
some while it runs.  Each recipient gets the notice exactly once, the flow-controlled ones only after
their window, and no opted-out number ever gets it."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from sqlalchemy import select, update

from bot.core.clock import utcnow
from bot.core.db import session_factory
from bot.core.phone import to_e164
from bot.core.processes import module_process, stop_process
from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.models import CampaignState
from sms_gateway.broadcast.worker import Stack, open_stack
from sms_gateway.models import LedgerStatus, SmsOutbound
from sms_gateway.optout import OptOutStore
from tests.support.aliyun import KEY_ID, KEY_SECRET, PUSH_TOKEN, aliyun_settings
from tests.support.broadcast import BROADCAST_REDIS_URL, csv_bytes, own_redis, phone, start_worker, worker_env
from tests.support.sms import SIGNATURE

N = 5000
LIMITED = range(1000, 1050)  # already at their daily limit for this template when the campaign starts
OPTED_BEFORE = range(2000, 2040)  # on the opt-out list before the start: excluded
OPTED_DURING = range(4900, 4960)  # opt out while the campaign runs: never sent after that
TEMPLATE_CODE = "SMS_480008"
TEMPLATE = "{name}您好：{matter}，请于{deadline}前到县行政服务中心办理。详询0797-3322110"


@pytest.fixture
async def setup(
    database_url, monkeypatch
) -> AsyncIterator[tuple[Stack, aiohttp.ClientSession, dict[str, str]]]:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", KEY_SECRET)
    async with (
        own_redis(),
        module_process("sms_gateway.aliyun.fake", "--sign", SIGNATURE, port=unused_port(), name="Aliyun")
        as base,
        aiohttp.ClientSession(base_url=base) as control,
    ):  # fmt: skip
        settings = aliyun_settings(base, f"http://127.0.0.1:{unused_port()}", send_timeout=2.0,
                                   reconcile_delay=0.3, worker_interval=0.3)  # fmt: skip
        async with open_stack(database_url, BROADCAST_REDIS_URL, settings, BroadcastSettings()) as stack:
            env = worker_env(
                database_url, BROADCAST_REDIS_URL, base, SMS_PROVIDER="aliyun", ALIYUN_SMS_ENDPOINT=base,
                ALIBABA_CLOUD_ACCESS_KEY_ID=KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET=KEY_SECRET,
                ALIYUN_SMS_PUSH_TOKEN=PUSH_TOKEN, SMS_SIGNATURE=SIGNATURE,
            )  # fmt: skip
            yield stack, control, env


async def sent(control: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with control.get("/_fake/sent") as resp:
        return list((await resp.json())["sent"])


async def limit_numbers(control: aiohttp.ClientSession, count: int) -> None:
    body = {"sign": SIGNATURE, "template": TEMPLATE_CODE, "count": count,
            "phones": [to_e164(phone(i))[3:] for i in LIMITED]}  # fmt: skip
    async with control.post("/_fake/earlier-today", json=body) as resp:
        assert resp.status == 200


async def _campaign(stack: Stack) -> str:
    service = stack.service
    c = await service.create(name="年报提醒", template=TEMPLATE, created_by="alice", window="00:00-24:00")
    rows = [["手机号", "name", "matter", "deadline"]] + [
        [phone(i), f"张{i}", "企业年报即将截止", "6月30日"] for i in range(N)
    ]
    await service.set_recipients(c["id"], actor="alice", upload=("list.csv", csv_bytes(rows)))
    preview = await service.preview(c["id"])
    assert preview.blockers == [] and preview.template is not None
    await service.submit(c["id"], "alice")
    await service.approve(c["id"], "bob")
    await service.start(c["id"], "bob")
    return str(c["id"])


async def ledger(stack: Stack, cid: str) -> list[SmsOutbound]:
    async with session_factory(stack.engine)() as s:
        query = select(SmsOutbound).where(SmsOutbound.campaign_id == cid)
        return list((await s.execute(query)).scalars())


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _until(check: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def test_5000_through_aliyun_with_a_worker_killed(setup) -> None:
    stack, control, env = setup
    rng = random.Random(17)
    optouts = OptOutStore(session_factory(stack.engine))
    for i in OPTED_BEFORE:
        await optouts.opt_out(to_e164(phone(i)), source="keyword", keyword="TD")
    await limit_numbers(control, 50)
    workers = [await start_worker(env, concurrency=8) for _ in range(2)]
    opted_at: dict[str, datetime] = {}
    try:
        cid = await _campaign(stack)

        async def some_sent() -> bool:
            return len(await sent(control)) >= 300

        await _until(some_sent, 120, "the first sends")
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        sent_at_kill = len(await sent(control))
        workers[0].send_signal(
            signal.SIGKILL
        )  # mid-send: its claimed rows are reconciled, never resent blind
        await workers[0].wait()
        for i in OPTED_DURING:
            await optouts.opt_out(to_e164(phone(i)), source="keyword", keyword="退订")
            opted_at[to_e164(phone(i))] = utcnow()
        workers[0] = await start_worker(env, concurrency=8)

        async def only_the_limited_left() -> bool:
            rows = await ledger(stack, cid)
            left = [
                r
                for r in rows
                if r.status in (LedgerStatus.PENDING, LedgerStatus.SENDING, LedgerStatus.UNKNOWN)
            ]
            pending_only = all(r.status == LedgerStatus.PENDING for r in left)
            return len(rows) == N - len(OPTED_BEFORE) and len(left) == len(LIMITED) and pending_only

        await _until(only_the_limited_left, 240, "every number outside the flow-control limit")
        deferred = [r for r in await ledger(stack, cid) if r.status == LedgerStatus.PENDING]
        limited = {to_e164(phone(i)) for i in LIMITED}
        assert {r.recipient for r in deferred} == limited  # deferred, not failed, not resent
        soonest = min(aware(r.next_attempt_at) for r in deferred if r.next_attempt_at is not None)
        assert soonest > utcnow() + timedelta(hours=23)  # after the day's window
        assert (await stack.service.view(cid))["state"] == CampaignState.SENDING  # not done while deferred
        assert not {s["phone"] for s in await sent(control)} & {p[3:] for p in limited}

        # the window passes: the fake's day is over and the rows come due
        await limit_numbers(control, 0)
        async with session_factory(stack.engine).begin() as s:
            await s.execute(
                update(SmsOutbound)
                .where(SmsOutbound.campaign_id == cid, SmsOutbound.status == LedgerStatus.PENDING)
                .values(next_attempt_at=utcnow())
            )

        async def completed() -> bool:
            return (await stack.service.view(cid))["state"] == CampaignState.COMPLETED

        await _until(completed, 120, "the campaign to complete")
    finally:
        for w in workers:
            await stop_process(w)
    assert sent_at_kill < N - len(LIMITED) - len(OPTED_BEFORE)  # the kill came mid-campaign
    messages = await sent(control)
    per_phone = Counter(m["phone"] for m in messages)
    assert not {p: n for p, n in per_phone.items() if n > 1}, "a recipient got the notice twice"
    never = {to_e164(phone(i))[3:] for i in OPTED_BEFORE}
    assert not never & set(per_phone), "an opted-out number got the notice"
    expected = {to_e164(phone(i))[3:] for i in range(N)} - never
    missing = expected - set(per_phone)
    assert missing <= {p[3:] for p in opted_at}, "a recipient was skipped who did not opt out"
    for row in await ledger(stack, cid):  # a row written after its number opted out is never sent
        if row.recipient in opted_at and row.status != LedgerStatus.SUPPRESSED:
            assert aware(row.created_at) < opted_at[row.recipient]
    results = Counter(r["result"] for r in await stack.service.results(cid))
    assert results["已发送"] + results["已送达"] == len(per_phone), results  # 已送达: reconciled
    assert all(m["template_code"] == TEMPLATE_CODE for m in messages)
    assert any(m["out_id"] == f"bc.{cid}" for m in messages)  # SendBatchSms calls carried the campaign
