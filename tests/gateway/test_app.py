"""Gateway plumbing: staff auth, chat API, health, metrics, per-sender turn order, config, masking."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import pytest
from aiohttp.test_utils import unused_port

from bot.core.config import Settings
from bot.core.env import Secret
from bot.core.logs import JsonFormatter
from bot.core.masking import mask_name, mask_phone, mask_sender, mask_text
from bot.gateway.app import build_app, build_services
from bot.gateway.conversation.dialogue import (
    BotMessage,
    DialogueUnavailable,
    RasaRestDialogue,
    parse_rest_reply,
)
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.conversation.sender_lock import SenderTurns
from tests.support.services import with_action_server
from tests.support.sms import sms_on_unreachable_twilio
from tests.support.staff import bearer, person

AUTH: dict[str, str] = {}  # a tester's bearer token, set by make_app for the app it builds


@pytest.fixture
def make_app(aiohttp_client, redis_client, sqlite_url):
    async def _make(dialogue=None, **overrides):
        values = {"database_url": sqlite_url, "wechat_message_mode": "plain"}
        settings = dataclasses.replace(Settings(), **{**values, **overrides})
        services = await build_services(settings, redis=redis_client, dialogue=dialogue or ScriptedDialogue())
        assert services.staff is not None
        AUTH.clear()
        AUTH.update(bearer(await person(services.staff, "tester", ["admin", "kb_editor"])))
        return await aiohttp_client(build_app(services))

    return _make


@pytest.mark.parametrize(
    ("label", "headers", "status"),
    [
        ("no token", {}, 401),
        ("wrong token", {"Authorization": "Bearer gvb_nope"}, 401),
        ("empty bearer", {"Authorization": "Bearer "}, 401),
        ("not bearer", {"Authorization": "Basic dGVzdGVyOnB3"}, 401),
        ("the old shared token's header", {"X-Staff-User": "admin"}, 401),
        ("a signed-in tester", None, 200),
    ],
)
async def test_staff_api_requires_a_signed_in_person(make_app, label, headers, status) -> None:
    client = await make_app()
    resp = await client.post(
        "/api/chat", json={"sender": "t", "text": "你好"}, headers=AUTH if headers is None else headers
    )
    assert resp.status == status, label
    if status == 401:
        assert (await resp.json())["error"] == "unauthorized"


async def test_chat_api_goes_through_the_conversation(make_app) -> None:
    dialogue = ScriptedDialogue()
    client = await make_app(dialogue)
    resp = await client.post("/api/chat", json={"sender": "alice", "text": "營業執照"}, headers=AUTH)
    assert (await resp.json())["texts"] == ["收到：营业执照"]
    assert dialogue.calls[0][0] == "console:tester:alice" and dialogue.calls[0][2]["channel"] == "console"
    bad = await client.post("/api/chat", data="nope", headers=AUTH)
    assert bad.status == 400


async def test_healthz_reports_each_dependency(make_app, aiohttp_server, sqlite_url) -> None:
    from aiohttp import ClientSession

    async with ClientSession() as http:
        down = RasaRestDialogue(http, "http://127.0.0.1:9", 0.5)
        client = await make_app(down, actions_port=unused_port())
        resp = await client.get("/healthz")
        body = await resp.json()
        assert resp.status == 503
        assert body["checks"] == {
            "redis": "ok", "database": "ok", "rasa": "error: unreachable", "actions": "error: unreachable",
        }  # fmt: skip
        # the real action server, up: its check turns ok while Rasa stays down
        settings = await with_action_server(
            aiohttp_server, dataclasses.replace(Settings(), database_url=sqlite_url)
        )
        client = await make_app(down, actions_port=settings.actions_port)
        body = await (await client.get("/healthz")).json()
        assert body["checks"]["actions"] == "ok" and body["checks"]["rasa"] == "error: unreachable"
    client = await make_app()  # the scripted dialogue has no health probe: redis + db only
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"


async def test_healthz_counts_the_broadcast_workers_heartbeats(
    redis_client, sqlite_url, aiohttp_client
) -> None:
    from sms_gateway.broadcast.engine import HEARTBEAT_PREFIX

    settings = dataclasses.replace(Settings(), database_url=sqlite_url, wechat_message_mode="plain")
    sms = sms_on_unreachable_twilio()
    services = await build_services(
        settings, redis=redis_client, dialogue=ScriptedDialogue(), sms_settings=sms
    )
    assert services.broadcasts is not None
    client = await aiohttp_client(build_app(services))
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["checks"]["broadcast_workers"] == "error: no live worker"
    await redis_client.set(HEARTBEAT_PREFIX + "host-1", "1", ex=10)
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["checks"]["broadcast_workers"] == "ok"


async def test_metrics_are_prometheus_text(make_app) -> None:
    client = await make_app(ScriptedDialogue(fail=True))
    await client.post("/api/chat", json={"sender": "a", "text": "你好"}, headers=AUTH)
    await client.get("/wechat", params={"signature": "x", "timestamp": "1", "nonce": "n"})
    body = await (await client.get("/metrics")).text()
    assert "# TYPE govbot_rasa_errors_total counter" in body
    assert 'govbot_rasa_errors_total{channel="console"} 1' in body
    assert 'govbot_request_seconds_bucket{channel="console",le="+Inf"} 1' in body
    assert 'govbot_request_seconds_count{channel="console"} 1' in body


async def test_rasa_down_gives_polite_fallback(make_app) -> None:
    from aiohttp import ClientSession

    async with ClientSession() as http:
        client = await make_app(RasaRestDialogue(http, "http://127.0.0.1:9", 0.5))
        resp = await client.post("/api/chat", json={"sender": "a", "text": "你好"}, headers=AUTH)
        body = await resp.json()
    assert body["degraded"] is True and "0797-3322110" in body["texts"][0]


# ---------------------------------------------------------------------------------------------- turn order


async def test_turns_of_one_sender_run_in_arrival_order(redis_client) -> None:
    """Two gateway workers (two SenderTurns on one Redis): a sender's turns never overlap and keep order."""
    a, b = SenderTurns(redis_client), SenderTurns(redis_client)
    log: list[str] = []

    async def turn(turns: SenderTurns, name: str, delay: float) -> None:
        async with turns.turn("wx:o1"):
            log.append(f"start {name}")
            await asyncio.sleep(delay)
            log.append(f"end {name}")

    first = asyncio.create_task(turn(a, "1", 0.2))
    await asyncio.sleep(0.02)
    second = asyncio.create_task(turn(b, "2", 0.0))
    await asyncio.sleep(0.02)
    third = asyncio.create_task(turn(a, "3", 0.0))
    await asyncio.gather(first, second, third)
    assert log == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]


async def test_other_senders_are_not_blocked(redis_client) -> None:
    turns = SenderTurns(redis_client)
    order: list[str] = []

    async def slow() -> None:
        async with turns.turn("wx:a"):
            await asyncio.sleep(0.3)
            order.append("a")

    async def fast() -> None:
        async with turns.turn("wx:b"):
            order.append("b")

    await asyncio.gather(slow(), fast())
    assert order == ["b", "a"]


async def test_a_dead_holder_is_skipped_after_the_timeout(redis_client) -> None:
    turns = SenderTurns(redis_client, wait_timeout=0.3)
    await redis_client.incr("turn:next:wx:c")  # a turn that took a ticket and died
    started = asyncio.get_running_loop().time()
    async with turns.turn("wx:c") as ticket:
        assert ticket == 2
    assert asyncio.get_running_loop().time() - started >= 0.3


# ------------------------------------------------------------------------------------------- dialogue adapter


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([{"recipient_id": "x", "text": "你好"}], [BotMessage(text="你好")]),
        (
            [{"recipient_id": "x", "custom": {"handoff": "transfer"}}],
            [BotMessage(custom={"handoff": "transfer"})],
        ),
        ([], []),
        ([{"text": 5}, "junk"], [BotMessage()]),
    ],
)
def test_parse_rest_reply(payload, expected) -> None:
    assert parse_rest_reply(payload) == expected


def test_parse_rest_reply_rejects_non_list() -> None:
    with pytest.raises(DialogueUnavailable):
        parse_rest_reply({"error": "x"})


async def test_rasa_adapter_against_a_slow_and_a_broken_server(aiohttp_server) -> None:
    from aiohttp import ClientSession, web

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response([])

    async def broken(_request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.add_routes(
        [web.post("/slow/webhooks/rest/webhook", slow), web.post("/broken/webhooks/rest/webhook", broken)]
    )
    server = await aiohttp_server(app)
    async with ClientSession() as http:
        for path in ("slow", "broken"):
            with pytest.raises(DialogueUnavailable):
                await RasaRestDialogue(http, str(server.make_url(f"/{path}")), 0.2).turn("s", "t", {})


# ---------------------------------------------------------------------------------------------- config


def test_settings_from_env_reads_every_name() -> None:
    s = Settings.from_env(
        {
            "WECHAT_TOKEN": "t", "WECHAT_APP_ID": "wxa", "WECHAT_APP_SECRET": "sec",
            "WECHAT_ENCODING_AES_KEY": "k", "WECHAT_MESSAGE_MODE": "Compatible", "WECHAT_API_BASE": "http://x/",
            "PUBLIC_BASE_URL": "https://bot.example.gov.cn/", "REDIS_URL": "redis://r:1/2",
            "DATABASE_URL": "postgresql+asyncpg://u@h/db", "RASA_URL": "http://r:5005", "PORT": "9000",
            "GATEWAY_WORKERS": "3",
        }
    )  # fmt: skip
    assert (s.wechat_token, s.wechat_app_id, s.wechat_app_secret, s.wechat_encoding_aes_key) == (
        Secret("t"),
        "wxa",
        Secret("sec"),
        Secret("k"),
    )
    assert s.wechat_message_mode == "compatible" and s.wechat_api_base == "http://x"
    assert s.public_base_url == "https://bot.example.gov.cn"
    assert (s.redis_url, s.database_url, s.rasa_url) == (
        "redis://r:1/2",
        "postgresql+asyncpg://u@h/db",
        "http://r:5005",
    )
    assert (s.port, s.gateway_workers) == (9000, 3)


def test_settings_reject_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="WECHAT_MESSAGE_MODE"):
        Settings.from_env({"WECHAT_MESSAGE_MODE": "secret"})


def test_env_example_configures_a_working_demo() -> None:
    from dotenv import dotenv_values

    from bot.core.config import ROOT

    values = dotenv_values(ROOT / ".env.example")
    s = Settings.from_env({k: v or "" for k, v in values.items()})
    assert s.demo and s.wechat_message_mode == "safe"
    assert len(s.wechat_encoding_aes_key.get_secret_value()) == 43
    assert s.wechat_api_base.startswith("http://127.0.0.1")


# ---------------------------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("请回电 13812341234", "请回电 138****1234"),
        ("+86 138 1234 1234", "138****1234"),
        ("身份证 36072219900101123X 谢谢", "身份证 3****************X 谢谢"),
        ("座机 0797-3322110", "座机 0797-****2110"),
        ("受理号 20261125000123 不变", "受理号 20261125000123 不变"),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_mask_helpers() -> None:
    assert mask_phone("+8613812341234") == "138****1234"
    assert (mask_name("张三"), mask_name("张小三"), mask_name("欧阳小明")) == ("张*", "张*三", "欧**明")
    assert mask_sender("sms:+8613812341234") == "sms:138****1234"
    assert mask_sender("wx:oUser0000000000000001") == "wx:oUser***"


def test_json_logs_mask_personal_data() -> None:
    record = logging.LogRecord("t", logging.INFO, "f", 1, "citizen 13812341234 said hi", (), None)
    record.sender = "phone 13900001111"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "citizen 138****1234 said hi" and entry["sender"] == "phone 139****1111"


async def test_kb_search_is_served_behind_staff_auth_by_the_action_servers_index(
    make_app, sqlite_url, aiohttp_server
) -> None:
    """The gateway asks the action server (which holds the index) rather than building one per worker."""
    from bot.core.db import create_engine, session_factory
    from knowledge_base.cli import ensure_sample_loaded

    engine = create_engine(sqlite_url)
    assert await ensure_sample_loaded(session_factory(engine))
    await engine.dispose()
    settings = await with_action_server(
        aiohttp_server, dataclasses.replace(Settings(), database_url=sqlite_url)
    )
    client = await make_app(actions_port=settings.actions_port)
    assert (await client.get("/api/kb/search", params={"q": "营业执照"})).status == 401
    resp = await client.get("/api/kb/search", params={"q": "个体户营业执照要带什么"}, headers=AUTH)
    results = (await resp.json())["results"]
    assert results[0]["name"] == "个体工商户设立登记" and results[0]["aspect"] == "materials"
    client = await make_app(actions_port=unused_port())  # no action server: a clear 503, not a 500
    resp = await client.get("/api/kb/search", params={"q": "营业执照"}, headers=AUTH)
    assert resp.status == 503 and (await resp.json())["error"] == "kb_unavailable"
