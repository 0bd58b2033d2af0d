"""Create or drop a PostgreSQL database next to the one a URL names (used by scripts/test.sh).

    python scripts/pg_test_db.py create|drop postgresql+asyncpg://user@host:5432/db NAME
"""

from __future__ import annotations

import asyncio
import re
import sys

import asyncpg


async def main(action: str, url: str, name: str) -> None:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise SystemExit(f"bad database name {name!r}")
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        if action == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
