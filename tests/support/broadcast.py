"""Test and benchmark helpers: the Twilio fake as its own process, broadcast worker processes, settings
with short timeouts, and recipient files."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp.test_utils import unused_port

from bot.core.config import ROOT
from bot.core.env import Secret
from bot.core.processes import module_process
from sms_gateway.config import SmsSettings
from tests.support.services import TEST_REDIS_URL
from tests.support.sms import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER


@asynccontextmanager
async def fake_twilio_process(callback_delay: float = 3600.0) -> AsyncIterator[str]:
    """``python -m sms_gateway.twilio.fake`` on a free port; yields its base URL.  Status callbacks are
    held back (``callback_delay``) unless the caller changes the fake's config."""
    async with module_process(
        "sms_gateway.twilio.fake", "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN,
        "--from-number", FROM_NUMBER, "--callback-delay", str(callback_delay),
        port=unused_port(), name="the Twilio fake",
    ) as url:  # fmt: skip
        yield url


def sms_settings(api_base: str, **overrides: Any) -> SmsSettings:
    values: dict[str, Any] = {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": Secret(AUTH_TOKEN),
        "twilio_from_number": FROM_NUMBER,
        "twilio_api_base": api_base,
        "public_base_url": f"http://127.0.0.1:{unused_port()}",  # nobody listens: callbacks are lost
        "send_timeout": 2.0,
        "reconcile_delay": 0.3,
        "throttle_backoff": 0.5,
        "worker_interval": 0.3,
    }
    values.update(overrides)
    return SmsSettings(**values)


def worker_env(database_url: str, redis_url: str, api_base: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROADCAST_", "SMS_", "TWILIO_"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_BASE": api_base,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{unused_port()}",
            "SMS_SEND_TIMEOUT": "2",
            "SMS_RECONCILE_DELAY": "0.3",
            "SMS_WORKER_INTERVAL": "0.3",
            "SMS_THROTTLE_BACKOFF": "0.5",
            "BROADCAST_RATE": "100000",
            "BROADCAST_BURST": "1000",
            "BROADCAST_CLAIM_IDLE": "2",
            "BROADCAST_WINDOW": "00:00-24:00",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


async def start_worker(env: Mapping[str, str], concurrency: int = 8) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sms_gateway.broadcast.worker",
        "--concurrency",
        str(concurrency),
        cwd=ROOT,
        env=dict(env),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def fake_messages(control: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with control.get("/_fake/messages", params={"direction": "outbound-api"}) as resp:
        return list(await resp.json())


async def fake_post(control: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> Any:
    async with control.post(path, json=body) as resp:
        return await resp.json()


def phone(i: int) -> str:
    return f"139{i:08d}"


def csv_bytes(rows: Sequence[Sequence[Any]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow(row)
    return buf.getvalue().encode(encoding)


def recipients_csv(n: int, start: int = 0, encoding: str = "utf-8") -> bytes:
    return csv_bytes(
        [["手机号", "姓名", "企业"], *([phone(start + i), f"张{i}", f"企业{i}"] for i in range(n))], encoding
    )


# The broadcast tests use their own database (12) on the test Redis server: other suites flush DB 15 per
# test, and a flush in the middle of a campaign would (correctly, but slowly) rebuild the queue.
BROADCAST_REDIS_URL = os.environ.get("BROADCAST_TEST_REDIS_URL") or (TEST_REDIS_URL.rsplit("/", 1)[0] + "/12")


@asynccontextmanager
async def own_redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(BROADCAST_REDIS_URL)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()
