"""Where the test suite's real services are: a Redis database (flushed per test) and, when given, a
PostgreSQL database next to SQLite.  ``scripts/test.sh`` starts a private Redis server for each run."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.core.config import Settings

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")


async def reset_postgres(url: str) -> None:
    """An empty ``public`` schema in the PostgreSQL database at ``url``."""
    from sqlalchemy import text

    from bot.core.db import create_engine

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def with_action_server(aiohttp_server: Any, settings: Settings) -> Settings:
    """Start the real action server on ``settings``' database (the knowledge-base search the gateway's
    staff API and console ask of it) and return ``settings`` pointing at it."""
    from bot.gateway.actions.server import build_app, build_context

    context = build_context(dataclasses.replace(settings, redis_url=TEST_REDIS_URL))
    server = await aiohttp_server(build_app(context))
    return dataclasses.replace(settings, actions_port=server.port)
