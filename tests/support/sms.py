"""A test harness for the SMS channel over real HTTP: the Twilio fake and the gateway's SMS routes each on
their own local port, a real database and Redis, the scripted dialogue engine, and requests signed the way
Twilio signs them.  Used by tests/sms/, tests/complaints/ and tests/progress/ (and handy for benchmarks)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, overload

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.core.config import Settings
from bot.core.db import create_engine, session_factory
from bot.core.env import Secret
from bot.core.metrics import Metrics
from bot.gateway.channels.sms import SmsChannel, build_sms_channel
from bot.gateway.conversation.dialogue import Dialogue
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.conversation.service import Conversation
from bot.gateway.left_messages import LeftMessageBox
from sms_gateway.config import SmsSettings
from sms_gateway.outbox import LedgerEntry
from sms_gateway.twilio import fake as fake_twilio
from sms_gateway.twilio.testing import inbound_params, sign, status_params

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
FROM_NUMBER = "+15005550006"


def sms_on_unreachable_twilio() -> SmsSettings:
    """SMS switched on (so campaigns and the SMS webhooks exist) with a Twilio API nothing answers at."""
    return dataclasses.replace(
        SmsSettings(), provider="twilio", twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=Secret(AUTH_TOKEN), twilio_from_number=FROM_NUMBER, twilio_api_base="http://127.0.0.1:9",
    )  # fmt: skip


PHONE = "+8613812345678"
OTHER_PHONE = "+8613987654321"
SIGNATURE = "县行政服务中心"

DialogueT = TypeVar("DialogueT", bound=Dialogue)

FAST = {
    "send_timeout": 1.0,
    "reconcile_delay": 0.0,
    "retry_delays": (0.0, 0.0),
    "throttle_backoff": 0.0,
    "sync_reply_deadline": 2.0,
    "worker_interval": 0.05,
}


async def wait_until(check: Callable[[], Awaitable[bool]] | Callable[[], bool], within: float = 5.0) -> bool:
    """Whether ``check()`` came true within ``within`` seconds (polled every 20 ms)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


@dataclass
class SmsHarness(Generic[DialogueT]):
    settings: SmsSettings
    fake: fake_twilio.FakeTwilio
    fake_server: TestServer | None
    app_server: TestServer
    http: aiohttp.ClientSession
    channel: SmsChannel
    dialogue: DialogueT  # the scripted one unless the test passes another (e.g. Rasa's REST client)
    redis: aioredis.Redis
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock_offset: timedelta = field(default_factory=timedelta)

    @property
    def outbox(self):
        return self.channel.outbox

    @property
    def base_url(self) -> str:
        return self.settings.public_base_url

    @property
    def inbound_url(self) -> str:
        """The public URL Twilio is configured with (and signs)."""
        return self.base_url + "/sms/twilio"

    def local_url(self, path: str) -> str:
        """Where the routes really listen (differs from the public URL behind a proxy)."""
        return str(self.app_server.make_url(path))

    def advance(self, seconds: float) -> None:
        """Move the ledger's clock forward (leases, back-offs and retry delays expire without sleeping)."""
        self.clock_offset += timedelta(seconds=seconds)

    def now(self) -> datetime:
        return utcnow() + self.clock_offset

    # ------------------------------------------------------------------------------------------ requests

    async def inbound(
        self,
        body: str,
        *,
        phone: str = PHONE,
        message_sid: str | None = None,
        signature: str | None = None,
        sign_url: str | None = None,
        auth_token: str = AUTH_TOKEN,
        omit_signature: bool = False,
        extra: dict[str, str] | None = None,
        after_signing: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST an incoming SMS as Twilio would (signed over ``sign_url``, default the public URL)."""
        params = inbound_params(
            account_sid=ACCOUNT_SID,
            sender=phone,
            to=FROM_NUMBER,
            body=body,
            message_sid=message_sid or new_message_sid(),
        )
        params.update(extra or {})
        headers = {}
        if not omit_signature:
            headers["X-Twilio-Signature"] = signature or sign(
                sign_url or self.inbound_url, params, auth_token
            )
        params.update(after_signing or {})
        async with self.http.post(self.local_url("/sms/twilio"), data=params, headers=headers) as resp:
            return resp.status, await resp.text()

    async def status_callback(
        self,
        ledger_id: str | None,
        attempt: int | None,
        message_sid: str,
        status: str,
        *,
        error_code: int | None = None,
        phone: str = PHONE,
        signature: str | None = None,
    ) -> int:
        query = "&".join(f"{k}={v}" for k, v in (("lid", ledger_id), ("n", attempt)) if v is not None)
        path = "/sms/twilio/status" + (f"?{query}" if query else "")
        url = self.base_url + path
        params = status_params(
            account_sid=ACCOUNT_SID,
            message_sid=message_sid,
            status=status,
            to=phone,
            from_=FROM_NUMBER,
            error_code=error_code,
        )
        headers = {"X-Twilio-Signature": signature or sign(url, params, AUTH_TOKEN)}
        async with self.http.post(self.local_url(path), data=params, headers=headers) as resp:
            return resp.status

    # ------------------------------------------------------------------------------------------ reading

    def sent(self, to: str | None = PHONE, direction: str | None = None) -> list[fake_twilio.FakeMessage]:
        """Messages the fake accepted (outbound by default), oldest first."""
        items = sorted(self.fake.messages.values(), key=lambda m: m.date_created)
        if to is not None:
            items = [m for m in items if m.to == to]
        if direction is not None:
            items = [m for m in items if m.direction == direction]
        else:
            items = [m for m in items if m.direction != "inbound"]
        return items

    async def ledger(self, phone: str | None = PHONE) -> list[LedgerEntry]:
        return await self.outbox.entries(recipient=phone)

    async def wait_for(
        self, check: Callable[[], Awaitable[bool]] | Callable[[], bool], within: float = 5.0
    ) -> bool:
        return await wait_until(check, within)

    async def settle(self, within: float = 5.0) -> None:
        """Wait until the channel's background replies and the fake's callbacks are done."""
        await self.wait_for(lambda: not self.channel.busy and not self.fake.tasks, within)

    async def close(self) -> None:
        await self.settle(3.0)
        await self.channel.close()
        await self.app_server.close()
        if self.fake_server is not None:
            await self.fake_server.close()
        await self.http.close()
        await self.engine.dispose()


@overload
async def start_harness(
    redis: aioredis.Redis,
    database_url: str,
    *,
    dialogue: None = None,
    fake_options: dict[str, Any] | None = None,
    api_base: str | None = None,
    **overrides: Any,
) -> SmsHarness[ScriptedDialogue]: ...


@overload
async def start_harness(
    redis: aioredis.Redis,
    database_url: str,
    *,
    dialogue: DialogueT,
    fake_options: dict[str, Any] | None = None,
    api_base: str | None = None,
    **overrides: Any,
) -> SmsHarness[DialogueT]: ...


async def start_harness(
    redis: aioredis.Redis,
    database_url: str,
    *,
    dialogue: Dialogue | None = None,
    fake_options: dict[str, Any] | None = None,
    api_base: str | None = None,
    **overrides: Any,
) -> SmsHarness[Any]:
    """Start the fake (unless ``api_base`` points at one already running) and the SMS routes."""
    app_port = unused_port()
    public = overrides.pop("public_base_url", None) or f"http://127.0.0.1:{app_port}"
    fake_server: TestServer | None = None
    if api_base is None:
        fake_app = fake_twilio.build_app(
            ACCOUNT_SID,
            AUTH_TOKEN,
            from_numbers=(FROM_NUMBER,),
            inbound_url=f"http://127.0.0.1:{app_port}/sms/twilio",
            **(fake_options or {}),
        )
        fake_server = TestServer(fake_app, port=unused_port())
        await fake_server.start_server()
        api_base = str(fake_server.make_url("")).rstrip("/")
        fake_state = fake_app[fake_twilio.FAKE_STATE]
    else:
        fake_state = fake_twilio.FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)  # unused placeholder
    settings = dataclasses.replace(
        SmsSettings(),
        provider="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=Secret(AUTH_TOKEN),
        twilio_from_number=FROM_NUMBER,
        twilio_api_base=api_base,
        signature=SIGNATURE,
        public_base_url=public,
        **{**FAST, **overrides},
    )
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    metrics = Metrics(redis)
    dialogue = dialogue or ScriptedDialogue()
    conversation = Conversation(Settings(), redis, dialogue, LeftMessageBox(sessions), metrics)
    http = aiohttp.ClientSession()
    channel = build_sms_channel(
        settings,
        redis=redis,
        conversation=conversation,
        sessions=sessions,
        metrics=metrics,
        http=http,
        start_worker=False,
    )
    app = web.Application()
    app.add_routes(channel.routes())
    app_server = TestServer(app, port=app_port)
    await app_server.start_server()
    harness = SmsHarness(
        settings, fake_state, fake_server, app_server, http, channel, dialogue, redis, engine, sessions
    )
    channel.outbox.clock = harness.now
    return harness
