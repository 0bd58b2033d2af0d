"""RasaRestDialogue over several Rasa servers: turns go to the least busy one, refused ones are skipped.

The servers here are small aiohttp apps answering Rasa's REST-channel protocol
(``POST /webhooks/rest/webhook`` → ``[{"recipient_id", "text"}]``) with their own name, so each reply
says which server took the turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer, unused_port

from bot.gateway.conversation.dialogue import DialogueUnavailable, RasaRestDialogue, rasa_servers


class RasaLike:
    """A Rasa REST endpoint that can hold turns until released."""

    def __init__(self, name: str, arrived: asyncio.Event | None = None) -> None:
        self.name = name
        self.senders: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.arrived = arrived or asyncio.Event()  # set when a turn arrives
        self.waiting = 0

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            body = await request.json()
            self.senders.append(body["sender"])
            self.waiting += 1
            self.arrived.set()
            try:
                await self.hold.wait()
            finally:
                self.waiting -= 1
            return web.json_response(
                [{"recipient_id": body["sender"], "text": f"{self.name}: {body['message']}"}]
            )

        async def root(_request: web.Request) -> web.Response:
            return web.Response(text="Hello from Rasa: 3.6.21")

        app = web.Application()
        app.add_routes([web.post("/webhooks/rest/webhook", webhook), web.get("/", root)])
        return app


Start = Callable[[RasaLike], Awaitable[TestServer]]


@pytest.fixture
def start(aiohttp_server) -> Start:
    async def _start(rasa: RasaLike) -> TestServer:
        return await aiohttp_server(rasa.app())

    return _start


def url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def test_server_list_is_comma_separated() -> None:
    assert rasa_servers("http://a:5005/, http://b:5006") == ["http://a:5005", "http://b:5006"]
    assert rasa_servers("http://a:5005") == ["http://a:5005"]
    with pytest.raises(ValueError):
        rasa_servers(" , ")


async def test_turns_go_to_the_server_with_fewest_turns_in_flight(start: Start) -> None:
    arrived = asyncio.Event()
    a, b = RasaLike("a", arrived), RasaLike("b", arrived)
    server_a, server_b = await start(a), await start(b)
    a.hold.clear()  # both hold their turns until released
    b.hold.clear()
    async with ClientSession() as http:
        dialogue = RasaRestDialogue(http, f"{url(server_a)},{url(server_b)}", 5.0)
        first = asyncio.create_task(dialogue.turn("wx:1", "你好", {}))
        await asyncio.wait_for(arrived.wait(), 5)
        busy, other = (a, b) if a.waiting else (b, a)
        other.hold.set()
        # While one server works on a turn, the next turns go to the other one.
        replies = [await dialogue.turn(f"wx:{n}", "你好", {}) for n in (2, 3, 4)]
        assert [r[0].text for r in replies] == [f"{other.name}: 你好"] * 3
        busy.hold.set()
        assert (await first)[0].text == f"{busy.name}: 你好"
        # Idle servers share the work.
        a.senders.clear()
        b.senders.clear()
        await asyncio.gather(*(dialogue.turn(f"wx:{n}", "谢谢", {}) for n in range(10, 20)))
    assert len(a.senders) >= 3 and len(b.senders) >= 3 and len(a.senders) + len(b.senders) == 10


async def test_a_refusing_server_is_skipped(start: Start) -> None:
    b = RasaLike("b")
    server_b = await start(b)
    down = f"http://127.0.0.1:{unused_port()}"
    async with ClientSession() as http:
        dialogue = RasaRestDialogue(http, f"{down},{url(server_b)}", 5.0)
        replies = [await dialogue.turn(f"wx:{n}", "营业执照", {}) for n in range(4)]
        assert [r[0].text for r in replies] == ["b: 营业执照"] * 4
        assert not await dialogue.healthy()  # /healthz shows that one server is down
        with pytest.raises(DialogueUnavailable, match="ClientConnectorError"):
            await RasaRestDialogue(http, down, 5.0).turn("wx:1", "你好", {})


async def test_a_failing_turn_is_not_repeated_elsewhere(start: Start, aiohttp_server) -> None:
    """Only refused connections move on: a server that took the turn and failed may have run part of it."""
    b = RasaLike("b")
    server_b = await start(b)

    async def broken(_request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.add_routes([web.post("/webhooks/rest/webhook", broken)])
    server_broken = await aiohttp_server(app)
    async with ClientSession() as http:
        dialogue = RasaRestDialogue(http, f"{url(server_broken)},{url(server_b)}", 5.0)
        outcomes: list[str] = []
        for n in range(2):
            try:
                text = (await dialogue.turn(f"wx:{n}", "你好", {}))[0].text
                assert text is not None
                outcomes.append(text)
            except DialogueUnavailable as exc:
                outcomes.append(str(exc))
    assert sorted(outcomes) == ["Rasa answered HTTP 500", "b: 你好"]
    assert b.senders == [next(s for s in ("wx:0", "wx:1") if s in b.senders)]


async def test_healthy_when_every_server_answers(start: Start) -> None:
    servers = [await start(RasaLike(name)) for name in "ab"]
    async with ClientSession() as http:
        assert await RasaRestDialogue(http, ",".join(url(s) for s in servers), 1.0).healthy()
