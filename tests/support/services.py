"""Where the test suite's real services are: a Redis database (flushed per test) and, when given, a
PostgreSQL database next to SQLite.  ``scripts/test.sh`` starts a private Redis server for each run."""

from __future__ import annotations

import os

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
