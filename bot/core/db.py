"""Database engine, session factory and the declarative base shared by every domain package.

SQLite (aiosqlite) is the default; ``DATABASE_URL=postgresql+asyncpg://...`` switches to PostgreSQL.
The schema is owned by Alembic migrations under ``migrations/`` (``govbot db upgrade``).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Table, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for all tables (bot, knowledge_base, sms_gateway)."""


def mapped_table(model: type[Base]) -> Table:
    """The ``Table`` of a declarative class (SQLAlchemy types ``__table__`` as any ``FromClause``)."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a Table")
    return table


def create_engine(url: str) -> AsyncEngine:
    """An async engine; for SQLite the parent folder is created and WAL + foreign keys are switched on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
