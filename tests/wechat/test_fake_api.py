"""The fake WeChat API server: token semantics, validation, error codes, control endpoints, CLI process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.adapters.wechat.fake_api import FAKE_STATE, build_app
from bot.core.config import ROOT

APP_ID = "wxfaketest000001"
SECRET = "fake-test-secret"
OPENID = "oFakeUser0123456789abcdefghi"
TEMPLATE = "TPL_OK"


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0  # 2025-06-15 23:06:40 Beijing time

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def wx(aiohttp_client: Callable[..., Any], clock: Clock) -> TestClient:
    return await aiohttp_client(build_app(APP_ID, SECRET, template_ids=[TEMPLATE], clock=clock))


@pytest.fixture
async def wx_strict(aiohttp_client: Callable[..., Any], clock: Clock) -> TestClient:
    return await aiohttp_client(build_app(APP_ID, SECRET, enforce_cs_window=True, clock=clock))


async def post(client: TestClient, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
    """POST ``body`` as UTF-8 JSON (``ensure_ascii=False``, as WeChat requires)."""
    if body is not None:
        kwargs["data"] = json.dumps(body, ensure_ascii=False).encode("utf-8")
        kwargs["headers"] = {"Content-Type": "application/json"}
    resp = await client.post(path, **kwargs)
    assert resp.status == 200
    return await resp.json(content_type=None)


async def get(client: TestClient, path: str, **kwargs: Any) -> Any:
    resp = await client.get(path, **kwargs)
    assert resp.status == 200
    return await resp.json(content_type=None)


async def stable(client: TestClient, force: bool = False, **overrides: Any) -> dict[str, Any]:
    body = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET, "force_refresh": force}
    body.update(overrides)
    return await post(client, "/cgi-bin/stable_token", {k: v for k, v in body.items() if v is not None})


async def send(client: TestClient, token: str, body: Any) -> dict[str, Any]:
    return await post(client, "/cgi-bin/message/custom/send", body, params={"access_token": token})


def text(content: str, touser: str = OPENID) -> dict[str, Any]:
    return {"touser": touser, "msgtype": "text", "text": {"content": content}}


# stable_token / token


@pytest.mark.parametrize(
    ("overrides", "errcode", "errmsg"),
    [
        ({"grant_type": "password"}, 40002, "invalid grant_type"),
        ({"appid": None}, 41002, "appid missing"),
        ({"appid": "wxsomeoneelse000"}, 40013, "invalid appid"),
        ({"secret": None}, 41004, "appsecret missing"),
        ({"secret": "wrong"}, 40125, "invalid appsecret"),
    ],
)
async def test_stable_token_validates_credentials(wx, overrides, errcode, errmsg) -> None:
    result = await stable(wx, **overrides)
    assert result["errcode"] == errcode
    assert result["errmsg"].startswith(errmsg + " rid: ")
    assert "access_token" not in result


async def test_stable_token_needs_a_json_post(wx) -> None:
    assert (await post(wx, "/cgi-bin/stable_token", data=b"grant_type=client_credential"))["errcode"] == 47001
    assert (await post(wx, "/cgi-bin/stable_token", data=b""))["errcode"] == 44002
    assert (await get(wx, "/cgi-bin/stable_token"))["errcode"] == 43002


async def test_stable_token_normal_mode_returns_the_same_token(wx, clock) -> None:
    first = await stable(wx)
    assert first["expires_in"] == 7200
    clock.now += 1000
    second = await stable(wx)
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] == 6200


async def test_stable_token_prerefreshes_in_the_last_five_minutes(wx, clock) -> None:
    old = (await stable(wx))["access_token"]
    clock.now += 7200 - 299
    renewed = await stable(wx)
    assert renewed["access_token"] != old
    assert renewed["expires_in"] == 7200
    # Both work during the hand-over; the old one then expires (42001).
    assert (await send(wx, old, text("a")))["errcode"] == 0
    assert (await send(wx, renewed["access_token"], text("b")))["errcode"] == 0
    clock.now += 300
    assert (await send(wx, old, text("c")))["errcode"] == 42001
    assert (await send(wx, renewed["access_token"], text("d")))["errcode"] == 0


async def test_force_refresh_invalidates_the_old_token_with_limits(wx, clock) -> None:
    old = (await stable(wx))["access_token"]
    new = (await stable(wx, force=True))["access_token"]
    assert new != old
    assert (await send(wx, old, text("x")))["errcode"] == 40001
    assert (await send(wx, new, text("x")))["errcode"] == 0
    # Within 30 s a force refresh does not refresh.
    clock.now += 10
    assert (await stable(wx, force=True))["access_token"] == new
    clock.now += 21
    newer = (await stable(wx, force=True))["access_token"]
    assert newer != new
    stats = await get(wx, "/_fake/stats")
    assert stats["stable_token_force"] == 3
    assert stats["force_refreshes"] == 2
    # 20 a day, then 45009.
    for _ in range(18):
        clock.now += 31
        assert "access_token" in await stable(wx, force=True)
    clock.now += 31
    result = await stable(wx, force=True)
    assert result["errcode"] == 45009
    assert result["errmsg"].startswith("reach max api daily quota limit")


async def test_legacy_token_issues_new_tokens_and_keeps_the_old_for_five_minutes(wx, clock) -> None:
    query = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET}
    stable_token = (await stable(wx))["access_token"]
    first = (await get(wx, "/cgi-bin/token", params=query))["access_token"]
    second = (await get(wx, "/cgi-bin/token", params=query))["access_token"]
    assert first != second
    assert (await send(wx, first, text("x")))["errcode"] == 0
    clock.now += 301
    assert (await send(wx, first, text("x")))["errcode"] == 42001
    assert (await send(wx, second, text("x")))["errcode"] == 0
    assert (await send(wx, stable_token, text("x")))["errcode"] == 0  # isolated from stable_token
    assert (await get(wx, "/cgi-bin/token", params={**query, "secret": "bad"}))["errcode"] == 40125
    assert (await post(wx, "/cgi-bin/token", {}))["errcode"] == 43001
    assert (await get(wx, "/_fake/stats"))["token"] == 4


async def test_ip_whitelist(aiohttp_client) -> None:
    client = await aiohttp_client(build_app(APP_ID, SECRET, ip_whitelist=["10.0.0.1"]))
    result = await stable(client)
    assert result["errcode"] == 40164
    assert result["errmsg"].startswith("invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist")


# customer-service send


async def test_custom_send_checks_the_access_token(wx) -> None:
    resp = await wx.post("/cgi-bin/message/custom/send", json=text("x"))
    assert (await resp.json(content_type=None))["errcode"] == 41001
    result = await send(wx, "not-a-token", text("x"))
    assert result["errcode"] == 40001
    assert result["errmsg"].startswith("invalid credential, access_token is invalid or not latest")


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"msgtype": "text", "text": {"content": "x"}}, 40003),
        ({"touser": OPENID, "msgtype": "sticker"}, 40008),
        ({"touser": OPENID, "msgtype": "text", "text": {"content": ""}}, 44004),
        ({"touser": OPENID, "msgtype": "text"}, 44004),
        ({"touser": OPENID, "msgtype": "text", "text": {"content": "办" * 683}}, 45002),  # 2049 bytes
        ({"touser": OPENID, "msgtype": "image", "image": {}}, 40007),
        ({"touser": OPENID, "msgtype": "news", "news": {"articles": []}}, 44003),
    ],
)
async def test_custom_send_validates_the_message(wx, body, errcode) -> None:
    token = (await stable(wx))["access_token"]
    assert (await send(wx, token, body))["errcode"] == errcode
    assert await get(wx, "/_fake/sent") == []


async def test_custom_send_rejects_empty_non_json_and_escaped_bodies(wx) -> None:
    token = (await stable(wx))["access_token"]
    params = {"access_token": token}
    path = "/cgi-bin/message/custom/send"
    assert (await post(wx, path, data=b"", params=params))["errcode"] == 44002
    assert (await post(wx, path, data=b"{not json", params=params))["errcode"] == 47001
    escaped = json.dumps(text("您好")).encode()  # ensure_ascii=True: "\u60a8\u597d"
    assert (await post(wx, path, data=escaped, params=params))["errcode"] == 40033
    literal = json.dumps(text("path C:\\users\\data")).encode()  # an escaped backslash is not \uXXXX
    assert (await post(wx, path, data=literal, params=params))["errcode"] == 0


async def test_custom_send_records_the_message(wx, clock) -> None:
    token = (await stable(wx))["access_token"]
    assert await send(wx, token, text("您好")) == {"errcode": 0, "errmsg": "ok"}
    sent = await get(wx, "/_fake/sent")
    assert sent == [
        {"kind": "custom", "touser": OPENID, "msgtype": "text", "payload": text("您好"), "time": clock.now}
    ]
    assert await get(wx, "/_fake/sent", params={"kind": "template"}) == []


async def test_customer_service_window_after_a_message(wx_strict, clock) -> None:
    token = (await stable(wx_strict))["access_token"]
    result = await send(wx_strict, token, text("no interaction yet"))
    assert result["errcode"] == 45015
    assert result["errmsg"].startswith("response out of time limit or subscription is canceled")
    await post(wx_strict, "/_fake/interaction", {"openid": OPENID, "kind": "message"})
    for i in range(5):
        assert (await send(wx_strict, token, text(f"reply {i}")))["errcode"] == 0
    result = await send(wx_strict, token, text("sixth"))
    assert result["errcode"] == 45047
    assert result["errmsg"].startswith("out of response count limit")
    # A new message opens a new window; after 48 h it is closed.
    clock.now += 3600
    await post(wx_strict, "/_fake/interaction", {"openid": OPENID, "kind": "message"})
    assert (await send(wx_strict, token, text("again")))["errcode"] == 0
    clock.now += 48 * 3600
    token = (await stable(wx_strict))["access_token"]
    assert (await send(wx_strict, token, text("late")))["errcode"] == 45015


async def test_customer_service_window_after_a_click_and_unsubscribe(wx_strict, clock) -> None:
    token = (await stable(wx_strict))["access_token"]
    await post(wx_strict, "/_fake/interaction", {"openid": OPENID, "kind": "click"})
    for _ in range(3):
        assert (await send(wx_strict, token, text("menu answer")))["errcode"] == 0
    assert (await send(wx_strict, token, text("fourth")))["errcode"] == 45047
    await post(wx_strict, "/_fake/interaction", {"openid": OPENID, "kind": "subscribe", "time": clock.now})
    clock.now += 60
    assert (await send(wx_strict, token, text("a minute later")))["errcode"] == 45015
    await post(wx_strict, "/_fake/interaction", {"openid": OPENID, "kind": "message"})
    await post(wx_strict, "/_fake/interaction", {"openid": OPENID, "kind": "unsubscribe"})
    assert (await send(wx_strict, token, text("after unfollow")))["errcode"] == 45015
    resp = await wx_strict.post("/_fake/interaction", json={"openid": OPENID, "kind": "poke"})
    assert resp.status == 400


# template messages


async def test_template_send(wx) -> None:
    token = (await stable(wx))["access_token"]
    path = "/cgi-bin/message/template/send"
    params = {"access_token": token}
    body = {
        "touser": OPENID,
        "template_id": TEMPLATE,
        "data": {"first": {"value": "您好"}, "thing1": {"value": "社保卡"}, "remark": {"value": "谢谢"}},
    }
    first = await post(wx, path, body, params=params)
    second = await post(wx, path, body, params=params)
    assert first["errcode"] == 0 and second["msgid"] == first["msgid"] + 1
    sent = await get(wx, "/_fake/sent", params={"kind": "template"})
    assert sent[0]["payload"]["data"] == {"thing1": {"value": "社保卡"}}  # first/remark dropped since 2023
    assert sent[0]["dropped_fields"] == ["first", "remark"]
    assert (await post(wx, path, {**body, "template_id": "OTHER"}, params=params))["errcode"] == 40037
    assert (await post(wx, path, {**body, "data": {"thing1": "bare"}}, params=params))["errcode"] == 47001
    assert (await post(wx, path, {**body, "touser": ""}, params=params))["errcode"] == 40003
    await post(wx, "/_fake/templates", {"template_ids": ["OTHER"]})
    assert (await post(wx, path, {**body, "template_id": "OTHER"}, params=params))["errcode"] == 0
    await post(wx, "/_fake/interaction", {"openid": OPENID, "kind": "unsubscribe"})
    assert (await post(wx, path, body, params=params))["errcode"] == 43004


# menu


def leaf(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "click", "name": name, "key": "K", **extra}


@pytest.mark.parametrize(
    ("menu", "errcode"),
    [
        ({}, 40016),
        ({"button": []}, 40016),
        ({"button": [leaf("a"), leaf("b"), leaf("c"), leaf("d")]}, 40016),
        ({"button": [leaf("")]}, 40018),
        ({"button": [leaf("办事服务指南")]}, 40018),  # 18 bytes > 16
        ({"button": [{"type": "teleport", "name": "x"}]}, 40017),
        ({"button": [{"type": "click", "name": "x"}]}, 40019),
        ({"button": [{"type": "click", "name": "x", "key": "k" * 129}]}, 40019),
        ({"button": [{"type": "view", "name": "x"}]}, 40020),
        ({"button": [{"type": "view", "name": "x", "url": "https://a.cn/" + "p" * 1020}]}, 40020),
        ({"button": [{"name": "x", "sub_button": [leaf(str(i)) for i in range(6)]}]}, 40023),
        ({"button": [{"name": "x", "sub_button": [leaf("字" * 21)]}]}, 40025),  # 63 bytes > 60
        ({"button": [{"name": "x", "sub_button": [{"type": "bogus", "name": "y"}]}]}, 40024),
        ({"button": [{"name": "x", "sub_button": [{"type": "scancode_push", "name": "y"}]}]}, 40026),
        ({"button": [{"name": "x", "sub_button": [{"type": "view", "name": "y"}]}]}, 40027),
        ({"button": [{"type": "media_id", "name": "x"}]}, 40007),
        ({"button": [{"type": "miniprogram", "name": "x", "url": "https://a.cn"}]}, 47001),
    ],
)
async def test_menu_create_validation(wx, menu, errcode) -> None:
    token = (await stable(wx))["access_token"]
    result = await post(wx, "/cgi-bin/menu/create", menu, params={"access_token": token})
    assert result["errcode"] == errcode
    assert (await get(wx, "/cgi-bin/menu/get", params={"access_token": token}))["errcode"] == 46003


async def test_menu_create_accepts_the_limits_and_menu_get_returns_it(wx) -> None:
    token = (await stable(wx))["access_token"]
    menu = {
        "button": [
            leaf("一二三四五"[:4] + "a" * 4),  # exactly 16 bytes
            {"name": "更多", "sub_button": [leaf("字" * 20)] * 5},  # 60-byte names, 5 subs
            {"type": "view", "name": "官网", "url": "https://example.gov.cn"},
        ]
    }
    assert (await post(wx, "/cgi-bin/menu/create", menu, params={"access_token": token}))["errcode"] == 0
    got = await get(wx, "/cgi-bin/menu/get", params={"access_token": token})
    assert got["menu"]["button"][2] == {**menu["button"][2], "sub_button": []}
    assert len(got["menu"]["button"][1]["sub_button"]) == 5
    escaped = json.dumps(menu).encode()
    result = await post(wx, "/cgi-bin/menu/create", data=escaped, params={"access_token": token})
    assert result["errcode"] == 40033


# control endpoints


async def test_fail_injection(wx) -> None:
    token = (await stable(wx))["access_token"]
    rule = {"path": "/cgi-bin/message/custom/send", "errcode": 45015, "times": 2}
    assert (await post(wx, "/_fake/fail", rule))["pending"] == 1
    assert (await send(wx, token, text("1")))["errcode"] == 45015
    assert (await send(wx, token, text("2")))["errmsg"].startswith("response out of time limit")
    assert (await send(wx, token, text("3")))["errcode"] == 0
    # Without a path the rule hits the next /cgi-bin/ call, whatever it is; errmsg can be overridden.
    await post(wx, "/_fake/fail", {"errcode": -1, "errmsg": "system error"})
    assert (await stable(wx))["errcode"] == -1
    stats = await get(wx, "/_fake/stats")
    assert stats["injected_failures"] == 3
    assert stats["errors"] == {"-1": 1, "45015": 2}
    for bad in (
        {},
        {"errcode": "x"},
        {"delay": -1},
        {"errcode": 1, "times": 0},
        {"errcode": 1, "path": "/x"},
    ):
        assert (await wx.post("/_fake/fail", json=bad)).status == 400


async def test_fail_delay(wx) -> None:
    await post(wx, "/_fake/fail", {"path": "/cgi-bin/stable_token", "delay": 0.3})
    started = time.monotonic()
    assert "access_token" in await stable(wx)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await stable(wx)
    assert time.monotonic() - started < 0.3


async def test_rotate_token_and_reset(wx) -> None:
    token = (await stable(wx))["access_token"]
    assert (await send(wx, token, text("x")))["errcode"] == 0
    assert (await post(wx, "/_fake/rotate_token"))["revoked"] == 1
    assert (await send(wx, token, text("x")))["errcode"] == 40001
    assert (await get(wx, "/_fake/stats"))["tokens_valid"] == 0
    new = (await stable(wx))["access_token"]
    assert new != token
    stats = await get(wx, "/_fake/stats")
    assert stats["stable_token"] == 2 and stats["custom_send"] == 2 and stats["tokens_issued"] == 2
    await post(wx, "/_fake/reset")
    assert await get(wx, "/_fake/sent") == []
    assert await get(wx, "/_fake/stats") == {"tokens_valid": 0, "errors": {}}
    assert (await send(wx, new, text("x")))["errcode"] == 40001
    assert wx.server.app[FAKE_STATE].tokens == {}


# as its own process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_runs_as_a_process() -> None:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "bot.adapters.wechat.fake_api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--app-id",
        APP_ID,
        "--app-secret",
        SECRET,
        "--enforce-cs-window",
        "--template-id",
        TEMPLATE,
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(base + "/_fake/stats") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("fake_api did not start")
            body = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET}
            async with session.post(base + "/cgi-bin/stable_token", json=body) as resp:
                token = (await resp.json(content_type=None))["access_token"]
            async with session.post(base + "/cgi-bin/stable_token", json={**body, "secret": "x"}) as resp:
                assert (await resp.json(content_type=None))["errcode"] == 40125
            params = {"access_token": token}
            async with session.post(
                base + "/cgi-bin/message/custom/send", json=text("x"), params=params
            ) as resp:
                assert (await resp.json(content_type=None))["errcode"] == 45015  # --enforce-cs-window
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert f"fake WeChat API for {APP_ID}".encode() in stderr
    assert SECRET.encode() not in stderr
