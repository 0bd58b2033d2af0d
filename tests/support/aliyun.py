"""A test harness for the SMS channel with Alibaba Cloud SMS, over real HTTP: the Aliyun fake (its API
verified with ACS3-HMAC-SHA256 and called by the official SDK) and the gateway's push endpoints each on
their own local port, a real database and Redis, the scripted dialogue engine.  The fake pushes delivery
reports and citizens' replies to the gateway as Aliyun does (JSON batches, retried until ``{"code": 0}``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.config import Settings
from bot.core.db import create_engine, session_factory
from bot.core.env import Secret
from bot.core.metrics import Metrics
from bot.gateway.channels.sms import SmsChannel, build_sms_channel
from bot.gateway.conversation.dialogue import Dialogue
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.conversation.service import Conversation
from bot.gateway.left_messages import LeftMessageBox
from sms_gateway.aliyun import fake as fake_aliyun
from sms_gateway.aliyun.templates import TemplateRegistry
from sms_gateway.config import SmsSettings
from sms_gateway.outbox import LedgerEntry
from tests.support.sms import FAST, SIGNATURE, wait_until

KEY_ID = "LTAI5tHarness0000000000"
KEY_SECRET = "harness-secret-0123456789"
PUSH_TOKEN = "push-token-harness-0123456789"
PHONE = "+8613812345678"
NATIONAL = PHONE[3:]
_SEQUENCE = itertools.count(900_000)


def aliyun_settings(endpoint: str, public: str, **overrides: Any) -> SmsSettings:
    return dataclasses.replace(
        SmsSettings(),
        provider="aliyun",
        aliyun_access_key_id=KEY_ID,
        aliyun_access_key_secret=Secret(KEY_SECRET),
        aliyun_push_token=Secret(PUSH_TOKEN),
        aliyun_endpoint=endpoint,
        signature=SIGNATURE,
        public_base_url=public,
        **{**FAST, **overrides},
    )


def fake_for(registry: TemplateRegistry, **options: Any) -> fake_aliyun.FakeAliyun:
    """The fake with the registry's templates (and their approval states) and our signature."""
    templates = {
        t.code: fake_aliyun.Template(t.content, status=t.status) for t in registry.templates.values()
    }
    return fake_aliyun.FakeAliyun({KEY_ID: KEY_SECRET}, signs={SIGNATURE}, templates=templates, **options)


@dataclass
class AliyunHarness:
    settings: SmsSettings
    fake: fake_aliyun.FakeAliyun
    fake_server: TestServer
    app_server: TestServer
    http: aiohttp.ClientSession
    channel: SmsChannel
    dialogue: Any
    redis: aioredis.Redis
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def outbox(self):
        return self.channel.outbox

    def push_path(self, kind: str, token: str = PUSH_TOKEN) -> str:
        return f"/sms/aliyun/{token}/{kind}"

    async def push(self, kind: str, payload: Any, *, token: str = PUSH_TOKEN, raw: bytes | None = None):
        """POST a push (``up`` or ``report``) as Aliyun does; returns (status, answer text)."""
        data = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode()
        url = str(self.app_server.make_url(self.push_path(kind, token)))
        headers = {"Content-Type": "application/json"}
        async with self.http.post(url, data=data, headers=headers) as resp:
            return resp.status, await resp.text()

    @staticmethod
    def up_record(content: str, phone: str = NATIONAL, sequence: Any = None) -> dict[str, Any]:
        sequence = next(_SEQUENCE) if sequence is None else sequence
        return {"phone_number": phone, "content": content, "send_time": "2026-12-07 10:00:00",
                "dest_code": "1", "sequence_id": sequence}  # fmt: skip

    async def citizen_replies(self, phone: str, content: str) -> None:
        """A citizen's reply through the fake's control endpoint (pushed to us as SmsUp)."""
        url = str(self.fake_server.make_url("/_fake/reply"))
        async with self.http.post(url, json={"phone": phone, "content": content}) as resp:
            assert resp.status == 200, await resp.text()

    def sent(self, phone: str = NATIONAL) -> list[fake_aliyun.Sent]:
        return [s for s in self.fake.sent if s.phone == phone]

    async def ledger(self, phone: str | None = PHONE) -> list[LedgerEntry]:
        return await self.outbox.entries(recipient=phone)

    async def wait_for(self, check: Any, within: float = 5.0) -> bool:
        return await wait_until(check, within)

    async def settle(self, within: float = 5.0) -> None:
        await self.wait_for(lambda: not self.channel.busy and not fake_aliyun._TASKS, within)

    async def close(self) -> None:
        await self.settle(3.0)
        await self.channel.close()
        await self.app_server.close()
        await self.fake_server.close()
        await self.http.close()
        await self.engine.dispose()


async def start_aliyun(
    redis: aioredis.Redis,
    database_url: str,
    *,
    dialogue: Dialogue | None = None,
    registry: TemplateRegistry | None = None,
    start_worker: bool = False,
    **overrides: Any,
) -> AliyunHarness:
    """The Aliyun fake pushing to the gateway's SMS routes, and the channel sending through the fake."""
    registry = registry or TemplateRegistry.load()
    app_port = unused_port()
    public = f"http://127.0.0.1:{app_port}"
    fake = fake_for(
        registry,
        report_url=f"{public}/sms/aliyun/{PUSH_TOKEN}/report",
        up_url=f"{public}/sms/aliyun/{PUSH_TOKEN}/up",
        push_delays=(0.0, 0.2, 0.4),
    )
    fake_server = TestServer(fake_aliyun.build_app(fake), port=unused_port())
    await fake_server.start_server()
    settings = aliyun_settings(f"http://127.0.0.1:{fake_server.port}", public, **overrides)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    metrics = Metrics(redis)
    dialogue = dialogue or ScriptedDialogue()
    conversation = Conversation(Settings(), redis, dialogue, LeftMessageBox(sessions), metrics)
    http = aiohttp.ClientSession()
    channel = build_sms_channel(
        settings, redis=redis, conversation=conversation, sessions=sessions, metrics=metrics, http=http,
        start_worker=start_worker,
    )  # fmt: skip
    app = web.Application()
    app.add_routes(channel.routes())
    app_server = TestServer(app, port=app_port)
    await app_server.start_server()
    return AliyunHarness(
        settings, fake, fake_server, app_server, http, channel, dialogue, redis, engine, sessions
    )
