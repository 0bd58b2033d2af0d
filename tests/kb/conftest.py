"""Fixtures for tests/kb/: a migrated knowledge-base database on SQLite and, when TEST_POSTGRES_URL is
set, on PostgreSQL (helpers in tests.support.kb)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.db import create_engine, session_factory
from tests.support.kb import create_kb_tables, drop_kb_tables
from tests.support.services import TEST_POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"], name="kb_sessions")
async def kb_sessions_fixture(request, tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "postgres":
        if not TEST_POSTGRES_URL:
            pytest.skip("TEST_POSTGRES_URL not set")
        url = TEST_POSTGRES_URL
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"
    await create_kb_tables(url)
    engine = create_engine(url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
        if request.param == "postgres":
            await drop_kb_tables(url)
