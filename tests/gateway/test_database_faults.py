"""PostgreSQL dropping every connection mid-traffic (what a restart does to a running gateway): WeChat
messages keep being answered, and every turn keeps being recorded once the connections are back.  Runs when
TEST_POSTGRES_URL is set (``make test`` on CI); a restart of the server itself would disturb the other tests
sharing it, so its effect on our side — every pooled connection dead at once — is produced with
``pg_terminate_backend``."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from bot.core.db import create_engine
from bot.gateway.app import build_app, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.models import ConversationTurn
from tests.support.services import TEST_POSTGRES_URL
from tests.support.wechat import WeChatRequest, decrypt_reply, message_xml, post, settings_for

pytestmark = pytest.mark.skipif(not TEST_POSTGRES_URL, reason="TEST_POSTGRES_URL not set")


async def _kill_connections(url: str) -> int:
    """Terminate every other connection to this database; how many there were."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return len(rows.all())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_every_connection_dropped_mid_traffic(database_url, redis_client, fake_wechat, aiohttp_client):
    settings = settings_for("plain", str(fake_wechat.make_url("")).rstrip("/"), database_url)
    services = await build_services(settings, redis=redis_client, dialogue=ScriptedDialogue())
    client = await aiohttp_client(build_app(services))
    replies = []
    for n in range(12):
        if n in (4, 8):
            assert await _kill_connections(database_url) >= 1
        request = WeChatRequest(message_xml("text", openid=f"oPgFault{n}", Content=f"你好{n}"), mode="plain")
        status, body = await post(client, request)
        assert status == 200, (n, body)
        replies.append(decrypt_reply(body, "plain").get("Content"))
    assert replies == [f"收到：你好{n}" for n in range(12)]
    await asyncio.sleep(0.2)  # the turn log is written after the reply
    async with services.sessions() as session:
        turns = await session.scalar(select(func.count()).select_from(ConversationTurn))
    assert turns == 12
