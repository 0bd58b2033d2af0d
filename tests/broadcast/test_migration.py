"""Migrations create the campaign tables exactly as ``sms_gateway.broadcast.models`` declares them (0011:
a WeChat campaign's tag, and its mass-send jobs)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from bot.core.db import Base, create_engine
from bot.core.migrate import upgrade
from sms_gateway.broadcast import models  # noqa: F401 - registers the tables on Base.metadata

TABLES = ("broadcast_campaigns", "broadcast_recipients", "broadcast_wechat_jobs")


async def test_migrations_match_the_campaign_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def columns(sync_conn) -> dict[str, dict[str, bool]]:
                insp = inspect(sync_conn)
                return {t: {c["name"]: bool(c["nullable"]) for c in insp.get_columns(t)} for t in TABLES}

            migrated = await conn.run_sync(columns)
    finally:
        await engine.dispose()
    for table in TABLES:
        model = Base.metadata.tables[table]
        assert migrated[table] == {c.name: bool(c.nullable) for c in model.columns}, table
