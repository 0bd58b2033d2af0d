"""WeChatApiClient + TokenService against the fake WeChat server (in-process) and real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from bot.adapters.wechat.api_client import (
    ForceRefreshLimitError,
    TokenUnavailableError,
    WeChatAPI,
    WeChatApiClient,
    WeChatAPIError,
    WeChatTimeoutError,
    WeChatTransportError,
    mask_openid,
)
from bot.adapters.wechat.fake_api import build_app
from bot.adapters.wechat.token_service import TokenService
from bot.core.config import ROOT

APP_ID = "wxtest0000000001"
SECRET = "test-app-secret-123"
OPENID = "oTestUser0123456789abcdefghi"
TEMPLATE = "TPL_CASE_PROGRESS"
MENU_FILE = ROOT / "bot" / "gateway" / "channels" / "wechat" / "menu.json"


class Clock:
    """A settable clock for the fake server."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(aiohttp_server: Callable[..., Any], clock: Clock) -> TestServer:
    return await aiohttp_server(build_app(APP_ID, SECRET, template_ids=[TEMPLATE], clock=clock))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def base(server: TestServer) -> str:
    return str(server.make_url("/")).rstrip("/")


async def control(session: aiohttp.ClientSession, server: TestServer, path: str, body: Any = None) -> Any:
    url = base(server) + path
    if body is None and path in ("/_fake/sent", "/_fake/stats"):
        async with session.get(url) as resp:
            assert resp.status == 200
            return await resp.json()
    async with session.post(url, json=body if body is not None else {}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def stats(session: aiohttp.ClientSession, server: TestServer) -> dict[str, Any]:
    return await control(session, server, "/_fake/stats")


def tokens_for(
    redis: aioredis.Redis, session: aiohttp.ClientSession, server: TestServer, **kwargs: Any
) -> TokenService:
    app_id = kwargs.pop("app_id", APP_ID)
    secret = kwargs.pop("app_secret", SECRET)
    return TokenService(redis, session, app_id, secret, base(server), **kwargs)


def client_for(
    redis: aioredis.Redis, session: aiohttp.ClientSession, server: TestServer, **kwargs: Any
) -> WeChatApiClient:
    timeout = kwargs.pop("timeout", 5.0)
    return WeChatApiClient(
        session, tokens_for(redis, session, server, **kwargs), base(server), timeout=timeout
    )


# token service


async def test_token_fetched_once_and_cached(redis_client, session, fake) -> None:
    tokens = tokens_for(redis_client, session, fake)
    first = await tokens.get()
    assert first == await tokens.get() == await tokens.get()
    assert (await stats(session, fake))["stable_token"] == 1
    cached = json.loads(await redis_client.get(f"wx:token:{APP_ID}"))
    assert cached["access_token"] == first
    assert cached["expires_at"] == pytest.approx(time.time() + 7200, abs=5)
    assert 7100 < await redis_client.ttl(f"wx:token:{APP_ID}") <= 7200
    # A second service (another process) reads the shared cache instead of calling WeChat.
    async with aiohttp.ClientSession() as other_session:
        assert await tokens_for(redis_client, other_session, fake).get() == first
    assert (await stats(session, fake))["stable_token"] == 1


async def test_concurrent_refreshers_make_exactly_one_stable_token_call(redis_client, session, fake) -> None:
    # Slow stable_token down so every caller arrives while the first refresh is in flight.
    await control(session, fake, "/_fake/fail", {"path": "/cgi-bin/stable_token", "delay": 0.3})
    async with aiohttp.ClientSession() as s1, aiohttp.ClientSession() as s2:
        t1 = tokens_for(redis_client, s1, fake)
        t2 = tokens_for(redis_client, s2, fake)
        results = await asyncio.gather(*[(t1 if i % 2 else t2).get() for i in range(10)])
    assert len(set(results)) == 1
    assert (await stats(session, fake))["stable_token"] == 1
    assert await redis_client.get(f"wx:token:{APP_ID}:lock") is None


async def test_refreshes_early_within_the_margin(redis_client, session, fake) -> None:
    tokens = tokens_for(redis_client, session, fake, refresh_margin=300)
    token = await tokens.get()
    key = f"wx:token:{APP_ID}"
    # 400 s left (> margin): no refresh.  The entry has no refresh_at, so the margin decides.
    await redis_client.set(key, json.dumps({"access_token": token, "expires_at": time.time() + 400}), ex=400)
    assert await tokens.get() == token
    assert (await stats(session, fake))["stable_token"] == 1
    # 200 s left (< margin): refreshed before it expires.
    await redis_client.set(key, json.dumps({"access_token": token, "expires_at": time.time() + 200}), ex=200)
    await tokens.get()
    assert (await stats(session, fake))["stable_token"] == 2
    assert json.loads(await redis_client.get(key))["expires_at"] > time.time() + 7000


async def test_short_expires_in_does_not_refresh_on_every_call(
    redis_client, session, aiohttp_server, clock
) -> None:
    server = await aiohttp_server(build_app(APP_ID, SECRET, clock=clock, token_ttl=400))
    tokens = tokens_for(redis_client, session, server, refresh_margin=300)
    await tokens.get()
    await tokens.get()
    await tokens.get()
    assert (await stats(session, server))["stable_token"] == 1


async def test_lock_holder_rechecks_the_cache_before_calling_wechat(redis_client, session, fake) -> None:
    """Another process may store a token between our cache read and our taking the lock."""

    class StaleReads(TokenService):
        reads = 0

        async def _read(self) -> Any:
            self.reads += 1
            return None if self.reads <= 2 else await super()._read()  # the first two reads predate it

    stored = await tokens_for(redis_client, session, fake).get()
    late = StaleReads(redis_client, session, APP_ID, SECRET, base(fake))
    assert await late.get() == stored
    assert late.reads == 3
    assert (await stats(session, fake))["stable_token"] == 1


async def test_a_holder_that_lost_its_lock_neither_caches_nor_releases_the_new_lock(
    redis_client, session, fake
) -> None:
    lock_key, token_key = f"wx:token:{APP_ID}:lock", f"wx:token:{APP_ID}"
    await control(session, fake, "/_fake/fail", {"path": "/cgi-bin/stable_token", "delay": 0.4})
    task = asyncio.create_task(tokens_for(redis_client, session, fake).get())
    for _ in range(100):
        if await redis_client.get(lock_key):
            break
        await asyncio.sleep(0.01)
    # Our lock "expired" mid-call and another process took it over.
    await redis_client.set(lock_key, "new-holder", px=10_000)
    assert await task  # the token WeChat issued is still returned to the caller
    assert await redis_client.get(lock_key) == b"new-holder"
    assert await redis_client.get(token_key) is None


async def test_waiters_give_up_after_a_bounded_wait(redis_client, session, fake) -> None:
    lock_key = f"wx:token:{APP_ID}:lock"
    await redis_client.set(lock_key, "another-process", px=10_000)
    tokens = tokens_for(redis_client, session, fake, lock_wait=0.3)
    started = time.monotonic()
    with pytest.raises(TokenUnavailableError, match="waiting"):
        await tokens.get()
    assert time.monotonic() - started < 2
    assert await redis_client.get(lock_key) == b"another-process"  # never deletes someone else's lock
    assert (await stats(session, fake)).get("stable_token", 0) == 0


async def test_takes_over_when_the_other_holder_lock_expires(redis_client, session, fake) -> None:
    await redis_client.set(f"wx:token:{APP_ID}:lock", "crashed-process", px=300)
    tokens = tokens_for(redis_client, session, fake)
    started = time.monotonic()
    assert await tokens.get()
    assert time.monotonic() - started >= 0.2
    assert (await stats(session, fake))["stable_token"] == 1


async def test_invalidate_keeps_a_token_that_was_already_replaced(redis_client, session, fake) -> None:
    tokens = tokens_for(redis_client, session, fake)
    current = await tokens.get()
    assert await tokens.invalidate("an-older-token") == current
    assert (await stats(session, fake))["stable_token"] == 1


@pytest.mark.parametrize(
    ("app_id", "secret", "errcode", "hint"),
    [
        ("wxwrongappid0000", SECRET, 40013, "WECHAT_APP_ID"),
        (APP_ID, "wrong-secret", 40125, "WECHAT_APP_SECRET"),
    ],
)
async def test_bad_credentials_raise_with_a_helpful_message(
    redis_client, session, fake, app_id, secret, errcode, hint
) -> None:
    tokens = tokens_for(redis_client, session, fake, app_id=app_id, app_secret=secret)
    with pytest.raises(WeChatAPIError) as info:
        await tokens.get()
    assert info.value.errcode == errcode
    assert hint in str(info.value)
    assert secret not in str(info.value)
    assert await redis_client.get(f"wx:token:{app_id}") is None


async def test_ip_not_whitelisted(redis_client, session, aiohttp_server) -> None:
    server = await aiohttp_server(build_app(APP_ID, SECRET, ip_whitelist=["10.1.2.3"]))
    with pytest.raises(WeChatAPIError) as info:
        await tokens_for(redis_client, session, server).get()
    assert info.value.errcode == 40164
    assert "not in whitelist" in info.value.errmsg
    assert "IP白名单" in str(info.value)


async def test_daily_quota_error_on_stable_token(redis_client, session, fake) -> None:
    await control(session, fake, "/_fake/fail", {"path": "/cgi-bin/stable_token", "errcode": 45009})
    with pytest.raises(WeChatAPIError) as info:
        await tokens_for(redis_client, session, fake).get()
    assert info.value.errcode == 45009
    assert "quota" in str(info.value)
    assert await redis_client.get(f"wx:token:{APP_ID}:lock") is None


async def test_token_timeout_raises_and_releases_the_lock(redis_client, session, fake) -> None:
    await control(session, fake, "/_fake/fail", {"path": "/cgi-bin/stable_token", "delay": 1.5})
    tokens = tokens_for(redis_client, session, fake, timeout=0.3)
    with pytest.raises(WeChatTimeoutError):
        await tokens.get()
    assert await redis_client.get(f"wx:token:{APP_ID}:lock") is None
    assert await tokens.get()  # the delay was for one call only


# API client


async def test_send_text_posts_utf8_json(redis_client, session, fake) -> None:
    client = client_for(redis_client, session, fake)
    assert isinstance(client, WeChatAPI)
    await client.send_text(OPENID, "您好，您的营业执照已办结。")
    sent = await control(session, fake, "/_fake/sent")
    assert len(sent) == 1
    assert sent[0]["kind"] == "custom"
    assert sent[0]["touser"] == OPENID
    assert sent[0]["payload"] == {
        "touser": OPENID,
        "msgtype": "text",
        "text": {"content": "您好，您的营业执照已办结。"},
    }


async def test_send_text_rejects_empty_text_without_calling_wechat(redis_client, session, fake) -> None:
    client = client_for(redis_client, session, fake)
    with pytest.raises(ValueError, match="empty"):
        await client.send_text(OPENID, "")
    assert (await stats(session, fake)).get("custom_send", 0) == 0


async def test_rotated_token_is_invalidated_once_and_retried(redis_client, session, fake) -> None:
    client = client_for(redis_client, session, fake)
    await client.send_text(OPENID, "第一条")
    await control(session, fake, "/_fake/rotate_token")
    await client.send_text(OPENID, "第二条")
    s = await stats(session, fake)
    assert s["custom_send"] == 3  # ok, 40001, retried ok
    assert s["stable_token"] == 2
    assert s.get("stable_token_force", 0) == 0
    assert s["errors"] == {"40001": 1}
    assert len(await control(session, fake, "/_fake/sent")) == 2


async def test_expired_token_42001_is_refreshed(redis_client, session, fake, clock) -> None:
    client = client_for(redis_client, session, fake)
    await client.send_text(OPENID, "一")
    clock.now += 7300  # the fake's token expired; our cache (real time) still believes it is valid
    await client.send_text(OPENID, "二")
    s = await stats(session, fake)
    assert s["errors"] == {"42001": 1}
    assert s["stable_token"] == 2
    assert s["custom_send"] == 3


async def test_persistent_40001_retries_exactly_once_then_raises(redis_client, session, fake) -> None:
    client = client_for(redis_client, session, fake)
    await control(
        session, fake, "/_fake/fail", {"path": "/cgi-bin/message/custom/send", "errcode": 40001, "times": 10}
    )
    with pytest.raises(WeChatAPIError) as info:
        await client.send_text(OPENID, "hello")
    assert info.value.errcode == 40001
    s = await stats(session, fake)
    assert s["custom_send"] == 2
    # stable_token handed back the rejected token (it is valid at the fake), so one force refresh was used.
    assert s["stable_token_force"] == 1
    assert s["force_refreshes"] == 1
    # The next rejection within 30 s may not force again: refused, and no retry loop.
    with pytest.raises(ForceRefreshLimitError, match="30 s"):
        await client.send_text(OPENID, "hello")
    s = await stats(session, fake)
    assert s["custom_send"] == 3
    assert s["stable_token_force"] == 1


async def test_force_refresh_daily_budget_is_shared_in_redis(redis_client, session, fake) -> None:
    tokens = tokens_for(
        redis_client, session, fake, force_refresh_daily_limit=1, force_refresh_min_interval=0
    )
    bad = await tokens.get()
    new = await tokens.invalidate(bad)  # the fake still returns `bad` in normal mode: forced
    assert new != bad
    assert await redis_client.get(tokens.force_day_key()) == b"1"
    async with aiohttp.ClientSession() as other_session:
        other = tokens_for(
            redis_client, other_session, fake, force_refresh_daily_limit=1, force_refresh_min_interval=0
        )
        with pytest.raises(ForceRefreshLimitError, match="today"):
            await other.invalidate(new)
    assert (await stats(session, fake))["force_refreshes"] == 1


async def test_errcode_on_send_raises_without_retry(redis_client, session, fake) -> None:
    client = client_for(redis_client, session, fake)
    await control(session, fake, "/_fake/fail", {"path": "/cgi-bin/message/custom/send", "errcode": 45015})
    with pytest.raises(WeChatAPIError) as info:
        await client.send_text(OPENID, "hello")
    assert info.value.errcode == 45015
    assert info.value.errmsg.startswith("response out of time limit or subscription is canceled")
    assert "template message or SMS" in str(info.value)
    assert (await stats(session, fake))["custom_send"] == 1


async def test_send_timeout_raises_wechat_timeout_error(redis_client, session, fake) -> None:
    client = client_for(redis_client, session, fake, timeout=0.3)
    await client.send_text(OPENID, "warm up the token")
    await control(session, fake, "/_fake/fail", {"path": "/cgi-bin/message/custom/send", "delay": 1.5})
    started = time.monotonic()
    with pytest.raises(WeChatTimeoutError) as info:
        await client.send_text(OPENID, "slow")
    assert time.monotonic() - started < 1.2
    assert isinstance(info.value, asyncio.TimeoutError)
    assert info.value.errcode == -1001
    assert "access_token" not in str(info.value)


async def test_non_json_or_http_error_is_a_transport_error(redis_client, session, fake) -> None:
    tokens = tokens_for(redis_client, session, fake)
    await tokens.get()
    client = WeChatApiClient(session, tokens, base(fake) + "/no-such-prefix")
    with pytest.raises(WeChatTransportError, match="HTTP 404") as info:
        await client.send_text(OPENID, "x")
    assert info.value.errcode == -1000


async def test_template_send_returns_msgid(redis_client, session, fake) -> None:
    client = client_for(redis_client, session, fake)
    data = {"thing1": "营业执照变更", "phrase2": "已办结"}
    msgid = await client.send_template(OPENID, TEMPLATE, data, url="https://example.gov.cn/case/1")
    assert isinstance(msgid, int) and msgid > 0
    again = await client.send_template(OPENID, TEMPLATE, data, client_msg_id="case-1:done")
    assert again != msgid
    # The same client_msg_id is not pushed twice.
    assert await client.send_template(OPENID, TEMPLATE, data, client_msg_id="case-1:done") == again
    sent = await control(session, fake, "/_fake/sent")
    assert [item["msgid"] for item in sent] == [msgid, again]
    assert sent[0]["payload"]["data"] == {"thing1": {"value": "营业执照变更"}, "phrase2": {"value": "已办结"}}
    assert sent[0]["payload"]["url"] == "https://example.gov.cn/case/1"
    assert sent[1]["payload"]["client_msg_id"] == "case-1:done"


async def test_unknown_template_raises_40037(redis_client, session, fake) -> None:
    client = client_for(redis_client, session, fake)
    with pytest.raises(WeChatAPIError) as info:
        await client.send_template(OPENID, "NOT_CONFIGURED", {"thing1": "x"})
    assert info.value.errcode == 40037


async def test_create_and_get_menu(redis_client, session, fake) -> None:
    client = client_for(redis_client, session, fake)
    with pytest.raises(WeChatAPIError) as info:
        await client.get_menu()
    assert info.value.errcode == 46003
    menu = {
        "button": [
            {"type": "click", "name": "办事指南", "key": "GUIDE"},
            {
                "name": "更多",
                "sub_button": [{"type": "view", "name": "官网", "url": "https://example.gov.cn"}],
            },
        ]
    }
    await client.create_menu(menu)
    got = await client.get_menu()
    assert got["menu"]["button"][0] == {"type": "click", "name": "办事指南", "key": "GUIDE", "sub_button": []}
    assert got["menu"]["button"][1]["sub_button"][0]["url"] == "https://example.gov.cn"


async def test_project_menu_file_passes_the_platform_rules(redis_client, session, fake) -> None:
    menu = json.loads(MENU_FILE.read_text(encoding="utf-8"))["menu"]
    await client_for(redis_client, session, fake).create_menu(menu)


@pytest.mark.parametrize(
    ("menu", "errcode"),
    [
        ({"button": [{"type": "click", "name": f"b{i}", "key": f"K{i}"} for i in range(4)]}, 40016),
        ({"button": [{"type": "click", "name": "一二三四五六", "key": "K"}]}, 40018),  # 18 bytes
        ({"button": [{"type": "click", "name": "查询"}]}, 40019),
        ({"button": [{"type": "view", "name": "官网"}]}, 40020),
        (
            {"button": [{"name": "更多", "sub_button": [{"type": "click", "name": "s", "key": "K"}] * 6}]},
            40023,
        ),
        (
            {"button": [{"name": "更多", "sub_button": [{"type": "click", "name": "字" * 21, "key": "K"}]}]},
            40025,
        ),
    ],
)
async def test_menu_validation_errors(redis_client, session, fake, menu, errcode) -> None:
    with pytest.raises(WeChatAPIError) as info:
        await client_for(redis_client, session, fake).create_menu(menu)
    assert info.value.errcode == errcode


async def test_logs_hold_no_token_secret_openid_or_content(redis_client, session, fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(redis_client, session, fake)
    await client.send_text(OPENID, "身份证号码内容")
    await control(session, fake, "/_fake/rotate_token")
    await client.send_text(OPENID, "身份证号码内容")
    token = json.loads(await redis_client.get(f"wx:token:{APP_ID}"))["access_token"]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot.adapters.wechat"))
    assert "rejected the access token" in ours
    assert mask_openid(OPENID) in ours
    for secret in (token, SECRET, OPENID, "身份证号码内容"):
        assert secret not in ours
    assert mask_openid(OPENID) == "oTes***"
