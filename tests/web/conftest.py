"""Fixtures for tests/web/: the real gateway app (scripted dialogue, SQLite, real Redis) with the console,
and a browser-like client that signs in through the console's own form."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from bot.core.config import Settings
from bot.gateway.app import Services, build_app, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from tests.support.services import with_action_server
from tests.support.staff import PASSWORD

SignIn = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def services(redis_client, sqlite_url, aiohttp_server) -> Services:
    settings = dataclasses.replace(
        Settings(), database_url=sqlite_url, wechat_message_mode="plain", wechat_allow_plain=True
    )
    settings = await with_action_server(aiohttp_server, settings)
    return await build_services(settings, redis=redis_client, dialogue=ScriptedDialogue())


@pytest.fixture
def console(aiohttp_client, services: Services) -> Callable[[], Awaitable[TestClient]]:
    async def make() -> TestClient:
        return await aiohttp_client(build_app(services))

    return make


@pytest.fixture
def sign_in(console, services: Services) -> SignIn:
    """A client signed in as a new person with ``roles`` (``department`` optional)."""

    async def make(username: str, roles: list[str], department: str = "行政服务中心办公室") -> TestClient:
        assert services.staff is not None
        if await services.staff.accounts.by_username(username) is None:
            await services.staff.accounts.create(username, username, PASSWORD, roles, department, False)
        client = await console()
        resp = await client.post(
            "/console/login", data={"username": username, "password": PASSWORD}, allow_redirects=False
        )
        assert resp.status == 302, await resp.text()
        return client

    return make
