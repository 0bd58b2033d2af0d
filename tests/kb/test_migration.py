"""Migration 0002 creates exactly the knowledge-base tables of ``knowledge_base.models``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from bot.core.db import create_engine
from knowledge_base.models import KB_TABLES
from tests.support.migrations import migrated_columns
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
    migrated = await migrated_columns(url, (t.name for t in KB_TABLES))
    for table in KB_TABLES:
        assert migrated[table.name] == {c.name: bool(c.nullable) for c in table.columns}, table.name
