"""The small interface every channel implements (WeChat, SMS): it owns its HTTP routes, verifies and
parses inbound requests into ``conversation.Inbound``, renders ``Outcome`` for its medium and pushes late
replies.  Claiming, deadlines, cached replies for retries and late delivery are the shared protocol in
:mod:`bot.gateway.channels.webhook`."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web


class Channel(Protocol):
    name: str

    def routes(self) -> list[web.RouteDef]: ...

    async def close(self) -> None:
        """Finish background work (late replies) before the process exits."""
        ...
