"""The small interface every channel implements (WeChat now, SMS next): it owns its HTTP routes,
turns inbound requests into ``conversation.Inbound`` and formats ``Outcome`` for its medium."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web


class Channel(Protocol):
    name: str

    def routes(self) -> list[web.RouteDef]: ...

    async def close(self) -> None:
        """Finish background work (late replies) before the process exits."""
        ...
