"""Migration 0004 creates exactly the tables of ``bot.domains.progress.models`` and downgrades cleanly
(SQLite, and PostgreSQL when TEST_POSTGRES_URL is set)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from bot.core.config import ROOT
from bot.core.db import create_engine
from bot.domains.progress.models import PROGRESS_TABLES


async def _columns(url: str) -> dict[str, dict[str, bool]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def read(sync_conn) -> dict[str, dict[str, bool]]:
                insp = inspect(sync_conn)
                names = set(insp.get_table_names())
                return {
                    t.name: {c["name"]: bool(c["nullable"]) for c in insp.get_columns(t.name)}
                    for t in PROGRESS_TABLES
                    if t.name in names
                }

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def _alembic(url: str, action: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:

            def run(sync_conn) -> None:
                cfg = Config(str(ROOT / "alembic.ini"))
                cfg.set_main_option("script_location", str(ROOT / "migrations"))
                cfg.attributes["url"] = url
                cfg.attributes["connection"] = sync_conn
                getattr(command, action)(cfg, revision)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def test_migration_matches_models_and_downgrades(database_url: str) -> None:
    migrated = await _columns(database_url)
    for table in PROGRESS_TABLES:
        assert migrated[table.name] == {c.name: bool(c.nullable) for c in table.columns}, table.name
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            uniques = await conn.run_sync(
                lambda c: {
                    t: [tuple(u["column_names"]) for u in inspect(c).get_unique_constraints(t)]
                    for t in ("progress_bindings", "progress_notifications")
                }
            )
    finally:
        await engine.dispose()
    assert ("sender_id", "ticket_no") in uniques["progress_bindings"]
    assert ("ticket_no", "status", "status_round", "sender_id") in uniques["progress_notifications"]
    await _alembic(database_url, "downgrade", "0003")
    assert await _columns(database_url) == {}
    await _alembic(database_url, "upgrade", "head")
    assert set(await _columns(database_url)) == {t.name for t in PROGRESS_TABLES}
