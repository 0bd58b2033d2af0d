"""Customer-service message budget in real Redis (explicit ``now`` for the time windows)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.adapters.wechat.fake_api import build_app
from bot.gateway.channels.wechat.cs_quota import CsQuota
from tests.support.services import TEST_REDIS_URL

APP_ID = "wxquota000000001"
OPENID = "oQuotaUser0123456789abcdefg"
T0 = 1_750_000_000.0
H48 = 48 * 3600


@pytest.fixture
def quota(redis_client: aioredis.Redis) -> CsQuota:
    return CsQuota(redis_client, APP_ID)


async def test_nothing_without_an_interaction(quota) -> None:
    assert await quota.remaining(OPENID, now=T0) == 0
    assert await quota.try_consume(OPENID, now=T0) is False


async def test_five_per_48_hours_after_a_message(quota, redis_client) -> None:
    await quota.record_interaction(OPENID, "message", now=T0)
    assert await quota.remaining(OPENID, now=T0) == 5
    assert [await quota.try_consume(OPENID, now=T0 + i) for i in range(6)] == [True] * 5 + [False]
    assert await quota.remaining(OPENID, now=T0 + 10) == 0
    ttl = await redis_client.ttl(quota.key(OPENID))
    assert H48 < ttl <= H48 + 61


async def test_message_window_closes_after_48_hours(quota) -> None:
    await quota.record_interaction(OPENID, "message", now=T0)
    assert await quota.try_consume(OPENID, now=T0 + H48 - 1) is True
    assert await quota.remaining(OPENID, now=T0 + H48) == 0
    assert await quota.try_consume(OPENID, now=T0 + H48) is False


async def test_a_new_message_restarts_the_window(quota) -> None:
    await quota.record_interaction(OPENID, "message", now=T0)
    for _ in range(5):
        assert await quota.try_consume(OPENID, now=T0 + 1)
    await quota.record_interaction(OPENID, "message", now=T0 + 100)
    assert await quota.remaining(OPENID, now=T0 + 100) == 5
    assert await quota.remaining(OPENID, now=T0 + 100 + H48 - 1) == 5


async def test_an_older_interaction_recorded_late_does_not_reset(quota) -> None:
    await quota.record_interaction(OPENID, "message", now=T0 + 50)
    assert await quota.try_consume(OPENID, now=T0 + 60)
    assert await quota.try_consume(OPENID, now=T0 + 60)
    await quota.record_interaction(OPENID, "message", now=T0)  # a delayed worker
    assert await quota.remaining(OPENID, now=T0 + 60) == 3


@pytest.mark.parametrize("kind", ["click", "subscribe", "scan"])
async def test_three_per_minute_after_an_event(quota, kind) -> None:
    await quota.record_interaction(OPENID, kind, now=T0)
    assert [await quota.try_consume(OPENID, now=T0 + 10) for _ in range(4)] == [True, True, True, False]
    await quota.record_interaction(OPENID, kind, now=T0 + 30)
    assert await quota.remaining(OPENID, now=T0 + 89) == 3
    assert await quota.remaining(OPENID, now=T0 + 90) == 0


async def test_event_budget_is_spent_before_the_message_budget(quota) -> None:
    await quota.record_interaction(OPENID, "message", now=T0)
    await quota.record_interaction(OPENID, "click", now=T0 + 100)
    assert await quota.remaining(OPENID, now=T0 + 100) == 8
    for _ in range(3):
        assert await quota.try_consume(OPENID, now=T0 + 110)
    assert await quota.remaining(OPENID, now=T0 + 110) == 5
    assert await quota.remaining(OPENID, now=T0 + 200) == 5  # the click window closed, 48 h budget intact


async def test_mark_exhausted_after_a_platform_refusal(quota) -> None:
    await quota.record_interaction(OPENID, "message", now=T0)
    await quota.record_interaction(OPENID, "click", now=T0)
    await quota.mark_exhausted(OPENID, now=T0 + 1)
    assert await quota.remaining(OPENID, now=T0 + 1) == 0
    assert await quota.try_consume(OPENID, now=T0 + 1) is False
    await quota.record_interaction(OPENID, "message", now=T0 + 2)
    assert await quota.remaining(OPENID, now=T0 + 2) == 5


async def test_users_and_accounts_are_separate(quota, redis_client) -> None:
    await quota.record_interaction(OPENID, "message", now=T0)
    assert await quota.remaining("oSomeoneElse000000000000000", now=T0) == 0
    assert await CsQuota(redis_client, "wxother000000000").remaining(OPENID, now=T0) == 0


async def test_unknown_kind_is_rejected(quota) -> None:
    with pytest.raises(ValueError, match="unknown interaction kind"):
        await quota.record_interaction(OPENID, "poke", now=T0)


async def test_concurrent_consumers_never_exceed_the_budget(quota, redis_client) -> None:
    await quota.record_interaction(OPENID, "message", now=T0)
    # A second connection pool stands in for another worker process.
    other = aioredis.from_url(TEST_REDIS_URL)
    try:
        other_quota = CsQuota(other, APP_ID)
        results = await asyncio.gather(
            *[(quota if i % 2 else other_quota).try_consume(OPENID, now=T0 + 1) for i in range(20)]
        )
    finally:
        await other.aclose()
    assert sum(results) == 5
    assert await quota.remaining(OPENID, now=T0 + 1) == 0


async def test_default_now_is_the_wall_clock(quota) -> None:
    await quota.record_interaction(OPENID, "click")
    assert await quota.remaining(OPENID) == 3
    assert await quota.try_consume(OPENID)
    assert await quota.remaining(OPENID) == 2


async def test_budget_matches_the_fake_platform(quota, aiohttp_client: Callable[..., Any]) -> None:
    clock_now = [T0]
    wx = await aiohttp_client(build_app(APP_ID, "s", enforce_cs_window=True, clock=lambda: clock_now[0]))
    body = {"grant_type": "client_credential", "appid": APP_ID, "secret": "s"}
    token = (await (await wx.post("/cgi-bin/stable_token", json=body)).json(content_type=None))[
        "access_token"
    ]

    async def interact(kind: str) -> None:
        await wx.post("/_fake/interaction", json={"openid": OPENID, "kind": kind})
        await quota.record_interaction(OPENID, kind, now=clock_now[0])

    async def platform_accepts() -> bool:
        message = {"touser": OPENID, "msgtype": "text", "text": {"content": "ok"}}
        resp = await wx.post(
            "/cgi-bin/message/custom/send",
            data=json.dumps(message).encode(),
            params={"access_token": token},
        )
        return (await resp.json(content_type=None))["errcode"] == 0

    await interact("message")
    clock_now[0] += 3600
    await interact("click")
    for step in range(12):
        clock_now[0] += 15 if step == 2 else 1
        assert await quota.try_consume(OPENID, now=clock_now[0]) == await platform_accepts()
    clock_now[0] += 60
    assert await quota.remaining(OPENID, now=clock_now[0]) == 0
    assert not await platform_accepts()
