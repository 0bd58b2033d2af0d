"""Slow clients are cut off (``bot/gateway/slow_clients.py``): over real sockets against the gateway app,
served with the runner options ``govbot gateway`` uses, on short timeouts."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestServer

from bot.core.config import Settings
from bot.core.env import Secret
from bot.gateway.app import build_app, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.slow_clients import runner_options
from tests.support.sms import sms_on_unreachable_twilio
from tests.support.wechat import TOKEN, sign

IDLE = 1.0


@pytest.fixture
async def gateway(redis_client, sqlite_url):
    settings = dataclasses.replace(
        Settings(), database_url=sqlite_url, wechat_message_mode="plain", wechat_token=Secret(TOKEN),
        wechat_allow_plain=True, http_idle_timeout=IDLE, http_body_timeout=IDLE,
    )  # fmt: skip
    sms = sms_on_unreachable_twilio()
    services = await build_services(
        settings, redis=redis_client, dialogue=ScriptedDialogue(), sms_settings=sms
    )
    server = TestServer(build_app(services))
    await server.start_server(**runner_options(settings))
    yield server
    await server.close()


async def _exchange(server: TestServer, parts: list[bytes], pause: float) -> tuple[bytes, float]:
    """Send ``parts`` with ``pause`` seconds between them; what came back before the server closed, and
    how long that took."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    started = time.monotonic()
    try:
        for n, part in enumerate(parts):
            if n:
                await asyncio.sleep(pause)
            try:
                writer.write(part)
                await writer.drain()
            except ConnectionError:  # the server closed the connection mid-request
                return b"", time.monotonic() - started
        data = await asyncio.wait_for(reader.read(), timeout=IDLE * 10)
    finally:
        writer.close()
    return data, time.monotonic() - started


def _post(path: str, length: int, content_type: str = "application/x-www-form-urlencoded") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def test_a_connection_that_never_finishes_its_headers_is_closed(gateway) -> None:
    data, took = await _exchange(gateway, [b"GET /healthz HTTP/1.1\r\nHost: loc"], 0)
    assert data == b"" and took < IDLE * 4


async def test_headers_trickled_a_byte_at_a_time_do_not_keep_the_connection(gateway) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 40
    data, took = await _exchange(gateway, [head[i : i + 1] for i in range(len(head))], IDLE / 8)
    assert data == b"" and took < IDLE * 4


async def test_an_idle_connection_after_a_response_is_closed(gateway) -> None:
    data, took = await _exchange(gateway, [b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"], 0)
    assert (
        data.startswith(b"HTTP/1.1 ") and took < IDLE * 4
    )  # answered (503: no broadcast worker), then closed


@pytest.mark.parametrize(
    ("label", "path", "content_type"),
    [
        ("SMS webhook", "/sms/twilio", "application/x-www-form-urlencoded"),
        ("Open311", "/open311/v2/requests.json", "application/x-www-form-urlencoded"),
        ("WeChat", "/wechat?{signed}", "text/xml"),
    ],
)
async def test_a_stalled_body_gets_408_and_the_connection_closes(
    gateway, label: str, path: str, content_type: str
) -> None:
    ts = str(int(time.time()))
    signed = urlencode({"signature": sign(TOKEN, ts, "n1"), "timestamp": ts, "nonce": "n1"})
    request = _post(path.format(signed=signed), 1000, content_type) + b"From=%2B86"
    data, took = await _exchange(gateway, [request], 0)
    assert data.startswith(b"HTTP/1.1 408"), (label, data[:80])
    assert took < IDLE * 4, label


async def test_a_request_refused_before_its_body_is_read_is_answered_and_closed_in_time(gateway) -> None:
    data, took = await _exchange(gateway, [_post("/api/chat", 1000, "application/json") + b'{"se'], 0)
    assert data.startswith(b"HTTP/1.1 401"), data[:80]
    assert took < IDLE * 4


async def test_a_body_that_keeps_arriving_is_not_cut_off(gateway) -> None:
    """Slow but steady (a few bytes every half timeout) is a slow network, not an attack: the body is read
    whole and answered (here: refused for its missing signature, after reading it)."""
    body = b"From=%2B8613800000000&To=%2B15005550006&Body=hello&MessageSid=SM" + b"0" * 32
    parts = [_post("/sms/twilio", len(body))] + [body[i : i + 16] for i in range(0, len(body), 16)]
    data, took = await _exchange(gateway, parts, IDLE / 2)
    assert data.startswith(b"HTTP/1.1 403"), data[:120]
    assert took > IDLE * 2  # it really was slower than the timeout, in all


async def test_on_the_staff_api_the_408_is_in_its_json_error_shape(gateway) -> None:
    data, _ = await _exchange(gateway, [_post("/api/staff/login", 1000, "application/json") + b'{"user'], 0)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"application/json" in head, data[:200]
    assert b'"error": "request_timeout"' in body


async def test_on_the_staff_api_an_oversized_body_is_a_json_413(gateway) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        url = f"http://{gateway.host}:{gateway.port}/api/staff/login"
        async with http.post(
            url, data=b"x" * (30 * 1024 * 1024), headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 413 and (await r.json())["error"] == "too_large"
