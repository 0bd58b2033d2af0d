"""The real gateway app served on 127.0.0.1 from a background thread with an event loop of its own, for
clients that are not asyncio (schemathesis calls it with ``requests``).

Everything it talks to is on this machine: the database it is given (SQLite in a temporary directory, or
the test PostgreSQL database), one Redis database of the test Redis server, the Twilio fake (so SMS and
broadcasts are on), the action server (the gateway asks it for knowledge-base searches; the sample
catalogue is loaded) and the scripted dialogue instead of Rasa; the WeChat API base points at a closed
loopback port.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import redis.asyncio as aioredis
from aiohttp import web

from bot.core.config import Settings
from bot.core.db import create_engine, session_factory
from bot.core.env import Secret
from bot.core.migrate import upgrade
from bot.gateway.actions.server import build_app as build_action_app
from bot.gateway.actions.server import build_context
from bot.gateway.app import Services, build_app, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from knowledge_base.cli import ensure_sample_loaded
from sms_gateway.config import SmsSettings
from sms_gateway.twilio import fake as fake_twilio

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
FROM = "+15005550006"
T = TypeVar("T")


class LiveGateway:
    """``start()`` serves the gateway (``url``); ``run(coro)`` runs a coroutine on its loop, e.g. to
    prepare data with ``services``; ``stop()`` closes everything."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url = database_url  # migrated here (an empty database, or SQLite's file to be)
        self.redis_url = redis_url
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="live-gateway", daemon=True)
        self._runners: list[web.AppRunner] = []
        self.url = ""
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        assert self._services is not None, "start() first"
        return self._services

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        async def wrapped() -> T:
            return await make()

        return self.run(wrapped(), timeout)

    def start(self) -> LiveGateway:
        self._thread.start()
        self.run(self._start())
        return self

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    async def _start(self) -> None:
        await upgrade(self.database_url)
        engine = create_engine(self.database_url)
        await ensure_sample_loaded(session_factory(engine))  # the sample catalogue, for searches to find
        await engine.dispose()
        redis = aioredis.from_url(self.redis_url, decode_responses=False)
        await redis.flushdb()
        twilio = await self._serve(fake_twilio.build_app(ACCOUNT_SID, AUTH_TOKEN, from_numbers=(FROM,)))
        sms = dataclasses.replace(
            SmsSettings(),
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=Secret(AUTH_TOKEN),
            twilio_from_number=FROM,
            twilio_api_base=twilio,
        )
        settings = dataclasses.replace(
            Settings(),
            database_url=self.database_url,
            redis_url=self.redis_url,
            wechat_message_mode="plain",
            wechat_api_base="http://127.0.0.1:9",  # nothing listens there: no call leaves this machine
        )
        # the action server, which the gateway asks for knowledge-base searches, on its own port
        actions = await self._serve(build_action_app(build_context(settings)))
        settings = dataclasses.replace(settings, actions_port=int(actions.rsplit(":", 1)[1]))
        self._services = await build_services(
            settings, redis=redis, dialogue=ScriptedDialogue(), sms_settings=sms
        )
        self.url = await self._serve(build_app(self._services))

    def stop(self) -> None:
        async def _stop() -> None:
            for runner in reversed(self._runners):
                await runner.cleanup()  # the gateway's cleanup closes its services (and Redis)

        try:
            self.run(_stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()
