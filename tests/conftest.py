"""Shared fixtures: real Redis (a dedicated test database, flushed per test) and a real SQL database.

``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``) and ``TEST_POSTGRES_URL`` (optional; when set,
database tests run against PostgreSQL too).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.support.services import TEST_POSTGRES_URL, TEST_REDIS_URL, reset_postgres

# Gateways built by tests do not poll the approval backend unless a test asks for it.
os.environ.setdefault("PROGRESS_NOTIFIER", "off")


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(TEST_REDIS_URL, decode_responses=False)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


async def _migrated(kind: str, tmp_path) -> str:
    from bot.core.migrate import upgrade

    if kind == "postgres":
        url = TEST_POSTGRES_URL
        await reset_postgres(url)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    await upgrade(url)
    return url


@pytest.fixture
async def sqlite_url(tmp_path) -> str:
    """A migrated SQLite database (fresh per test)."""
    return await _migrated("sqlite", tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request, tmp_path) -> str:
    """A migrated database, fresh per test: SQLite always, PostgreSQL too when TEST_POSTGRES_URL is set."""
    if request.param == "postgres" and not TEST_POSTGRES_URL:
        pytest.skip("TEST_POSTGRES_URL not set")
    return await _migrated(request.param, tmp_path)


@pytest.fixture
async def fake_wechat(aiohttp_server):
    """The WeChat API fake, in process, for the harness's AppID and secret."""
    from bot.adapters.wechat import fake_api
    from tests.support.wechat import APP_ID, APP_SECRET

    return await aiohttp_server(fake_api.build_app(app_id=APP_ID, app_secret=APP_SECRET))
