"""The schema the migrations build, to compare with the models."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import inspect

from bot.core.db import create_engine
from bot.core.migrate import upgrade


async def migrated_columns(url: str, tables: Iterable[str]) -> dict[str, dict[str, bool]]:
    """Run every migration on ``url``; each table's columns and whether they are nullable."""
    names = list(tables)
    await upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def columns(sync_conn) -> dict[str, dict[str, bool]]:
                insp = inspect(sync_conn)
                return {t: {c["name"]: bool(c["nullable"]) for c in insp.get_columns(t)} for t in names}

            return await conn.run_sync(columns)
    finally:
        await engine.dispose()
