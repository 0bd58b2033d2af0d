"""Helpers for the end-to-end tests (tests/e2e/; the ``rasa_stack`` fixture is in its conftest.py, the stack
itself in eval/stack.py): the Redis database the stack's Rasa and action server use."""

from __future__ import annotations

from urllib.parse import urlparse

from tests.support.services import TEST_REDIS_URL

RASA_REDIS_DB = "14"  # the tracker/lock store of the e2e Rasa; the unit tests flush db 15


def stack_redis_url() -> str:
    """The Redis database the e2e Rasa server and action server share (same server as TEST_REDIS_URL)."""
    redis = urlparse(TEST_REDIS_URL)
    assert redis.hostname is not None, TEST_REDIS_URL
    return f"redis://{redis.hostname}:{redis.port or 6379}/{RASA_REDIS_DB}"
