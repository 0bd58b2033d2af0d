"""Helpers for the knowledge-base tests: the sample catalogue, CSV writing, and creating or dropping only
the knowledge-base tables (``Base.metadata.create_all``).  The ``kb_sessions`` fixture that uses them is in
tests/kb/conftest.py: a temporary SQLite file always, PostgreSQL too when ``TEST_POSTGRES_URL`` is set."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.db import Base, create_engine
from knowledge_base.importer import (
    DATA_DIR,
    SAMPLE_ALIASES,
    SAMPLE_CATALOGUE,
    import_aliases,
    import_catalogue,
)
from knowledge_base.models import KB_TABLES
from knowledge_base.schema import HEADERS

SAMPLE_CSV = DATA_DIR / "service_guides.csv"
SAMPLE_GBK = DATA_DIR / "service_guides_gbk.csv"

__all__ = [
    "SAMPLE_ALIASES",
    "SAMPLE_CATALOGUE",
    "SAMPLE_CSV",
    "SAMPLE_GBK",
    "load_sample",
    "sample_rows",
    "write_csv",
]


async def create_kb_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: Base.metadata.drop_all(c, tables=list(KB_TABLES)))
            await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=list(KB_TABLES)))
    finally:
        await engine.dispose()


async def drop_kb_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: Base.metadata.drop_all(c, tables=list(KB_TABLES)))
    finally:
        await engine.dispose()


async def load_sample(sessions: async_sessionmaker[AsyncSession]) -> None:
    report = await import_catalogue(sessions, SAMPLE_CATALOGUE)
    assert report.ok, report.summary()
    report = await import_aliases(sessions, SAMPLE_ALIASES)
    assert report.ok, report.summary()


def sample_rows() -> list[list[str]]:
    """The sample catalogue as rows of strings (header first)."""
    with SAMPLE_CSV.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(HEADERS)
    return rows


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path
