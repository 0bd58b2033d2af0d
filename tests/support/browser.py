"""Helpers for the browser tests (tests/browser/; fixtures in its conftest.py): where Chromium is, how it is
started, the live gateway and page-error records, screenshots for README."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from playwright.async_api import Page

from bot.core.config import ROOT
from bot.gateway.app import Services

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass
class Gateway:
    url: str
    services: Services
    runner: web.AppRunner


@dataclass
class PageErrors:
    messages: list[str] = field(default_factory=list)


SignedIn = Callable[..., Awaitable[Page]]


async def screenshot(page: Page, name: str) -> None:
    """Save a README screenshot (docs/screenshots/NAME.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)
