"""Worker processes (``python -m sms_gateway.broadcast.worker``) and the Twilio fake as separate processes:
a 2,000-recipient campaign with two workers gives exactly 2,000 sends, and still exactly one send per
recipient when workers are SIGKILLed at random points and restarted."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.core.phone import to_e164
from bot.core.processes import stop_process
from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.models import CampaignState
from sms_gateway.broadcast.worker import Stack, open_stack
from sms_gateway.models import LedgerStatus
from tests.support.broadcast import (
    BROADCAST_REDIS_URL,
    fake_messages,
    fake_twilio_process,
    own_redis,
    phone,
    recipients_csv,
    sms_settings,
    start_worker,
    worker_env,
)

N = 2000
CONCURRENCY = 8


@pytest.fixture
async def setup(database_url) -> AsyncIterator[tuple[Stack, aiohttp.ClientSession, dict[str, str]]]:
    async with own_redis(), fake_twilio_process() as base, aiohttp.ClientSession(base_url=base) as control:
        async with open_stack(
            database_url, BROADCAST_REDIS_URL, sms_settings(base), BroadcastSettings()
        ) as stack:
            yield stack, control, worker_env(database_url, BROADCAST_REDIS_URL, base)


async def _campaign(stack: Stack) -> str:
    service = stack.service
    c = await service.create(
        name="普法宣传",
        template="{姓名}您好：宪法宣传周活动通知。",
        created_by="alice",
        purpose="普法",
        window="00:00-24:00",
    )
    await service.set_recipients(c["id"], actor="alice", upload=("list.csv", recipients_csv(N)))
    await service.submit(c["id"], "alice")
    await service.approve(c["id"], "bob")
    await service.start(c["id"], "bob")
    return str(c["id"])


async def _settled(stack: Stack, cid: str, limit: float) -> None:
    """Wait until every recipient is accepted.  ``limit`` is a bound for a loaded CI machine, not a speed
    target: a SIGKILLed worker's claimed rows wait out their lease (25 s) before the sweep adopts them."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view = await stack.service.view(cid)
        entries = await stack.outbox.entries(campaign_id=cid)
        if view["state"] == CampaignState.COMPLETED and len(entries) == N:
            if all(e.status == LedgerStatus.ACCEPTED for e in entries):
                return
        await asyncio.sleep(0.3)
    progress = await stack.service.progress(cid)
    raise AssertionError(f"campaign did not settle: {progress}")


async def _sending(control: aiohttp.ClientSession, limit: float = 60) -> None:
    """Wait until the fake receives another message (or has them all): the workers are sending."""
    before = len(await fake_messages(control))
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        count = len(await fake_messages(control))
        if count > before or count >= N:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the workers sent nothing")


def _assert_exactly_once(messages: list[dict[str, object]]) -> None:
    per_number = Counter(str(m["to"]) for m in messages)
    expected = {to_e164(phone(i)) for i in range(N)}
    assert set(per_number) == expected
    dupes = {k: v for k, v in per_number.items() if v > 1}
    assert not dupes, f"{len(dupes)} recipients got the notice more than once"
    assert len(messages) == N


async def test_two_workers_send_exactly_2000(setup) -> None:
    stack, control, env = setup
    workers = [await start_worker(env, concurrency=CONCURRENCY) for _ in range(2)]
    try:
        cid = await _campaign(stack)
        await _settled(stack, cid, limit=180)
    finally:
        for w in workers:
            await stop_process(w)
    _assert_exactly_once(await fake_messages(control))
    progress = await stack.service.progress(cid)
    assert progress["sent"] == N and progress["queued"] == 0 and progress["failed"] == 0
    # both workers took part
    lat = await stack.redis.llen(f"bcast:lat:{cid}")
    assert lat >= N


async def test_sigkilled_workers_never_duplicate_or_lose(setup) -> None:
    stack, control, env = setup
    rng = random.Random(7)
    workers = [await start_worker(env, concurrency=CONCURRENCY) for _ in range(2)]
    kills = 0
    try:
        cid = await _campaign(stack)
        for _ in range(5):
            await _sending(control)  # kill mid-campaign, not while a restarted worker is still starting
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            victim = rng.randrange(2)
            workers[victim].send_signal(signal.SIGKILL)
            await workers[victim].wait()
            kills += 1
            workers[victim] = await start_worker(env, concurrency=CONCURRENCY)
        sent_during = len(await fake_messages(control))
        await _settled(stack, cid, limit=180)
    finally:
        for w in workers:
            await stop_process(w)
    assert kills == 5
    assert 0 < sent_during  # the kills happened while sending
    _assert_exactly_once(await fake_messages(control))
    results = await stack.service.results(cid)
    assert len(results) == N and all(r["result"] == "已发送" for r in results)
