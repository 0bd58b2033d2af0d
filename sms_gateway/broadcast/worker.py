"""``python -m sms_gateway.broadcast.worker``: one broadcast sending process (run several for more
throughput or resilience; they share the queue, the rate limit and the ledger).

Reads ``DATABASE_URL``, ``REDIS_URL``, the ``SMS_*``/``TWILIO_*`` variables and the ``BROADCAST_*``
variables (``sms_gateway/broadcast/config.py``).  SIGTERM/SIGINT stop it after the sends in flight;
SIGKILL is safe too (unacknowledged entries are reclaimed by the other workers, the ledger prevents
duplicates).  The process also runs the SMS ledger's recovery sweep."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import eventloop
from bot.core.db import create_engine, session_factory
from bot.core.env import Env
from bot.core.metrics import Metrics
from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.engine import BroadcastWorker
from sms_gateway.broadcast.limiter import RateLimiter
from sms_gateway.broadcast.service import BroadcastService
from sms_gateway.config import SmsSettings
from sms_gateway.optout import OptOutStore
from sms_gateway.outbox import SmsOutbox
from sms_gateway.provider import SmsProvider
from sms_gateway.providers import provider_for

log = logging.getLogger("sms_gateway.broadcast.worker")


@dataclass
class Stack:
    service: BroadcastService
    outbox: SmsOutbox
    limiter: RateLimiter
    redis: aioredis.Redis
    engine: AsyncEngine


@asynccontextmanager
async def open_stack(
    database_url: str,
    redis_url: str,
    sms: SmsSettings,
    settings: BroadcastSettings,
    *,
    provider: SmsProvider | None = None,
) -> AsyncIterator[Stack]:
    """Database, Redis, provider, ledger and campaign service for a worker, the CLI or a benchmark."""
    engine = create_engine(database_url)
    redis = aioredis.from_url(redis_url)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
    try:
        sessions = session_factory(engine)
        if provider is None:
            provider = provider_for(sms, http)
        outbox = SmsOutbox(sms, sessions, provider, OptOutStore(sessions), Metrics(redis))
        service = BroadcastService(settings, sessions, outbox.composer)
        limiter = RateLimiter(redis, settings.rate, settings.burst)
        yield Stack(service, outbox, limiter, redis, engine)
    finally:
        await http.close()
        await redis.aclose()
        await engine.dispose()


async def main_async(concurrency: int | None = None) -> None:
    from bot.core.config import get_settings

    base = get_settings()
    sms = SmsSettings.from_env()
    settings = BroadcastSettings.from_env()
    async with open_stack(base.database_url, base.redis_url, sms, settings) as stack:
        worker = BroadcastWorker(
            stack.service, stack.outbox, stack.redis, stack.limiter, concurrency=concurrency
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("broadcast worker %s started (%d senders)", worker.name, worker.concurrency)
        await worker.run(stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="群发短信发送进程 (broadcast worker)")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="sends in flight (BROADCAST_CONCURRENCY)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=Env().text("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(name)s %(message)s"
    )
    eventloop.run(main_async(args.concurrency))


if __name__ == "__main__":
    main()
