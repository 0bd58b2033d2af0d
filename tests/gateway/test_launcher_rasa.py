"""How ``govbot run`` starts Rasa (through bot.rasa_process.runtime, one or RASA_PROCESSES servers) and
the demo fakes (secrets in their environment, never in their arguments), and its private Redis."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys

import pytest
import redis as sync_redis
from aiohttp.test_utils import unused_port

from bot.core.config import Settings
from bot.gateway.launcher import DIALOGUES, RASA_PYTHON, local_rasa_servers, rasa_command, rasa_env


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def test_rasa_urls_from_rasa_url_and_rasa_processes() -> None:
    assert settings().rasa_urls == ["http://127.0.0.1:5005", "http://127.0.0.1:5006"]  # two by default
    assert settings(RASA_PROCESSES="1").rasa_urls == ["http://127.0.0.1:5005"]
    assert settings(RASA_URL="http://localhost:7000/", RASA_PROCESSES="3").rasa_urls == [
        "http://localhost:7000",
        "http://localhost:7001",
        "http://localhost:7002",
    ]
    # Another machine's Rasa is taken as given, as is a list.
    assert settings(RASA_URL="http://rasa.internal:5005").rasa_urls == ["http://rasa.internal:5005"]
    listed = settings(RASA_URL="http://10.0.0.5:5005, http://127.0.0.1:5006", RASA_PROCESSES="4")
    assert listed.rasa_urls == ["http://10.0.0.5:5005", "http://127.0.0.1:5006"]
    assert settings(RASA_PROCESSES="0").rasa_urls == ["http://127.0.0.1:5005"]


def test_launcher_starts_the_local_rasa_servers() -> None:
    assert local_rasa_servers(settings()) == [("rasa-1", 5005), ("rasa-2", 5006)]
    assert local_rasa_servers(settings(RASA_PROCESSES="1")) == [("rasa", 5005)]
    listed = settings(RASA_URL="http://10.0.0.5:5005,http://127.0.0.1:5006,http://localhost:5007")
    assert local_rasa_servers(listed) == [("rasa-1", 5006), ("rasa-2", 5007)]
    assert local_rasa_servers(settings(RASA_URL="http://rasa.internal:5005")) == []


def test_rasa_command_runs_rasa_with_the_fast_paths() -> None:
    """The launcher's command line and environment: Rasa's interpreter finds the runtime module, which
    installs its fast paths and hands over to Rasa's own command line."""
    assert RASA_PYTHON.exists(), "the Rasa virtualenv is missing: run `make test` (scripts/setup.sh)"
    command = rasa_command(5005)
    assert command[:3] == [str(RASA_PYTHON), "-m", "bot.rasa_process.runtime"]
    check = (
        "import runpy, sys; from bot.rasa_process import runtime as r; print('installed', *r.install()); "
        "sys.argv = ['rasa', '--version']; runpy.run_module('bot.rasa_process.runtime', run_name='__main__')"
    )
    proc = subprocess.run(
        [str(RASA_PYTHON), "-c", check],
        cwd=DIALOGUES,
        env={**os.environ, **rasa_env(Settings())},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "installed compiled_response_validator compact_session_carry_over" in proc.stdout
    assert "Rasa Version      :         3.6.21" in proc.stdout


class Recorder:
    """A stand-in for the launcher's Supervisor: records what would be started."""

    def __init__(self) -> None:
        self.started: list[tuple[str, list[str], dict[str, str]]] = []

    def start(
        self, name: str, cmd: list[str], *, cwd: object = None, env: dict[str, str] | None = None
    ) -> None:
        self.started.append((name, cmd, env or {}))


def test_the_fakes_get_their_secrets_in_the_environment_not_the_arguments(monkeypatch) -> None:
    """Arguments are visible to every user of the machine in `ps`; the environment is not."""
    from bot.core.env import Secret
    from bot.gateway import launcher

    recorder = Recorder()
    started = recorder.started

    monkeypatch.setenv("APPROVAL_API_BASE", "http://127.0.0.1:8183")
    monkeypatch.setenv("APPROVAL_API_TOKEN", "approval-secret-123")
    config = settings(WECHAT_API_BASE="http://127.0.0.1:8181")
    config = dataclasses.replace(config, wechat_app_secret=Secret("wechat-secret-456"))
    launcher._start_fakes(recorder, config)  # type: ignore[arg-type]
    names = {name for name, _, _ in started}
    assert {"wechat-api-fake", "approval-reference-backend"} <= names
    for _, cmd, _ in started:
        assert not any("secret" in arg for arg in cmd), cmd
    envs = {name: env for name, _, env in started}
    assert envs["wechat-api-fake"]["WECHAT_APP_SECRET"] == "wechat-secret-456"
    assert envs["approval-reference-backend"]["APPROVAL_API_TOKEN"] == "approval-secret-123"


def test_a_crashed_child_is_restarted_with_back_off_while_the_others_run() -> None:
    from bot.gateway.launcher import Supervisor

    now = [1000.0]
    sup = Supervisor(max_backoff=8.0, stable=60.0, clock=lambda: now[0])
    sup.start("steady", [sys.executable, "-c", "import time; time.sleep(60)"])
    sup.start("crashy", [sys.executable, "-c", "raise SystemExit(3)"])
    try:
        crashy = sup.children[1]
        crashy.proc.wait(timeout=30)
        assert sup.tend() == ["crashy"]  # down: restart scheduled in 1 s; "steady" is untouched
        first_pid = crashy.proc.pid
        now[0] += 1.0
        assert sup.tend() == [] and crashy.proc.pid != first_pid  # restarted
        delays = []
        for _ in range(5):  # it keeps crashing at once: 2 s, 4 s, 8 s, 8 s … (capped)
            crashy.proc.wait(timeout=30)
            sup.tend()
            assert crashy.restart_at is not None
            delays.append(crashy.restart_at - now[0])
            now[0] = crashy.restart_at
            sup.tend()
        assert delays == [2.0, 4.0, 8.0, 8.0, 8.0]
        assert sup.children[0].proc.poll() is None  # the steady one never stopped
    finally:
        sup.stop_all()


def test_the_private_redis_has_a_password_no_one_sees_in_ps(tmp_path) -> None:
    """`make run`'s own Redis refuses clients without its password; the password is in a 0600 file, not
    in the process arguments, and the other govbot commands find it there."""
    from bot.core.config import private_redis_url
    from bot.gateway.launcher import Supervisor, private_redis_password, start_private_redis

    port = unused_port()
    plain_url = f"redis://127.0.0.1:{port}/0"
    sup = Supervisor()
    try:
        url = start_private_redis(sup, plain_url, tmp_path)
        password = private_redis_password(tmp_path)
        assert len(password) >= 32 and password in url
        with pytest.raises(sync_redis.AuthenticationError):
            sync_redis.Redis.from_url(plain_url).ping()
        assert sync_redis.Redis.from_url(url).ping()
        for name in ("password", "redis.conf"):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
        pid = sup.children[0].proc.pid
        args = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True).stdout
        assert "redis" in args and password not in args
        assert private_redis_url(plain_url, tmp_path / "password") == url
        assert start_private_redis(sup, plain_url, tmp_path) == url  # already running: same password
    finally:
        sup.stop_all()


def test_the_aliyun_fake_is_started_for_a_local_endpoint_without_secrets_in_its_arguments(
    monkeypatch,
) -> None:
    from bot.gateway import launcher

    recorder = Recorder()
    started = recorder.started

    monkeypatch.setenv("SMS_PROVIDER", "aliyun")
    monkeypatch.setenv("ALIYUN_SMS_ENDPOINT", "http://127.0.0.1:8184")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tLauncher000000000")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "launcher-secret-789")
    monkeypatch.setenv("ALIYUN_SMS_PUSH_TOKEN", "launcher-push-token-0123")
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:8080")
    launcher._start_fakes(recorder, settings())  # type: ignore[arg-type]
    ((cmd, env),) = [(cmd, env) for name, cmd, env in started if name == "aliyun-sms-fake"]
    assert env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] == "launcher-secret-789"
    assert env["ALIYUN_SMS_PUSH_TOKEN"] == "launcher-push-token-0123"
    assert cmd[cmd.index("--port") + 1] == "8184"
    assert cmd[cmd.index("--push-base") + 1] == "http://127.0.0.1:8080/sms/aliyun"
    assert not any("secret" in arg or "push-token" in arg for arg in cmd), cmd  # `ps` shows arguments
    assert "twilio-fake" not in {name for name, _, _ in started}
