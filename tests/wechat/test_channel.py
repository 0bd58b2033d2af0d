"""The WeChat channel over real HTTP: signed and encrypted with wechatpy's own crypto, real Redis, real
SQLite, and the WeChat API fake for pushes.  The dialogue engine is the scripted double here (the Rasa
round trip has its own end-to-end tests)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.core.db import create_engine, session_factory
from bot.gateway.app import build_app, build_services
from bot.gateway.conversation.dialogue import BotMessage
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.models import Follower, LeftMessage, UndeliveredReply
from tests.support.channel_table import ChannelCase, Observed, check
from tests.support.wechat import (
    APP_ID,
    OPENID,
    TOKEN,
    WeChatRequest,
    decrypt_reply,
    message_xml,
    post,
    pushed,
    settings_for,
    sign,
)


@pytest.fixture
def make_client(aiohttp_client, redis_client, sqlite_url, fake_wechat):
    async def _make(
        message_mode: str = "safe", dialogue: ScriptedDialogue | None = None, **overrides: Any
    ) -> tuple[TestClient, ScriptedDialogue]:
        dialogue = dialogue or ScriptedDialogue()
        settings = settings_for(
            message_mode, str(fake_wechat.make_url("")).rstrip("/"), sqlite_url, **overrides
        )
        services = await build_services(settings, redis=redis_client, dialogue=dialogue)
        return await aiohttp_client(build_app(services)), dialogue

    return _make


# ---------------------------------------------------------------------------------------------- table


Case = ChannelCase[WeChatRequest]  # options: {"mode": the server's WECHAT_MESSAGE_MODE}


def text_xml(content: str) -> str:
    return message_xml("text", Content=content)


CASES = [
    Case("text, safe mode", WeChatRequest(text_xml("你好")), 200, "收到：你好", "你好"),
    Case(
        "text, plain mode",
        WeChatRequest(text_xml("你好"), mode="plain"),
        200,
        "收到：你好",
        "你好",
        options={"mode": "plain"},
    ),
    Case(
        "text, compatible mode",
        WeChatRequest(text_xml("办营业执照"), mode="compatible"),
        200,
        "收到：办营业执照",
        "办营业执照",
        options={"mode": "compatible"},
    ),
    Case(
        "traditional and full-width normalised",
        WeChatRequest(text_xml("營業執照　ＡＢＣ１２３")),
        200,
        "收到：营业执照 ABC123",
        "营业执照 ABC123",
    ),
    Case("forged signature", WeChatRequest(text_xml("你好"), signature="0" * 40), 403, None),
    Case("wrong msg_signature", WeChatRequest(text_xml("你好"), msg_signature="f" * 40), 403, None),
    Case("stale timestamp", WeChatRequest(text_xml("你好"), timestamp=int(time.time()) - 3600), 403, None),
    Case("future timestamp", WeChatRequest(text_xml("你好"), timestamp=int(time.time()) + 3600), 403, None),
    Case("plaintext to a safe-mode server", WeChatRequest(text_xml("你好"), mode="plain"), 403, None),
    Case(
        "malformed XML",
        WeChatRequest("<xml><ToUserName>oops", mode="plain"),
        400,
        None,
        options={"mode": "plain"},
    ),
    Case(
        "DOCTYPE with an entity",
        WeChatRequest(
            '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            "<xml><FromUserName>a</FromUserName><Content>&x;</Content><MsgType>text</MsgType></xml>",
            mode="plain",
        ),
        400,
        None,
        options={"mode": "plain"},
    ),
    Case(
        "empty body",
        WeChatRequest(text_xml("x"), mode="plain", raw_body=b""),
        400,
        None,
        options={"mode": "plain"},
    ),
    Case(
        "huge body",
        WeChatRequest(text_xml("x"), mode="plain", raw_body=b"<xml>" + b"a" * 200_000 + b"</xml>"),
        413,
        None,
        options={"mode": "plain"},
    ),
    Case(
        "garbage ciphertext",
        WeChatRequest(text_xml("x"), raw_body=b"<xml><Encrypt>!!!</Encrypt></xml>"),
        403,
        None,
    ),
    Case(
        "voice with recognition",
        WeChatRequest(message_xml("voice", MediaId="m1", Format="amr", Recognition="社保卡怎么补办")),
        200,
        "收到：社保卡怎么补办",
        "社保卡怎么补办",
    ),
    Case(
        "voice without recognition",
        WeChatRequest(message_xml("voice", MediaId="m1", Format="amr")),
        200,
        "请用文字描述",
    ),
    Case("image", WeChatRequest(message_xml("image", PicUrl="http://x/p.jpg", MediaId="m")), 200, "文字"),
    Case(
        "location",
        WeChatRequest(message_xml("location", Location_X="25.3", Location_Y="114.9", Scale="15", Label="x")),
        200,
        "文字",
    ),
    Case("link", WeChatRequest(message_xml("link", Title="t", Description="d", Url="http://x")), 200, "文字"),
    Case("video", WeChatRequest(message_xml("video", MediaId="m", ThumbMediaId="t")), 200, "文字"),
    Case("shortvideo", WeChatRequest(message_xml("shortvideo", MediaId="m", ThumbMediaId="t")), 200, "文字"),
    Case("subscribe", WeChatRequest(message_xml("event", Event="subscribe")), 200, "欢迎关注"),
    Case(
        "menu click → intent",
        WeChatRequest(message_xml("event", Event="CLICK", EventKey="GUIDE")),
        200,
        "收到：/ask_service_guide",
        "/ask_service_guide",
    ),
    Case(
        "unknown menu key",
        WeChatRequest(message_xml("event", Event="CLICK", EventKey="NOPE")),
        200,
        "我可以帮您",
    ),
    Case(
        "scan with a known scene",
        WeChatRequest(message_xml("event", Event="SCAN", EventKey="progress", Ticket="t")),
        200,
        "收到：/check_progress",
        "/check_progress",
    ),
    Case("view event", WeChatRequest(message_xml("event", Event="VIEW", EventKey="http://x")), 200, None),
    Case("location event", WeChatRequest(message_xml("event", Event="LOCATION", Latitude="1")), 200, None),
    Case("unknown message type", WeChatRequest(message_xml("hologram", Content="x")), 200, None),
    Case(
        "two Content elements are read together",
        WeChatRequest(message_xml("text", Content=["你好", "营业执照"])),
        200,
        "收到：你好 营业执照",
        "你好 营业执照",
    ),
    Case(
        "two senders in one message",
        WeChatRequest(message_xml("text", Content="你好", FromUserName=["oA", "oB"])),
        400,
        None,
    ),
    Case(
        "a message over 1,000 characters never reaches Rasa",
        WeChatRequest(text_xml("办" * 5000)),
        200,
        "太长",
    ),
    Case(
        "citizen text cannot inject an intent",
        WeChatRequest(text_xml('/human_handoff{"x":1}')),
        200,
        "收到：human_handoff",
        'human_handoff{"x":1}',
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
async def test_wechat_table(case: Case, make_client) -> None:
    mode = case.options.get("mode", "safe")
    client, dialogue = await make_client(mode)
    status, body = await post(client, case.request)
    replies: list[str] = []
    if status == 200 and body != "success":
        reply = decrypt_reply(body, mode)
        assert reply["MsgType"] == "text" and reply["ToUserName"] == OPENID
        replies.append(reply["Content"])
        if mode == "safe":
            assert "<Encrypt>" in body and reply["Content"] not in body
    check(case, Observed(status, body, replies, dialogue.calls), sender=f"wx:{OPENID}", channel="wechat")


# ---------------------------------------------------------------------------------------------- URL check


async def test_get_url_verification(make_client) -> None:
    client, _ = await make_client()
    ts, nonce = str(int(time.time())), "abc"
    ok = await client.get("/wechat", params={"signature": sign(TOKEN, ts, nonce), "timestamp": ts,
                                             "nonce": nonce, "echostr": "echo-123"})  # fmt: skip
    assert ok.status == 200 and await ok.text() == "echo-123"
    bad = await client.get("/wechat", params={"signature": "x" * 40, "timestamp": ts, "nonce": nonce,
                                              "echostr": "echo-123"})  # fmt: skip
    assert bad.status == 403 and "echo-123" not in await bad.text()


# ---------------------------------------------------------------------------------------------- followers


async def test_subscribe_and_unsubscribe_are_recorded(make_client, sqlite_url) -> None:
    client, _ = await make_client()
    status, _ = await post(
        client, WeChatRequest(message_xml("event", Event="subscribe", EventKey="qrscene_guide"))
    )
    assert status == 200
    status, body = await post(client, WeChatRequest(message_xml("event", Event="unsubscribe")))
    assert status == 200 and body == "success"
    engine = create_engine(sqlite_url)
    async with session_factory(engine)() as s:
        row = (await s.execute(select(Follower))).scalar_one()
    await engine.dispose()
    assert row.openid == OPENID and row.subscribed is False and row.last_scene == "guide"
    assert row.subscribed_at is not None and row.unsubscribed_at is not None


async def test_subscribe_scan_welcomes_and_routes_scene(make_client) -> None:
    client, dialogue = await make_client()
    status, body = await post(
        client, WeChatRequest(message_xml("event", Event="subscribe", EventKey="qrscene_complain"))
    )
    content = decrypt_reply(body, "safe")["Content"]
    assert status == 200 and "欢迎关注" in content and "收到：/complain" in content
    assert [c[1] for c in dialogue.calls] == ["/complain"]


# ---------------------------------------------------------------------------------------------- dedup


async def test_retry_across_two_workers_runs_one_turn(
    aiohttp_client, redis_client, sqlite_url, fake_wechat
) -> None:
    """WeChat retries the same MsgId; two gateway instances share Redis: one turn, the same reply."""
    dialogue = ScriptedDialogue(delay=0.3)
    settings = settings_for("safe", str(fake_wechat.make_url("")).rstrip("/"), sqlite_url)
    a = await aiohttp_client(build_app(await build_services(settings, redis=redis_client, dialogue=dialogue)))
    b = await aiohttp_client(build_app(await build_services(settings, redis=redis_client, dialogue=dialogue)))
    req = WeChatRequest(text_xml("居住证怎么办"))
    results = await asyncio.gather(post(a, req), post(b, req), post(a, req))
    assert len(dialogue.calls) == 1
    replies = [decrypt_reply(body, "safe")["Content"] for status, body in results if status == 200]
    assert replies == ["收到：居住证怎么办"] * 3
    # a late retry (after the first finished) gets the cached reply as well
    _status, body = await post(b, req)
    assert decrypt_reply(body, "safe")["Content"] == "收到：居住证怎么办"
    assert len(dialogue.calls) == 1


async def test_events_are_deduplicated_too(make_client) -> None:
    client, dialogue = await make_client()
    req = WeChatRequest(message_xml("event", Event="CLICK", EventKey="PROGRESS", create_time=1_700_000_000))
    await post(client, req)
    await post(client, req)
    assert len(dialogue.calls) == 1


# ---------------------------------------------------------------------------------------------- deadline


async def test_slow_dialogue_answers_success_then_pushes(make_client, fake_wechat) -> None:
    client, _dialogue = await make_client(dialogue=ScriptedDialogue(delay=1.0), wechat_reply_deadline=0.3)
    started = time.monotonic()
    status, body = await post(client, WeChatRequest(text_xml("不动产登记要多久")))
    assert status == 200 and body == "success"
    assert time.monotonic() - started < 0.9
    sent = await pushed(fake_wechat)
    assert len(sent) == 1
    assert sent[0]["touser"] == OPENID
    assert sent[0]["payload"]["text"]["content"] == "收到：不动产登记要多久"


async def test_dialogue_down_degrades_politely(make_client) -> None:
    client, _ = await make_client(dialogue=ScriptedDialogue(fail=True))
    status, body = await post(client, WeChatRequest(text_xml("你好")))
    content = decrypt_reply(body, "safe")["Content"]
    assert status == 200 and "0797-3322110" in content and "稍后" in content


# ---------------------------------------------------------------------------------------------- long replies


def long_reply(_text: str, lines: int = 120) -> list[BotMessage]:
    rows = [f"{i}. 申请材料第{i}项：身份证原件及复印件一份，加盖公章的申请表。" for i in range(1, lines + 1)]
    return [BotMessage(text="\n".join(rows))]


def very_long_reply(_text: str) -> list[BotMessage]:
    """More parts than the 5 pushes a citizen's message allows."""
    if _text == "更多":  # only reached when nothing is left to page through
        return [BotMessage(text="收到：更多")]
    return long_reply(_text, lines=260)


async def test_long_reply_is_split_and_rest_pushed(make_client, fake_wechat) -> None:
    client, _ = await make_client(dialogue=ScriptedDialogue(reply=long_reply))
    status, body = await post(client, WeChatRequest(text_xml("材料")))
    first = decrypt_reply(body, "safe")["Content"]
    assert status == 200 and len(first.encode()) <= 2048 and first.startswith("1. ")
    full = long_reply("")[0].text or ""
    rest_count = len(full.encode()) // 2048 + 1 - 1
    sent = await pushed(fake_wechat, count=rest_count)
    parts = [first] + [s["payload"]["text"]["content"] for s in sent]
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert "\n".join(parts) == full  # nothing lost, nothing cut


async def test_long_reply_without_quota_offers_more(make_client, fake_wechat) -> None:
    client, _ = await make_client(dialogue=ScriptedDialogue(reply=very_long_reply))
    status, body = await post(client, WeChatRequest(text_xml("材料")))
    first = decrypt_reply(body, "safe")["Content"]
    assert status == 200
    assert "回复“更多”" in first and len(first.encode()) <= 2048
    collected = [first.split("\n（内容较长")[0]]
    for _ in range(30):
        _status, body = await post(client, WeChatRequest(text_xml("更多")))
        part = decrypt_reply(body, "safe")["Content"]
        if part.startswith("收到："):
            break
        collected.append(part)
    assert "\n".join(collected) == very_long_reply("")[0].text
    assert await pushed(fake_wechat, wait=0.2) == []  # nothing was pushed half-way


# ---------------------------------------------------------------------------------------------- hand-off


def handoff(kind: str):
    def reply(_text: str) -> list[BotMessage]:
        text = (
            "正在为您转接人工客服，请稍候……" if kind == "transfer" else "现在是非工作时间……如需留言请直接发送"
        )
        return [BotMessage(text=text, custom={"handoff": kind})]

    return reply


async def test_handoff_in_office_hours_transfers(make_client, fake_wechat) -> None:
    client, _ = await make_client(dialogue=ScriptedDialogue(reply=handoff("transfer")))
    status, body = await post(client, WeChatRequest(text_xml("转人工")))
    reply = decrypt_reply(body, "safe")
    assert status == 200 and reply["MsgType"] == "transfer_customer_service"
    sent = await pushed(fake_wechat)
    assert "转接人工客服" in sent[0]["payload"]["text"]["content"]


async def test_handoff_off_hours_takes_a_message(make_client, sqlite_url) -> None:
    client, dialogue = await make_client(dialogue=ScriptedDialogue(reply=handoff("leave_message")))
    await post(client, WeChatRequest(text_xml("转人工")))
    _status, body = await post(
        client, WeChatRequest(text_xml("我的营业执照办了两周还没好，请回电 13812345678"))
    )
    assert "留言已记录" in decrypt_reply(body, "safe")["Content"]
    assert len(dialogue.calls) == 1  # the message itself did not go to the dialogue engine
    engine = create_engine(sqlite_url)
    async with session_factory(engine)() as s:
        rows = (await s.execute(select(LeftMessage))).scalars().all()
    await engine.dispose()
    assert [r.text for r in rows] == ["我的营业执照办了两周还没好，请回电 13812345678"]
    assert rows[0].sender_id == f"wx:{OPENID}"


# ---------------------------------------------------------------------------------------------- push failures


async def test_push_failure_is_recorded(make_client, fake_wechat, sqlite_url, redis_client) -> None:
    async with aiohttp.ClientSession() as http:
        await http.post(
            fake_wechat.make_url("/_fake/fail"),
            json={"path": "/cgi-bin/message/custom/send", "errcode": 45015, "times": 5},
        )
    client, _ = await make_client(dialogue=ScriptedDialogue(delay=0.5), wechat_reply_deadline=0.1)
    _status, body = await post(client, WeChatRequest(text_xml("你好")))
    assert body == "success"
    engine = create_engine(sqlite_url)
    rows: list[UndeliveredReply] = []
    for _ in range(60):
        async with session_factory(engine)() as s:
            rows = list((await s.execute(select(UndeliveredReply))).scalars().all())
        if rows:
            break
        await asyncio.sleep(0.05)
    await engine.dispose()
    assert [(r.text, r.reason) for r in rows] == [("收到：你好", "errcode 45015")]
    # WeChat said the window is closed: no more pushes are attempted until the citizen writes again
    from bot.gateway.channels.wechat.cs_quota import CsQuota

    assert await CsQuota(redis_client, APP_ID).remaining(OPENID) == 0


async def test_a_body_in_two_tcp_segments_is_read_whole(make_client) -> None:
    """WeChat's servers (or a proxy) may send the body in pieces: the handler waits for all of it."""
    client, _ = await make_client()
    path, body = WeChatRequest(text_xml("你好")).build()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    writer.write(head + body[:40])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.write(body[40:])
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    assert b" 200 " in status_line, response[:200]
    reply = decrypt_reply(rest.split(b"\r\n\r\n", 1)[1].decode(), "safe")
    assert reply["Content"] == "收到：你好"


# ---------------------------------------------------------------------------------------------- replay


async def test_a_signature_is_good_for_one_body_only(make_client) -> None:
    """Plaintext signatures cover timestamp and nonce, not the body: the same pair with another body is
    a replay with a forged body and is refused; the same request again (WeChat's retry) is answered once."""
    client, dialogue = await make_client("plain")
    first = WeChatRequest(text_xml("我的受理号是多少"), mode="plain")
    assert (await post(client, first))[0] == 200
    forged = WeChatRequest(text_xml("我要投诉"), mode="plain", nonce=first.nonce,
                           timestamp=int(first.build()[0].split("timestamp=")[1].split("&")[0]))  # fmt: skip
    status, body = await post(client, forged)
    assert (status, body) == (403, "forbidden")
    retry_status, retry_body = await post(client, first)
    assert retry_status == 200 and "收到：我的受理号是多少" in decrypt_reply(retry_body, "plain")["Content"]
    assert [c[1] for c in dialogue.calls] == ["我的受理号是多少"]


async def test_plaintext_is_refused_outside_demo_mode_unless_allowed(make_client) -> None:
    request = WeChatRequest(text_xml("你好"), mode="plain")
    production, dialogue = await make_client("compatible", wechat_allow_plain=False)
    assert await post(production, request) == (403, "forbidden")
    assert dialogue.calls == []
    encrypted = await post(production, WeChatRequest(text_xml("你好"), mode="compatible"))
    assert encrypted[0] == 200 and decrypt_reply(encrypted[1], "compatible")["Content"] == "收到：你好"
    demo, _ = await make_client("compatible", wechat_allow_plain=False, **{"mode": "demo"})
    status, body = await post(demo, WeChatRequest(text_xml("你好"), mode="plain"))
    assert status == 200 and decrypt_reply(body, "plain")["Content"] == "收到：你好"
