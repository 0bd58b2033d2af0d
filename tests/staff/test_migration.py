"""Migration 0007 matches the staff models and downgrades cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.core.config import ROOT
from bot.core.db import Base, create_engine
from bot.domains.staff.models import STAFF_TABLES


def _alembic(action: str, revision: str, url: str) -> Any:
    def go(sync_conn: Any) -> None:
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.set_main_option("script_location", str(ROOT / "migrations"))
        cfg.attributes["url"] = url
        cfg.attributes["connection"] = sync_conn
        getattr(command, action)(cfg, revision)

    return go


async def test_migration_matches_models_and_downgrades(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn: Any) -> list[Any]:
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return [
                    d
                    for d in compare_metadata(ctx, Base.metadata)
                    if any(name in repr(d) for name in STAFF_TABLES)
                    and not (isinstance(d, tuple) and d[0] == "remove_table")
                ]

            assert await conn.run_sync(diff) == []
        async with engine.begin() as conn:
            await conn.run_sync(_alembic("downgrade", "0006", database_url))
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert not tables & set(STAFF_TABLES)
        async with engine.begin() as conn:
            await conn.run_sync(_alembic("upgrade", "head", database_url))
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert set(STAFF_TABLES) <= tables
    finally:
        await engine.dispose()
