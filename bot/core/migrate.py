"""Apply the Alembic migrations programmatically (used by the CLI, `make run` and the tests)."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config

from bot.core.config import ROOT
from bot.core.db import create_engine


def _config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


async def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (creating it from scratch when empty)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:

            def _do(sync_conn) -> None:  # type: ignore[no-untyped-def]
                cfg = _config(url)
                cfg.attributes["connection"] = sync_conn
                command.upgrade(cfg, revision)

            await conn.run_sync(_do)
    finally:
        await engine.dispose()


def upgrade_sync(url: str, revision: str = "head") -> None:
    asyncio.run(upgrade(url, revision))
