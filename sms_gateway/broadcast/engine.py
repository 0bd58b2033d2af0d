"""The sending engine: a durable Redis Streams queue per campaign, consumed by any number of worker
processes through one consumer group, with the SMS ledger as the exactly-once guard.

Redis keys (``bcast:`` prefix):

* ``bcast:q:<campaign>`` — the stream; one entry per eligible recipient (``c`` campaign, ``r`` seq,
  ``a`` address, ``v`` variables JSON).  Consumer group ``senders``; each sender task is its own consumer
  (``<worker name>-<n>``).
* ``bcast:enq:<campaign>`` — the last recipient seq enqueued, written in the same MULTI/EXEC as the XADDs,
  so an interrupted enqueue continues exactly where it stopped; ``bcast:enqlock:<campaign>`` — who enqueues.
* ``bcast:rate`` — the shared segment bucket (see ``limiter.py``); ``bcast:backoff`` — set for a while
  after the provider answered 429: every worker holds bulk traffic until it expires.
* ``bcast:lat:<campaign>`` — enqueue-to-send latencies in ms (for status and the benchmark).
* ``bcast:worker:<name>`` — heartbeat of each worker process (10 s TTL).

Exactly once per (campaign, recipient): a sender takes up to ``BROADCAST_BATCH`` entries and hands them to
``SmsOutbox.send_batch``, which writes their ledger rows already claimed (``dedup_key
broadcast:<campaign>:<phone>:1``, unique) in one transaction before calling the provider; the entries are
acknowledged only after that.  A worker killed at any point leaves its entries unacknowledged; after
``BROADCAST_CLAIM_IDLE`` another sender reclaims them (XAUTOCLAIM), finds their keys in the ledger and sends
nothing; rows left in ``sending`` by the crash are reconciled by the ledger's sweep (looked up at the
provider, never resent blind).  Rows waiting for a retry (429, not found at the provider) are resent by
``retry_due`` only while their campaign may send, through the rate limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from sqlalchemy import func, select

from bot.core.clock import as_utc, utcnow
from sms_gateway.broadcast.limiter import Priority, RateLimiter
from sms_gateway.broadcast.models import BroadcastCampaign, BroadcastRecipient, CampaignState, Channel
from sms_gateway.broadcast.service import BroadcastError, BroadcastService
from sms_gateway.broadcast.template import render
from sms_gateway.broadcast.window import in_window
from sms_gateway.models import LedgerStatus, Purpose, SmsOutbound
from sms_gateway.outbox import BatchItem, SmsOutbox

HEARTBEAT_PREFIX = "bcast:worker:"


async def live_workers(redis: aioredis.Redis) -> list[str]:
    """The names of the broadcast workers whose heartbeat (written every round, 10 s TTL) is current."""
    names = [key async for key in redis.scan_iter(match=HEARTBEAT_PREFIX + "*", count=100)]
    return sorted((k.decode() if isinstance(k, bytes) else str(k))[len(HEARTBEAT_PREFIX) :] for k in names)


log = logging.getLogger(__name__)

GROUP = "senders"
ENQUEUE_CHUNK = 1000
STREAM_TTL = 7 * 86400
BACKOFF_KEY = "bcast:backoff"

# One stream entry as our client (decode_responses=False, RESP2) returns it: the id and the fields, which
# are None (or empty) for an entry deleted while it was pending.
StreamEntry = tuple[bytes, dict[bytes, bytes] | None]


def stream_key(campaign_id: str) -> str:
    return f"bcast:q:{campaign_id}"


def enq_key(campaign_id: str) -> str:
    return f"bcast:enq:{campaign_id}"


def latency_key(campaign_id: str) -> str:
    return f"bcast:lat:{campaign_id}"


@dataclass
class Runtime:
    campaign_id: str
    template: str
    rate: float | None
    window: tuple[int, int]
    last_seq: int  # highest eligible seq (enqueue target)
    in_window: bool = True
    enqueued: bool = False
    cost_hint: int = 1  # segments of the last message: the tokens taken before reading the next entry
    pending_for: set[int] = field(default_factory=set)  # sender tasks with entries to re-read ("0")


class BroadcastWorker:
    def __init__(
        self,
        service: BroadcastService,
        outbox: SmsOutbox,
        redis: aioredis.Redis,
        limiter: RateLimiter,
        *,
        name: str | None = None,
        concurrency: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        run_outbox_sweep: bool = True,
    ) -> None:
        self.service = service
        self.settings = service.settings
        self.outbox = outbox
        self.redis = redis
        self.limiter = limiter
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency or self.settings.concurrency  # sends in flight at most
        self.batch = max(1, min(self.settings.batch, self.concurrency))
        self.senders = max(1, -(-self.concurrency // self.batch))
        self.clock = clock
        self.run_outbox_sweep = run_outbox_sweep
        self.runtimes: dict[str, Runtime] = {}
        self.backoff = False
        self.processed = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._enqueuers: dict[str, asyncio.Task[None]] = {}
        self._rr = 0

    # ------------------------------------------------------------------------------------- lifecycle

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await self.refresh()
        if self.run_outbox_sweep:
            self.outbox.start()
        self._tasks = [
            asyncio.create_task(self._control_loop(stop), name="bcast-control"),
            asyncio.create_task(self._reclaim_loop(stop), name="bcast-reclaim"),
            asyncio.create_task(self._retry_loop(stop), name="bcast-retry"),
            *(
                asyncio.create_task(self._sender(i, stop), name=f"bcast-send-{i}")
                for i in range(self.senders)
            ),
        ]
        try:
            await stop.wait()
        finally:
            for t in [*self._tasks, *self._enqueuers.values()]:
                t.cancel()
            for t in [*self._tasks, *self._enqueuers.values()]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if self.run_outbox_sweep:
                await self.outbox.stop()
            with contextlib.suppress(Exception):
                await self.redis.delete(f"{HEARTBEAT_PREFIX}{self.name}")

    async def _control_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception:
                log.exception("broadcast refresh failed")
            await asyncio.sleep(self.settings.poll_interval)

    # ------------------------------------------------------------------------------------- control

    async def refresh(self) -> None:
        """Re-read campaign states: start due scheduled campaigns, enqueue, detect the end."""
        now = self.clock()
        async with self.service.sessions() as s:
            rows = (
                (
                    await s.execute(
                        select(BroadcastCampaign).where(
                            BroadcastCampaign.state.in_([CampaignState.SCHEDULED, CampaignState.SENDING]),
                            BroadcastCampaign.channel == Channel.SMS,  # WeChat: bot/domains/mass_send
                        )
                    )
                )
                .scalars()
                .all()
            )
        sending: dict[str, BroadcastCampaign] = {}
        for c in rows:
            if c.state == CampaignState.SCHEDULED:
                due = as_utc(c.scheduled_at)
                if due is not None and due <= now:
                    with contextlib.suppress(BroadcastError):
                        await self.service.begin_sending(c.id, now)
                        log.info("broadcast started by schedule", extra={"campaign": c.id})
                        c.state = CampaignState.SENDING
            if c.state == CampaignState.SENDING:
                sending[c.id] = c
        self.backoff = bool(await self.redis.exists(BACKOFF_KEY))
        for cid in list(self.runtimes):
            if cid not in sending:
                del self.runtimes[cid]
        for cid, c in sending.items():
            rt = self.runtimes.get(cid)
            if rt is None:
                rt = await self._runtime(c)
                self.runtimes[cid] = rt
            rt.in_window = in_window(now, c.window_start, c.window_end, self.settings.tz)
            if not rt.enqueued:
                done = int(await self.redis.get(enq_key(cid)) or 0) >= rt.last_seq
                rt.enqueued = done
                if not done and (cid not in self._enqueuers or self._enqueuers[cid].done()):
                    self._enqueuers[cid] = asyncio.create_task(self._enqueue(rt))
            if rt.enqueued and await self._drained(cid):
                progress = await self.service.progress(cid)
                if progress["in_flight"]:
                    continue  # retries still due (429, not found at the provider) or sends being settled
                failed = progress["sent"] == 0 and progress["failed"] > 0
                reason = "全部发送失败：" + json.dumps(progress["failed_by_reason"]) if failed else None
                if await self.service.finish(cid, failed=failed, reason=reason):
                    log.info("broadcast finished", extra={"campaign": cid, "failed": failed})
                    await self.redis.expire(stream_key(cid), STREAM_TTL)
                self.runtimes.pop(cid, None)
        await self.redis.set(f"{HEARTBEAT_PREFIX}{self.name}", str(time.time()), ex=10)

    async def _runtime(self, c: BroadcastCampaign) -> Runtime:
        async with self.service.sessions() as s:
            last = (
                await s.execute(
                    select(func.max(BroadcastRecipient.seq)).where(
                        BroadcastRecipient.campaign_id == c.id, BroadcastRecipient.excluded.is_(None)
                    )
                )
            ).scalar_one_or_none()
        try:
            await self.redis.xgroup_create(stream_key(c.id), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        rt = Runtime(c.id, c.template, c.rate, (c.window_start, c.window_end), int(last or 0))
        rt.pending_for = set(range(self.senders))  # a restarted worker first re-reads its own entries
        return rt

    async def _enqueue(self, rt: Runtime) -> None:
        """Append the eligible recipients after the cursor, 1,000 per MULTI/EXEC with the cursor."""
        lock = f"bcast:enqlock:{rt.campaign_id}"
        token = self.name
        if not await self.redis.set(lock, token, nx=True, px=30_000):
            return
        try:
            while True:
                cursor = int(await self.redis.get(enq_key(rt.campaign_id)) or 0)
                async with self.service.sessions() as s:
                    batch = (
                        await s.execute(
                            select(
                                BroadcastRecipient.seq,
                                BroadcastRecipient.address,
                                BroadcastRecipient.variables,
                            )
                            .where(
                                BroadcastRecipient.campaign_id == rt.campaign_id,
                                BroadcastRecipient.seq > cursor,
                                BroadcastRecipient.excluded.is_(None),
                            )
                            .order_by(BroadcastRecipient.seq)
                            .limit(ENQUEUE_CHUNK)
                        )
                    ).all()
                if not batch:
                    await self.redis.set(enq_key(rt.campaign_id), rt.last_seq)
                    break
                if await self.redis.get(lock) != token.encode():
                    return  # lost the lock (took longer than its TTL): the new holder continues
                pipe = self.redis.pipeline(transaction=True)
                for seq, address, variables in batch:
                    assert address is not None  # only invalid numbers have none, and they are excluded
                    pipe.xadd(
                        stream_key(rt.campaign_id),
                        {"c": rt.campaign_id, "r": seq, "a": address, "v": variables},
                    )
                pipe.set(enq_key(rt.campaign_id), batch[-1][0])
                pipe.pexpire(lock, 30_000)
                await pipe.execute()
            rt.enqueued = True
        except Exception:
            log.exception("broadcast enqueue failed", extra={"campaign": rt.campaign_id})
        finally:
            if await self.redis.get(lock) == token.encode():
                await self.redis.delete(lock)

    async def _drained(self, campaign_id: str) -> bool:
        try:
            groups = await self.redis.xinfo_groups(stream_key(campaign_id))
        except ResponseError:
            return False
        for g in groups:
            name = g.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == GROUP:
                lag = g.get("lag")
                return int(g.get("pending", 0)) == 0 and lag is not None and int(lag) == 0
        return False

    # ------------------------------------------------------------------------------------- sending

    def _sendable(self) -> list[Runtime]:
        if self.backoff:
            return []
        return [rt for rt in self.runtimes.values() if rt.in_window]

    def _still_active(self, rt: Runtime) -> bool:
        return self.runtimes.get(rt.campaign_id) is rt and rt.in_window and not self.backoff

    def _batch_size(self, rt: Runtime) -> int:
        """Recipients one sender takes at once: at most ``batch``, at most the bucket, and about a fifth of a
        second of the campaign's rate (so slow rates stay smooth)."""
        per = max(1, rt.cost_hint)
        rate = rt.rate or self.limiter.rate
        n = min(self.batch, int(self.limiter.burst // per), int(rate * 0.2 // per))
        return max(1, n)

    async def _sender(self, index: int, stop: asyncio.Event) -> None:
        """Take the tokens first, then up to a batch of entries: entries are only held while they are being
        sent, so a slow rate never leaves entries idle long enough to be reclaimed (and sent for nothing
        twice)."""
        consumer = f"{self.name}-{index}"
        while not stop.is_set():
            active = self._sendable()
            if not active:
                await asyncio.sleep(0.05)
                continue
            self._rr += 1
            rt = active[(self._rr + index) % len(active)]
            own = index in rt.pending_for
            count = self._batch_size(rt)
            prepaid = count * max(1, rt.cost_hint)
            if not await self.limiter.acquire(prepaid, Priority.BULK, rate=rt.rate, max_wait=0.5):
                continue  # re-check the campaign states
            if not self._still_active(rt):
                await self.limiter.refund(prepaid, rt.rate)
                continue
            try:
                entries = await self._read(rt.campaign_id, consumer, own=own, count=count)
            except ResponseError as exc:
                await self.limiter.refund(prepaid, rt.rate)
                log.warning("broadcast read failed: %s", exc)
                if "NOGROUP" in str(exc):  # the stream was lost (Redis flushed): rebuilt by refresh()
                    self.runtimes.pop(rt.campaign_id, None)
                await asyncio.sleep(0.2)
                continue
            if own and len(entries) < count:
                rt.pending_for.discard(index)  # this sender's own unacknowledged entries are all re-read
            deleted = [entry_id for entry_id, fields in entries if not fields]  # deleted while pending
            if deleted:
                await self.redis.xack(stream_key(rt.campaign_id), GROUP, *deleted)
            live = [(entry_id, fields) for entry_id, fields in entries if fields]
            if not live:
                await self.limiter.refund(prepaid, rt.rate)
                continue
            try:
                done = await self._process_batch(rt, live, prepaid=prepaid)
            except Exception:
                log.exception(
                    "broadcast send failed; the entries stay pending", extra={"campaign": rt.campaign_id}
                )
                done = False
                await asyncio.sleep(0.2)
            if not done:
                rt.pending_for.add(index)

    async def _read(self, campaign_id: str, consumer: str, *, own: bool, count: int) -> list[StreamEntry]:
        """Up to ``count`` entries for ``consumer``: its unacknowledged ones again (``own``) or new ones."""
        reply = await self.redis.xreadgroup(
            GROUP,
            consumer,
            {stream_key(campaign_id): "0" if own else ">"},
            count=count,
            block=None if own else 100,
        )
        # redis-py types the reply for every protocol and decode_responses setting; ours (RESP2, bytes)
        # answers [[stream name, entries]] for the one stream read, or [] when nothing came in time.
        streams = cast(list[list[Any]], reply)
        entries: list[StreamEntry] = streams[0][1] if streams else []
        return entries

    async def _process(
        self, rt: Runtime, entry_id: bytes, fields: dict[bytes, bytes], prepaid: int = 0
    ) -> bool:
        """Send one recipient; True when the entry was acknowledged."""
        return await self._process_batch(rt, [(entry_id, fields)], prepaid=prepaid)

    async def _process_batch(
        self, rt: Runtime, entries: list[tuple[bytes, dict[bytes, bytes]]], prepaid: int = 0
    ) -> bool:
        """Send a batch of recipients (``prepaid`` tokens already taken); True when the entries were
        acknowledged — only after the ledger has their rows and each send was attempted."""
        cid = rt.campaign_id
        items: list[BatchItem] = []
        for _, fields in entries:
            address = fields[b"a"].decode()
            text = render(rt.template, json.loads(fields[b"v"].decode()))
            (message,) = self.outbox.composer.whole([text], opt_out_hint=True)  # one message: preview checks
            items.append(BatchItem(address, message, f"broadcast:{cid}:{address}"))
        cost = sum(item.message.segments for item in items)
        rt.cost_hint = max(1, round(cost / len(items)))
        if cost < prepaid:
            await self.limiter.refund(prepaid - cost, rt.rate)
        elif cost > prepaid:
            while not await self.limiter.acquire(cost - prepaid, Priority.BULK, rate=rt.rate, max_wait=0.5):
                if not self._still_active(rt):
                    await self.limiter.refund(prepaid, rt.rate)
                    return False
        if not self._still_active(rt):
            await self.limiter.refund(cost, rt.rate)
            return False  # paused / cancelled / window closed while waiting for tokens: no send
        report = await self.outbox.send_batch(items, purpose=Purpose.BROADCAST, campaign_id=cid)
        if report["throttled"]:  # the provider answered 429: hold every worker's bulk traffic for a while
            await self._hold_bulk_traffic()
        ids = [entry_id for entry_id, _ in entries]
        await self.redis.xack(stream_key(cid), GROUP, *ids)
        sent_ms = time.time() * 1000
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(latency_key(cid), *(int(sent_ms - int(entry_id.split(b"-")[0])) for entry_id in ids))
        pipe.expire(latency_key(cid), STREAM_TTL)
        await pipe.execute()
        self.processed += len(ids)
        return True

    async def _hold_bulk_traffic(self) -> None:
        await self.redis.set(BACKOFF_KEY, "1", px=int(self.outbox.throttle_backoff * 1000), nx=True)
        self.backoff = True

    # ------------------------------------------------------------------------------------- retries

    async def _retry_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.retry_due()
            except Exception:
                log.exception("broadcast retry failed")
            await asyncio.sleep(self.settings.poll_interval)

    async def retry_due(self, limit: int = 100) -> int:
        """Send again the due ``pending`` ledger rows of campaigns that may send now (answered 429, found
        missing at the provider, or undelivered for a transient reason), through the bulk rate limit.  The
        ledger's own sweep leaves broadcast rows to this loop, so a paused campaign or a closed window holds
        its retries too.  Returns the rows dispatched."""
        if self.backoff:
            return 0
        now, due = self.clock(), self.outbox.clock()  # the window's clock, the ledger's clock
        async with self.service.sessions() as s:
            rows = (
                await s.execute(
                    select(
                        SmsOutbound.id,
                        SmsOutbound.segments,
                        BroadcastCampaign.rate,
                        BroadcastCampaign.window_start,
                        BroadcastCampaign.window_end,
                    )
                    .join(BroadcastCampaign, BroadcastCampaign.id == SmsOutbound.campaign_id)
                    .where(
                        SmsOutbound.status == LedgerStatus.PENDING,
                        SmsOutbound.purpose == Purpose.BROADCAST,
                        SmsOutbound.next_attempt_at <= due,
                        BroadcastCampaign.state.in_([CampaignState.SENDING, CampaignState.COMPLETED]),
                    )
                    .order_by(SmsOutbound.next_attempt_at)
                    .limit(limit)
                )
            ).all()
        dispatched = 0
        for ledger_id, segments, rate, start, end in rows:
            if not in_window(now, start, end, self.settings.tz):
                continue
            if not await self.limiter.acquire(segments, Priority.BULK, rate=rate, max_wait=0.5):
                break
            entry = await self.outbox.dispatch(ledger_id, due_only=True)
            dispatched += 1
            if entry is not None and entry.status == LedgerStatus.PENDING and entry.attempts > 0:
                await self._hold_bulk_traffic()
                break
        return dispatched

    # ------------------------------------------------------------------------------------- reclaiming

    async def _reclaim_loop(self, stop: asyncio.Event) -> None:
        interval = max(0.2, self.settings.claim_idle / 2)
        k = 0
        while not stop.is_set():
            await asyncio.sleep(interval)
            for rt in list(self.runtimes.values()):
                k = (k + 1) % self.senders
                try:
                    claimed = await self.reclaim(rt, k)
                except Exception:
                    log.exception("broadcast reclaim failed")
                    continue
                if claimed:
                    log.warning("reclaimed %d broadcast entries", claimed, extra={"campaign": rt.campaign_id})
                with contextlib.suppress(Exception):
                    await self.forget_dead_consumers(rt.campaign_id)

    async def reclaim(self, rt: Runtime, index: int) -> int:
        """Give entries idle longer than ``claim_idle`` (their worker died) to sender ``index``."""
        total = 0
        start = "0-0"
        while True:
            result = await self.redis.xautoclaim(
                stream_key(rt.campaign_id),
                GROUP,
                f"{self.name}-{index}",
                min_idle_time=int(self.settings.claim_idle * 1000),
                start_id=start,
                count=100,
            )
            next_id, claimed = result[0], result[1]
            total += len(claimed)
            if claimed:
                rt.pending_for.add(index)
            if next_id in (b"0-0", "0-0"):
                return total
            start = next_id

    async def forget_dead_consumers(self, campaign_id: str, idle: float = 600.0) -> int:
        """Remove consumers of dead workers that hold nothing (each restart adds new consumer names)."""
        removed = 0
        for c in await self.redis.xinfo_consumers(stream_key(campaign_id), GROUP):
            name = c["name"].decode() if isinstance(c["name"], bytes) else str(c["name"])
            if (
                name.startswith(f"{self.name}-")
                or int(c.get("pending", 0))
                or int(c.get("idle", 0)) < idle * 1000
            ):
                continue
            removed += int(await self.redis.xgroup_delconsumer(stream_key(campaign_id), GROUP, name) == 0)
        return removed
