"""Broadcast benchmark: N recipients to the Twilio fake (its own process) through worker processes:

    .venv/bin/python bench/broadcast.py [--recipients 10000] [--database-url URL]
        [--throttle-rates 50 20] [--throttle-seconds 30] [--concurrency 200] [--batch 50]
        [--skip 1,2,throttled,limiter]

Runs (1) the campaign with 1 worker and (2) with 2 workers, the rate limit set high, reporting messages/s,
p50/p99 enqueue-to-send latency (from the workers' ``bcast:lat:<campaign>`` samples) and duplicates at the
fake (must be 0); then (3) with the limit at 50 (and 20) segments/s, the measured steady rate (sampled
every 0.2 s from the ledger, the first 3 s excluded); and (4) the bucket alone at 50 segments/s.
Uses Redis DB 11 (``BENCH_REDIS_URL``), which it flushes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.migrate import upgrade
from bot.core.processes import stop_process
from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.models import CampaignState
from sms_gateway.broadcast.worker import Stack, open_stack
from tests.support.broadcast import (
    fake_messages,
    fake_post,
    fake_twilio_process,
    recipients_csv,
    sms_settings,
    start_worker,
    worker_env,
)

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")


async def reset_database(url: str) -> None:
    if url.startswith("postgresql"):
        from sqlalchemy import text

        from bot.core.db import create_engine

        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    await upgrade(url)


async def run_campaign(
    stack: Stack,
    control: aiohttp.ClientSession,
    env: dict[str, str],
    n: int,
    workers: int,
    rate: float | None,
) -> dict[str, Any]:
    await fake_post(control, "/_fake/reset", {})
    await stack.redis.delete("bcast:rate")
    svc = stack.service
    c = await svc.create(
        name=f"bench-{workers}", template="{姓名}您好：宪法宣传周，欢迎参加普法活动。", created_by="bench",
        window="00:00-24:00", rate=rate,
    )  # fmt: skip
    cid = c["id"]
    await svc.set_recipients(cid, actor="bench", upload=("bench.csv", recipients_csv(n)))
    await svc.submit(cid, "bench")
    await svc.approve(cid, "reviewer")
    procs = [await start_worker(env, concurrency=int(env["BROADCAST_CONCURRENCY"])) for _ in range(workers)]
    await asyncio.sleep(1.5)  # let the workers start (imports) before the clock starts
    started = time.monotonic()
    await svc.start(cid, "reviewer")
    samples: list[tuple[float, int]] = []
    try:
        while True:
            p = await svc.progress(cid)
            samples.append((time.monotonic() - started, p["sent"]))
            if p["sent"] + p["failed"] >= n and p["state"] == CampaignState.COMPLETED:
                break
            await asyncio.sleep(0.2)
    finally:
        for proc in procs:
            await stop_process(proc)
    elapsed = samples[-1][0]
    messages = await fake_messages(control)
    per = Counter(m["to"] for m in messages)
    lat = sorted(int(x) for x in await stack.redis.lrange(f"bcast:lat:{cid}", 0, -1))
    result: dict[str, Any] = {
        "workers": workers,
        "recipients": n,
        "sent": len(messages),
        "distinct": len(per),
        "duplicates": sum(v - 1 for v in per.values() if v > 1),
        "seconds": round(elapsed, 1),
        "msg_per_s": round(len(messages) / elapsed, 1) if elapsed else 0.0,
        "latency_p50_ms": lat[len(lat) // 2] if lat else None,
        "latency_p99_ms": lat[int(len(lat) * 0.99) - 1] if lat else None,
    }
    if rate is not None:
        # from 3 s in (the initial burst excluded) to the last sample before the queue ran dry
        steady = [(t, s) for t, s in samples if t >= 3.0 and s < n]
        if len(steady) >= 2:
            (t0, s0), (t1, s1) = steady[0], steady[-1]
            result["limit_segments_per_s"] = rate
            result["measured_segments_per_s"] = round((s1 - s0) / (t1 - t0), 2) if t1 > t0 else None
    return result


async def limiter_only(stack: Stack, rate: float, seconds: float) -> dict[str, Any]:
    """The shared bucket alone (32 concurrent takers, 1 segment each), without the ledger's cost."""
    from sms_gateway.broadcast.limiter import RateLimiter

    limiter = RateLimiter(stack.redis, rate, 10, key="bcast:bench-limiter")
    await stack.redis.delete("bcast:bench-limiter")
    taken = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + seconds

    async def taker() -> None:
        nonlocal taken
        while loop.time() < end:
            if await limiter.acquire(1, max_wait=0.5) and loop.time() < end:
                taken += 1

    await asyncio.gather(*(taker() for _ in range(32)))
    measured = (taken - 10) / seconds  # minus the initial burst
    return {"limiter_only": True, "limit_segments_per_s": rate, "measured_segments_per_s": round(measured, 2)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--throttle-rates", type=float, nargs="*", default=[50.0, 20.0])
    parser.add_argument("--throttle-seconds", type=float, default=30.0, help="length of each throttled run")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--concurrency", type=int, default=BroadcastSettings().concurrency)
    parser.add_argument("--batch", type=int, default=BroadcastSettings().batch)
    parser.add_argument("--skip", default="", help="comma list of runs to skip: 1,2,throttled")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
    await reset_database(url)
    import redis.asyncio as aioredis

    r = aioredis.from_url(REDIS_URL)
    await r.flushdb()
    await r.aclose()
    skip = set(args.skip.split(","))
    async with fake_twilio_process() as base, aiohttp.ClientSession(base_url=base) as control:
        settings = BroadcastSettings(rate=100_000, burst=1000)
        async with open_stack(url, REDIS_URL, sms_settings(base), settings) as stack:
            env = worker_env(
                url,
                REDIS_URL,
                base,
                BROADCAST_CONCURRENCY=str(args.concurrency),
                BROADCAST_BATCH=str(args.batch),
            )
            results = []
            for workers in (1, 2):
                if str(workers) in skip:
                    continue
                res = await run_campaign(stack, control, env, args.recipients, workers, None)
                print(res, flush=True)
                results.append(res)
            if "throttled" not in skip:
                for rate in args.throttle_rates:
                    env_t = {**env, "BROADCAST_RATE": str(rate), "BROADCAST_BURST": str(max(10.0, rate))}
                    n = max(200, int(rate * args.throttle_seconds))
                    res = await run_campaign(stack, control, env_t, n, 2, rate)
                    print(res, flush=True)
                    results.append(res)
            if "limiter" not in skip:
                res = await limiter_only(stack, 50.0, 20.0)
                print(res, flush=True)
                results.append(res)
    print(f"database: {url.split('://')[0]}")
    for res in results:
        if res.get("limiter_only"):
            print(
                f"limiter alone, 32 tasks: limit {res['limit_segments_per_s']} seg/s → "
                f"measured {res['measured_segments_per_s']} seg/s"
            )
            continue
        line = (
            f"{res['workers']} worker(s), {res['recipients']} recipients: {res['msg_per_s']} msg/s, "
            f"p50 {res['latency_p50_ms']} ms, p99 {res['latency_p99_ms']} ms, duplicates {res['duplicates']}"
        )
        if "measured_segments_per_s" in res:
            limit, measured = res["limit_segments_per_s"], res["measured_segments_per_s"]
            line += f"; limit {limit} seg/s → measured {measured} seg/s"
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
