"""The gateway's services for a console page.  ``bot.gateway.app`` imports this package to register the
pages, so its ``SERVICES`` key is imported when a page asks, not when the module loads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.gateway.app import Services


def services_of(request: web.Request) -> Services:
    from bot.gateway.app import SERVICES

    return request.app[SERVICES]
