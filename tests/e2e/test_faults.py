"""Fault injection with the real processes: a gateway worker (``python -m bot serve``) in front of the real
Rasa server, action server and reference approval backend, all on a Redis server of this module's own —
then Redis is killed and restarted mid-traffic, the action server is killed and restarted, the approval
backend is killed, and Rasa is killed.  Each time every WeChat message is answered within WeChat's 5
seconds with a reply (never an error page, never silence), and the service recovers once the part is back.

(The broadcast worker killed mid-campaign is tested in ``tests/broadcast/test_workers.py``; the SMS provider
answering 429/500 in ``tests/sms/test_outbox.py``; a restarted process under ``make run`` in
``tests/gateway/test_launcher_rasa.py``.)"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import xmltodict

from bot.core.config import ROOT
from eval.stack import Process, Stack, chat_stack, free_port, wait_http
from tests.support.wechat import APP_ID, APP_SECRET, TOKEN, WeChatRequest, message_xml

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

FALLBACK = "系统暂时繁忙"  # the polite reply while a part is down (bot/gateway/messages.py)
WECHAT_LIMIT = 5.0


@dataclass
class Faults:
    stack: Stack
    redis: Process
    redis_port: int
    gateway_url: str
    gateway_log: Path


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> Iterator[Faults]:
    workdir = tmp_path_factory.mktemp("faults")
    redis_port = free_port()
    redis = Process(
        [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        workdir, dict(os.environ), workdir / "redis.log",
    )  # fmt: skip
    redis.start()
    _wait_port(redis_port)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    gateway_port = free_port()
    try:
        with chat_stack(workdir, redis_url) as stack:
            env = {
                **os.environ,
                "GOVBOT_MODE": "demo",
                "PORT": str(gateway_port),
                "REDIS_URL": redis_url,
                "DATABASE_URL": stack.database_url,
                "RASA_URL": stack.rasa_url,
                "RASA_TIMEOUT": "2.5",
                "ACTIONS_PORT": str(stack.actions_port),
                "APPROVAL_API_BASE": stack.approval_url,
                "APPROVAL_API_TOKEN": "e2e-token",
                "WECHAT_MESSAGE_MODE": "plain",
                "WECHAT_TOKEN": TOKEN,
                "WECHAT_APP_ID": APP_ID,
                "WECHAT_APP_SECRET": APP_SECRET,
                "WECHAT_API_BASE": "http://127.0.0.1:9",  # late pushes fail fast (and are recorded)
                "SMS_PROVIDER": "none",
            }
            gateway_log = workdir / "gateway.log"
            gateway = Process([sys.executable, "-m", "bot", "serve"], ROOT, env, gateway_log)
            gateway.start()
            try:
                _wait_port(gateway_port, 30)
                yield Faults(stack, redis, redis_port, f"http://127.0.0.1:{gateway_port}", gateway_log)
            finally:
                gateway.stop()
    finally:
        redis.stop()


def send(faults: Faults, sender: str, text: str) -> tuple[int | str, float, str]:
    """One signed WeChat message: (HTTP status, seconds, the passive reply's text or the raw body)."""
    path, body = WeChatRequest(message_xml("text", openid=sender, Content=text), mode="plain").build()
    request = urllib.request.Request(
        faults.gateway_url + path, data=body, headers={"Content-Type": "text/xml"}
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            status, raw = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return type(exc).__name__, time.monotonic() - started, ""
    took = time.monotonic() - started
    if raw.startswith("<xml>"):
        raw = xmltodict.parse(raw)["xml"].get("Content") or ""
    return status, took, raw


def healthz(faults: Faults) -> dict[str, str]:
    import json

    try:
        with urllib.request.urlopen(faults.gateway_url + "/healthz", timeout=10) as resp:
            return json.loads(resp.read())["checks"]
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())["checks"]


def answered_normally(faults: Faults, sender: str, text: str, expect: str, timeout: float = 60) -> str:
    """Send until the reply contains ``expect`` (a part that came back may take a moment); the reply."""
    deadline = time.monotonic() + timeout
    reply = ""
    while time.monotonic() < deadline:
        status, took, reply = send(faults, sender, text)
        assert status == 200 and took < WECHAT_LIMIT, (status, took, reply)
        if expect in reply:
            return reply
        time.sleep(1)
    raise AssertionError(f"never answered with {expect!r}; last reply {reply!r}")


def assert_polite(result: tuple[int | str, float, str]) -> None:
    status, took, reply = result
    assert status == 200, result
    assert took < WECHAT_LIMIT, result
    assert reply and reply != "success", result  # a reply, not silence
    assert "Traceback" not in reply and "Error" not in reply, result


def test_redis_killed_and_restarted_mid_traffic(faults: Faults) -> None:
    answered_normally(faults, "oFaultRedis0", "你好", "您好")
    results: list[tuple[int | str, float, str]] = []
    stop = threading.Event()

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            results.append(send(faults, f"oFaultRedis{n}", "个体户营业执照要带什么材料"))
            time.sleep(0.1)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        time.sleep(1.0)
        faults.redis.kill()
        time.sleep(0.5)
        down = healthz(faults)
        time.sleep(1.5)
        faults.redis.start()
        _wait_port(faults.redis_port)
        time.sleep(2.0)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert down["redis"].startswith("error"), down
    assert len(results) >= 10
    for result in results:
        assert_polite(result)
    assert any(FALLBACK in reply for _, _, reply in results), "some messages arrived while Redis was down"
    # Redis is back (empty: Rasa's trackers and our dedup keys are gone): conversations start afresh
    answered_normally(faults, "oFaultRedisAfter", "个体户营业执照要带什么材料", "材料")
    assert healthz(faults)["redis"] == "ok"


def test_action_server_killed_then_restarted(faults: Faults) -> None:
    faults.stack.processes["actions"].kill()
    result = send(faults, "oFaultActions1", "个体户营业执照要带什么材料")
    assert_polite(result)
    assert healthz(faults)["actions"] == "error: unreachable"
    faults.stack.processes["actions"].start()
    wait_http(f"http://127.0.0.1:{faults.stack.actions_port}/health", 60)
    answered_normally(faults, "oFaultActions2", "个体户营业执照要带什么材料", "材料")
    assert healthz(faults)["actions"] == "ok"


def test_approval_backend_killed(faults: Faults) -> None:
    faults.stack.processes["approval"].kill()
    try:
        result = send(faults, "oFaultApproval", "我的受理号是202611030000152，办到哪一步了")
        assert_polite(result)
        assert "202611030000152" not in result[2] or "稍后" in result[2], result
    finally:
        faults.stack.processes["approval"].start()
        wait_http(f"{faults.stack.approval_url}/health", 60)


def test_rasa_killed_last(faults: Faults) -> None:
    """Last in this module: Rasa takes half a minute to load a model, so it is not restarted here."""
    faults.stack.processes["rasa"].kill()
    results = [send(faults, f"oFaultRasa{n}", "个体户营业执照要带什么材料") for n in range(3)]
    for result in results:
        assert_polite(result)
        assert FALLBACK in result[2], result
    assert healthz(faults)["rasa"] == "error: unreachable"
