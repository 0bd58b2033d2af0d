"""The chat stack as `make run` starts it, for the end-to-end tests and the chat-path evaluation: the
reference approval backend, our action server and the real Rasa server (through bot.rasa_process.runtime)
on one fresh SQLite database (the sample catalogue and demo data) and one Redis database.

The Rasa model must be trained first (`govbot train`; `make test` and `make eval` do it)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from bot.core.config import ROOT, Settings
from bot.gateway.launcher import DIALOGUES, RASA_PYTHON, model_is_current, rasa_command, rasa_env

APPROVAL_TOKEN = "e2e-token"


@dataclasses.dataclass
class Process:
    """One process of the stack, restartable (for the fault-injection tests)."""

    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.cmd, cwd=self.cwd, env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclasses.dataclass
class Stack:
    rasa_url: str
    database_url: str
    approval_url: str
    redis_url: str = ""
    logs: Path | None = None
    actions_port: int = 0
    processes: dict[str, Process] = dataclasses.field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """A throwaway Redis server (``redis-server`` must be installed)."""
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server), or set REDIS_URL")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def chat_stack(workdir: Path, redis_url: str, *, always_open: bool = True) -> Iterator[Stack]:
    """Start the stack in ``workdir`` on ``redis_url`` (its database is flushed first); stop it after.

    ``always_open``: the actions see office hours that never close (hand-off decisions depend on the
    clock otherwise)."""
    if not RASA_PYTHON.exists():
        raise SystemExit("the Rasa virtualenv is missing: run `make test` or scripts/setup.sh")
    if not model_is_current():
        raise SystemExit("the Rasa model is missing or stale: run `.venv/bin/govbot train`")
    import redis as redis_sync

    redis_sync.Redis.from_url(redis_url).flushdb()
    database_url = f"sqlite+aiosqlite:///{workdir / 'chat.db'}"
    prepare = (
        "import asyncio, dataclasses, sys; from bot.gateway.launcher import _prepare_data; "
        "from bot.core.config import Settings; "
        "asyncio.run(_prepare_data(dataclasses.replace(Settings(), database_url=sys.argv[1], mode='demo')))"
    )
    subprocess.run([sys.executable, "-c", prepare, database_url], check=True, cwd=ROOT)
    actions_port, rasa_port, approval_port = free_port(), free_port(), free_port()
    settings = dataclasses.replace(
        Settings(), redis_url=redis_url, actions_port=actions_port, database_url=database_url
    )
    approval_url = f"http://127.0.0.1:{approval_port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ACTIONS_PORT": str(actions_port),
        "REDIS_URL": redis_url,
        "APPROVAL_API_BASE": approval_url,
        "APPROVAL_API_TOKEN": APPROVAL_TOKEN,
    }
    if always_open:
        env["CENTER_OFFICE_HOURS_SPEC"] = "mon-sun 00:00-23:59:59"
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    processes = {
        "approval": Process(
            [sys.executable, "-m", "bot.adapters.approval.reference_backend", "--port", str(approval_port),
             "--db", str(workdir / "approval.db"), "--seed", "0"],
            ROOT, {**os.environ, "APPROVAL_API_TOKEN": APPROVAL_TOKEN}, logs / "approval.log",
        ),
        "actions": Process(
            [sys.executable, "-m", "bot", "actions", "--port", str(actions_port)],
            ROOT, env, logs / "actions.log",
        ),
        # as `make run` starts it: through bot.rasa_process.runtime
        "rasa": Process(
            rasa_command(rasa_port), DIALOGUES, {**os.environ, **rasa_env(settings)}, logs / "rasa.log"
        ),
    }  # fmt: skip
    for process in processes.values():
        process.start()
    try:
        wait_http(f"http://127.0.0.1:{actions_port}/health", 60)
        wait_http(f"{approval_url}/health", 60)
        rasa_url = f"http://127.0.0.1:{rasa_port}"
        wait_http(f"{rasa_url}/webhooks/rest/webhook", 240, "POST", {"sender": "probe", "message": "你好"})
        yield Stack(rasa_url, database_url, approval_url, redis_url, logs, actions_port, processes)
    except Exception:
        for name in ("approval.log", "actions.log", "rasa.log"):
            print(f"--- {name}\n" + (logs / name).read_text(errors="replace")[-4000:])
        raise
    finally:
        for process in processes.values():
            process.stop()


@contextmanager
def standalone_stack() -> Iterator[Stack]:
    """A stack with its own temporary directory and, unless ``REDIS_URL`` names one, its own Redis."""
    with tempfile.TemporaryDirectory(prefix="govbot-chat-") as tmp:
        workdir = Path(tmp)
        given = os.environ.get("REDIS_URL", "")
        if given:
            redis = urlparse(given)
            with chat_stack(workdir, f"redis://{redis.hostname}:{redis.port or 6379}/13") as stack:
                yield stack
        else:
            with private_redis(workdir) as url, chat_stack(workdir, url) as stack:
                yield stack
