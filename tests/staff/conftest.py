"""Fixtures for tests/staff/: the staff identity parts on a migrated database, real Redis and a settable
clock (helpers in tests.support.staff)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.core.db import create_engine, session_factory
from bot.domains.staff import Staff
from bot.domains.staff.config import StaffSettings
from tests.support.staff import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def staff(database_url: str, redis_client: aioredis.Redis, clock: Clock) -> AsyncIterator[Staff]:
    engine = create_engine(database_url)
    settings = StaffSettings(lockout_failures=3, lockout_seconds=60, ip_max_failures=8)
    yield Staff.build(session_factory(engine), redis_client, settings, clock)
    await engine.dispose()
