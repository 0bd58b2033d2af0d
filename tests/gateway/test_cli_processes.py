"""Operator-facing entry points as real processes: several gateway workers on one port, the menu push
against the WeChat API fake, and the chat console."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

from bot.core.config import ROOT
from tests.support.services import TEST_REDIS_URL
from tests.support.wechat import APP_ID, APP_SECRET


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


@pytest.fixture
def base_env(sqlite_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": TEST_REDIS_URL,
        "WECHAT_MESSAGE_MODE": "plain",
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET,
        "GOVBOT_MODE": "demo",  # on loopback: the demo may start without its own secrets
        "SMS_PROVIDER": "none",
        "RASA_URL": "http://127.0.0.1:9",
    }


def test_two_gateway_workers_share_one_port(base_env: dict[str, str], tmp_path: Path) -> None:
    port = unused_port()
    env = {**base_env, "PORT": str(port)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env,
                         stdout=open(tmp_path / f"w{i}.log", "wb"), stderr=subprocess.STDOUT)
        for i in range(2)
    ]  # fmt: skip
    try:
        assert wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] in (200, 503))
        time.sleep(1.0)
        assert all(p.poll() is None for p in procs), "a worker could not bind the shared port"
        for _ in range(10):
            status, body = get(f"http://127.0.0.1:{port}/healthz")
            checks = json.loads(body)["checks"]
            assert status == 503 and checks["redis"] == "ok" and checks["rasa"] == "error: unreachable"
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)


def test_menu_push_reaches_the_wechat_api(base_env: dict[str, str], tmp_path: Path) -> None:
    port = unused_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "bot.adapters.wechat.fake_api", "--port", str(port), "--app-id", APP_ID,
         "--app-secret", APP_SECRET],
        cwd=ROOT, stdout=open(tmp_path / "fake.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert wait_until(lambda: get(f"http://127.0.0.1:{port}/_fake/stats")[0] == 200)
        env = {**base_env, "WECHAT_API_BASE": f"http://127.0.0.1:{port}"}
        done = subprocess.run(
            [sys.executable, "-m", "bot", "wechat", "menu", "push"], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        token_req = urllib.request.Request(
            f"http://127.0.0.1:{port}/cgi-bin/stable_token",
            data=json.dumps(
                {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET}
            ).encode(),
            method="POST",
        )
        with urllib.request.urlopen(token_req, timeout=5) as resp:
            token = json.loads(resp.read())["access_token"]
        status, body = get(f"http://127.0.0.1:{port}/cgi-bin/menu/get?access_token={token}")
        menu = json.loads(body)["menu"]
        assert status == 200 and [b["name"] for b in menu["button"]] == ["办事服务", "我要投诉", "联系我们"]
    finally:
        fake.terminate()
        fake.wait(timeout=10)


async def test_chat_console_talks_through_the_api(aiohttp_server, monkeypatch, capsys) -> None:
    from aiohttp import web

    from bot.gateway import console

    seen: list[dict] = []

    async def chat(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer tok"
        body = await request.json()
        seen.append(body)
        return web.json_response({"texts": [f"答：{body['text']}"], "transfer_to_agent": False})

    app = web.Application()
    app.router.add_post("/api/chat", chat)
    server = await aiohttp_server(app)
    lines = iter(["你好", "", "营业执照"])

    def fake_input() -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(console, "_read_line", fake_input)
    assert await console.chat(str(server.make_url("")), "tok", "alice") == 0
    out = capsys.readouterr().out
    assert "助手> 答：你好" in out and "助手> 答：营业执照" in out
    assert seen == [{"sender": "alice", "text": "你好"}, {"sender": "alice", "text": "营业执照"}]
