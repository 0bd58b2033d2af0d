"""Migrations create the campaign tables exactly as ``sms_gateway.broadcast.models`` declares them (0011:
a WeChat campaign's tag, and its mass-send jobs)."""

from __future__ import annotations

from pathlib import Path

from bot.core.db import Base
from sms_gateway.broadcast import models  # noqa: F401 - registers the tables on Base.metadata
from tests.support.migrations import migrated_columns

TABLES = ("broadcast_campaigns", "broadcast_recipients", "broadcast_wechat_jobs")


async def test_migrations_match_the_campaign_models(tmp_path: Path) -> None:
    migrated = await migrated_columns(f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}", TABLES)
    for table in TABLES:
        model = Base.metadata.tables[table]
        assert migrated[table] == {c.name: bool(c.nullable) for c in model.columns}, table
