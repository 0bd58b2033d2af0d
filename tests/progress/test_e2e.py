"""End to end without Rasa: signed and encrypted WeChat messages through the gateway's WeChat channel and
conversation to the progress turn (a stand-in dialogue routes every message to ``handle_progress_turn``, as
the lead's Rasa rules will), the reference backend over HTTP, then a status change made through the
backend's API pushed as exactly one template message by two notifier workers through the WeChat API fake."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.adapters.approval import HttpApprovalBackend
from bot.adapters.wechat.api_client import WeChatApiClient
from bot.adapters.wechat.token_service import TokenService
from bot.core.config import Settings
from bot.core.db import create_engine, session_factory
from bot.core.env import Secret
from bot.domains.progress.config import ProgressSettings
from bot.domains.progress.notifier import ProgressNotifier
from bot.domains.progress.replies import Replies, ReplyContext
from bot.domains.progress.service import ProgressService
from bot.gateway.actions.progress import handle_progress_turn
from bot.gateway.app import build_app, build_services
from bot.gateway.conversation.dialogue import BotMessage
from tests.support.progress import (
    APPLICANT_PHONE,
    CENTER_PHONE,
    Clock,
    RefHarness,
    fast_settings,
    make_service,
    working_days,
)
from tests.support.wechat import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    OPENID,
    TOKEN,
    WeChatRequest,
    decrypt_reply,
    message_xml,
)

TEMPLATE = "tmpl-progress-e2e"


class ProgressDialogue:
    """Stands in for Rasa + the routing rules: every message is a progress turn."""

    def __init__(self, service: ProgressService) -> None:
        self.service = service

    async def turn(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]:
        reply = await handle_progress_turn(self.service, sender_id, metadata["channel"], text, metadata, {})
        return [BotMessage(text=t) for t in reply.messages]


async def say(client: TestClient, text: str) -> str:
    path, body = WeChatRequest(message_xml("text", Content=text)).build()
    resp = await client.post(path, data=body, headers={"Content-Type": "text/xml"})
    assert resp.status == 200
    return decrypt_reply(await resp.text(), "safe")["Content"]


async def test_signed_wechat_lookup_then_one_notification_with_two_workers(
    aiohttp_client, fake_wechat, reference: RefHarness, redis_client: aioredis.Redis, database_url: str
) -> None:
    api_base = str(fake_wechat.make_url("")).rstrip("/")
    settings = dataclasses.replace(
        Settings(),
        wechat_token=Secret(TOKEN),
        wechat_app_id=APP_ID,
        wechat_app_secret=Secret(APP_SECRET),
        wechat_encoding_aes_key=Secret(AES_KEY),
        wechat_message_mode="safe",
        wechat_api_base=api_base,
        database_url=database_url,
    )
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    backends = [HttpApprovalBackend(fast_settings(reference.url), redis_client) for _ in range(3)]
    service = make_service(backends[0], sessions, redis_client, Clock(datetime.now(UTC)))
    services = await build_services(settings, redis=redis_client, dialogue=ProgressDialogue(service))
    client = await aiohttp_client(build_app(services))
    ticket = (await reference.create())["ticket_no"]
    stop = asyncio.Event()
    workers: list[asyncio.Task[None]] = []
    try:
        asked = await say(
            client, f"你好，我的受理号是 {ticket[:8]}-{ticket[8:14]}-{ticket[14]}，办到哪一步了？"
        )
        assert "后4位" in asked
        shown = await say(client, APPLICANT_PHONE[-4:])
        assert "当前进度：已受理，正在等待审核" in shown and "食品经营许可（新办）" in shown
        assert "张*三" in shown and APPLICANT_PHONE not in shown
        again = await say(client, "查一下进度")  # bound now: no second verification
        assert "当前进度：已受理" in again

        async with aiohttp.ClientSession() as http:
            await http.post(api_base + "/_fake/templates", json={"template_ids": [TEMPLATE]})
            for backend in backends[1:]:
                wechat = WeChatApiClient(
                    http, TokenService(redis_client, http, APP_ID, APP_SECRET, api_base), api_base
                )
                notifier = ProgressNotifier(
                    backend,
                    sessions,
                    Replies(ReplyContext(CENTER_PHONE, working_days())),
                    wechat=wechat,
                    sms=None,
                    settings=dataclasses.replace(
                        ProgressSettings(), template_id=TEMPLATE, poll_interval=0.05
                    ),
                )
                workers.append(asyncio.create_task(notifier.run_forever(stop)))
            await asyncio.sleep(0.3)  # the workers catch up with the feed: 受理 was seen, nothing to push
            await reference.change(ticket, "补正", missing_materials=["经营场所使用证明复印件1份"])

            async def templates() -> list[dict[str, Any]]:
                async with http.get(api_base + "/_fake/sent", params={"kind": "template"}) as resp:
                    return await resp.json()

            for _ in range(100):
                if await templates():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.4)  # time for a duplicate to appear
            sent = await templates()
            stop.set()
            await asyncio.gather(*workers)
        assert len(sent) == 1
        assert sent[0]["touser"] == OPENID
        data = {k: v["value"] for k, v in sent[0]["payload"]["data"].items()}
        assert data["character_string2"] == ticket and data["phrase3"] == "需补正"
        assert data["thing1"] == "食品经营许可（新办）"
        # The citizen asks again and sees every missing material.
        detail = await say(client, ticket)
        assert "1. 经营场所使用证明复印件1份" in detail
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        for backend in backends:
            await backend.close()
        await engine.dispose()
