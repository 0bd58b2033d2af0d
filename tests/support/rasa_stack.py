"""Helpers for the end-to-end tests (tests/e2e/; the ``rasa_stack`` fixture is in its conftest.py): the
running stack's addresses, the Redis database its Rasa and action server use, waiting for a server."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from urllib.parse import urlparse

from tests.support.services import TEST_REDIS_URL

RASA_REDIS_DB = "14"  # the tracker/lock store of the e2e Rasa; the unit tests flush db 15


@dataclasses.dataclass
class Stack:
    rasa_url: str
    database_url: str
    approval_url: str


def stack_redis_url() -> str:
    """The Redis database the e2e Rasa server and action server share (same server as TEST_REDIS_URL)."""
    redis = urlparse(TEST_REDIS_URL)
    assert redis.hostname is not None, TEST_REDIS_URL
    return f"redis://{redis.hostname}:{redis.port or 6379}/{RASA_REDIS_DB}"


def wait_http(url: str, timeout: float, method: str = "GET", json_body: dict | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            data = json.dumps(json_body).encode() if json_body is not None else None
            headers = {"Content-Type": "application/json"}
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status == 200:
                    return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f}s: {last}")
