"""Fixtures for tests/complaints/: a complaint service on a freshly migrated database with a settable clock
and an in-memory reply sender (helpers in tests.support.complaints)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.db import create_engine, session_factory
from bot.domains.complaints.service import ComplaintService
from bot.domains.staff import Staff
from tests.support.complaints import Clock, Recorder, local


@pytest.fixture(name="sessions")
async def sessions_fixture(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock(local(2026, 3, 2))  # a Monday


@pytest.fixture(name="recorder")
def recorder_fixture() -> Recorder:
    return Recorder()


@pytest.fixture(name="service")
def service_fixture(sessions, clock: Clock, recorder: Recorder) -> ComplaintService:
    return ComplaintService(sessions, clock=clock, sender=recorder)


@pytest.fixture(name="staff")
def staff_fixture(sessions, redis_client) -> Staff:
    return Staff.build(sessions, redis_client)
