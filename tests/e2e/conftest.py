"""The end-to-end stack, started once per test session: the reference approval backend, our action server
and the real Rasa server (through bot.rasa_process.runtime, as `make run` starts it) on one SQLite database
and one Redis database (:data:`~tests.support.rasa_stack.RASA_REDIS_DB`).

The model must be trained first (`govbot train`, which `make test` runs)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from aiohttp.test_utils import unused_port

from bot.core.config import ROOT, Settings
from bot.gateway.launcher import DIALOGUES, RASA_PYTHON, model_is_current, rasa_command, rasa_env
from tests.support.rasa_stack import RASA_REDIS_DB, Stack, wait_http
from tests.support.services import TEST_REDIS_URL


@pytest.fixture(scope="session")
def rasa_stack(tmp_path_factory) -> Iterator[Stack]:
    assert RASA_PYTHON.exists(), "the Rasa virtualenv is missing: run `make test` (scripts/setup.sh)"
    assert model_is_current(), "the Rasa model is missing or stale: run `.venv/bin/govbot train`"
    db_path: Path = tmp_path_factory.mktemp("e2e") / "e2e.db"
    database_url = f"sqlite+aiosqlite:///{db_path}"
    prepare = (
        "import asyncio, dataclasses, sys; from bot.gateway.launcher import _prepare_data; "
        "from bot.core.config import Settings; "
        "asyncio.run(_prepare_data(dataclasses.replace(Settings(), database_url=sys.argv[1], mode='demo')))"
    )
    subprocess.run([sys.executable, "-c", prepare, database_url], check=True, cwd=ROOT)
    actions_port, rasa_port, approval_port = unused_port(), unused_port(), unused_port()
    redis = urlparse(TEST_REDIS_URL)
    assert redis.hostname is not None, TEST_REDIS_URL
    # The e2e stack's own Redis database: start clean (trackers, rate limits and bindings of earlier runs
    # would otherwise leak in, e.g. the per-ticket failure count of the same seeded ticket numbers).
    import redis as redis_sync

    redis_sync.Redis(host=redis.hostname, port=redis.port or 6379, db=int(RASA_REDIS_DB)).flushdb()
    settings = dataclasses.replace(
        Settings(),
        redis_url=f"redis://{redis.hostname}:{redis.port}/{RASA_REDIS_DB}",
        actions_port=actions_port,
        database_url=database_url,
    )
    approval_url = f"http://127.0.0.1:{approval_port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ACTIONS_PORT": str(actions_port),
        "REDIS_URL": f"redis://{redis.hostname}:{redis.port}/{RASA_REDIS_DB}",
        "APPROVAL_API_BASE": approval_url,
        "APPROVAL_API_TOKEN": "e2e-token",
    }
    # Hand-off decisions depend on the clock: the actions see "always open" office hours in tests.
    env["CENTER_OFFICE_HOURS_SPEC"] = "mon-sun 00:00-23:59:59"
    logs = tmp_path_factory.mktemp("logs")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.adapters.approval.reference_backend", "--port", str(approval_port),
             "--db", str(db_path.parent / "approval.db"), "--token", "e2e-token", "--seed", "0"],
            cwd=ROOT, stdout=open(logs / "approval.log", "wb"), stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "bot", "actions", "--port", str(actions_port)],
            cwd=ROOT, env=env, stdout=open(logs / "actions.log", "wb"), stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(  # as `make run` starts it: through bot.rasa_process.runtime
            rasa_command(rasa_port), cwd=DIALOGUES, env={**os.environ, **rasa_env(settings)},
            stdout=open(logs / "rasa.log", "wb"), stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{actions_port}/health", 60)
        wait_http(f"{approval_url}/health", 60)
        rasa_url = f"http://127.0.0.1:{rasa_port}"
        wait_http(f"{rasa_url}/webhooks/rest/webhook", 240, "POST", {"sender": "probe", "message": "你好"})
        yield Stack(rasa_url, database_url, approval_url)
    except Exception:
        for name in ("approval.log", "actions.log", "rasa.log"):
            print(f"--- {name}\n" + (logs / name).read_text(errors="replace")[-4000:])
        raise
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
