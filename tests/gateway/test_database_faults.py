"""PostgreSQL going away under a running gateway: every pooled connection terminated mid-traffic (what a
server restart does to the pool, ``pg_terminate_backend``), and the server unreachable for a while and then
back (a TCP proxy in front of it stopped — connections dropped, new ones refused — and started again).
WeChat messages are answered within WeChat's time throughout, and turns are recorded again once it is back.
Runs when TEST_POSTGRES_URL is set (``make test`` on CI); the suite's server itself is shared, so it is not
stopped."""

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


class _Proxy:
    """A TCP proxy in front of PostgreSQL that can be 'restarted': stopping it drops every connection and
    refuses new ones, as a server restart does; starting it again lets clients reconnect."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except Exception:  # the other side went away
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers.difference_update({writer, up_writer})


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_postgresql_down_for_a_while_then_back(database_url, redis_client, fake_wechat, aiohttp_client):
    """While the database cannot be reached every message still gets a reply within WeChat's time (the turn
    log, a statistic, is what waits); once it is back, every turn is answered and recorded again."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    proxy = _Proxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    settings = settings_for("plain", str(fake_wechat.make_url("")).rstrip("/"), via_proxy)
    services = await build_services(settings, redis=redis_client, dialogue=ScriptedDialogue())
    client = await aiohttp_client(build_app(services))

    async def say(n: int) -> str:
        request = WeChatRequest(message_xml("text", openid=f"oPgDown{n}", Content=f"你好{n}"), mode="plain")
        started = asyncio.get_running_loop().time()
        status, body = await post(client, request)
        assert status == 200 and asyncio.get_running_loop().time() - started < 5, (n, status, body)
        reply = decrypt_reply(body, "plain").get("Content") or ""
        assert reply, (n, body)  # a reply, never silence
        return reply

    assert [await say(n) for n in range(3)] == [f"收到：你好{n}" for n in range(3)]
    await proxy.stop()  # the server goes away: connections dropped, new ones refused
    for n in range(3, 6):
        await say(n)
    await proxy.start()  # and comes back on the same address
    counts = []
    for n in range(6, 12):
        await asyncio.sleep(0.5)
        assert await say(n) == f"收到：你好{n}"
        await asyncio.sleep(0.3)
        async with services.sessions() as session:
            counts.append(await session.scalar(select(func.count()).select_from(ConversationTurn)) or 0)
    assert counts == list(range(counts[0], counts[0] + 6)), counts  # each turn after the outage recorded
    await proxy.stop()
