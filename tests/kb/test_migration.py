"""Migration 0002 creates exactly the knowledge-base tables of ``knowledge_base.models``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from bot.core.db import create_engine
from bot.core.migrate import upgrade
from knowledge_base.models import KB_TABLES
from tests.support.services import TEST_POSTGRES_URL


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_migration_matches_models(kind: str, tmp_path: Path) -> None:
    if kind == "postgres":
        if not TEST_POSTGRES_URL:
            pytest.skip("TEST_POSTGRES_URL not set")
        url = TEST_POSTGRES_URL
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def columns(sync_conn) -> dict[str, dict[str, bool]]:
                insp = inspect(sync_conn)
                return {
                    t.name: {c["name"]: bool(c["nullable"]) for c in insp.get_columns(t.name)}
                    for t in KB_TABLES
                }

            migrated = await conn.run_sync(columns)
    finally:
        await engine.dispose()
    for table in KB_TABLES:
        assert migrated[table.name] == {c.name: bool(c.nullable) for c in table.columns}, table.name
