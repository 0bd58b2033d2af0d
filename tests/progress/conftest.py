"""Fixtures for tests/progress/: the reference approval backend over real HTTP, the adapter on it, and a
progress service environment (helpers in tests.support.progress)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.adapters.approval.http_backend import HttpApprovalBackend
from bot.adapters.approval.reference_backend import ReferenceBackend, build_app
from bot.core.db import create_engine
from bot.core.metrics import Metrics
from tests.support.progress import Clock, Env, RefHarness, fast_settings


@pytest.fixture
async def reference(aiohttp_server, tmp_path) -> AsyncIterator[RefHarness]:
    backend = ReferenceBackend(tmp_path / "approval.db")
    server = await aiohttp_server(build_app(backend, enable_faults=True))
    async with aiohttp.ClientSession() as http:
        yield RefHarness(server, backend, http)


@pytest.fixture
async def adapter(reference: RefHarness, redis_client: aioredis.Redis) -> AsyncIterator[HttpApprovalBackend]:
    backend = HttpApprovalBackend(fast_settings(reference.url), redis_client, metrics=Metrics(redis_client))
    yield backend
    await backend.close()


@pytest.fixture
async def env(
    reference: RefHarness, adapter: HttpApprovalBackend, redis_client: aioredis.Redis, database_url: str
) -> AsyncIterator[Env]:
    engine = create_engine(database_url)
    yield Env(reference, adapter, engine, redis_client, Clock(datetime.now(UTC)))
    await engine.dispose()
