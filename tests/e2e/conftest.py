"""The end-to-end stack, started once per test session: the reference approval backend, our action server
and the real Rasa server (through bot.rasa_process.runtime, as `make run` starts it) on one SQLite database
and one Redis database (:data:`~tests.support.rasa_stack.RASA_REDIS_DB`).

The model must be trained first (`govbot train`, which `make test` runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.gateway.launcher import RASA_PYTHON, model_is_current
from eval.stack import Stack, chat_stack
from tests.support.rasa_stack import stack_redis_url


@pytest.fixture(scope="session")
def rasa_stack(tmp_path_factory) -> Iterator[Stack]:
    assert RASA_PYTHON.exists(), "the Rasa virtualenv is missing: run `make test` (scripts/setup.sh)"
    assert model_is_current(), "the Rasa model is missing or stale: run `.venv/bin/govbot train`"
    with chat_stack(tmp_path_factory.mktemp("e2e"), stack_redis_url()) as stack:
        yield stack
