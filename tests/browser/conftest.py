"""Browser tests in real headless Chromium (Debian's ``chromium``, driven by Playwright for Python).

``gateway`` serves the real gateway app (scripted dialogue, SQLite, the test Redis, the WeChat API fake) on
a local port; ``browser_page`` is a fresh Chromium page whose console errors and failed requests are
collected (a test ends by asserting there were none: ``page_errors``).  ``signed_in`` signs a new person
with the given roles in through the console's own form.  Screenshots for README go to docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.browser import ARGS, CHROMIUM, Gateway, PageErrors, SignedIn, live_gateway, sign_in_form
from tests.support.staff import PASSWORD

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")


@pytest.fixture
async def gateway(redis_client, sqlite_url, aiohttp_server) -> AsyncIterator[Gateway]:
    async with live_gateway(redis_client, sqlite_url, aiohttp_server) as live:
        yield live


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
async def browser_page(browser: Browser) -> AsyncIterator[tuple[Page, PageErrors]]:
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = await context.new_page()
    errors = PageErrors()
    page.on(
        "console",
        lambda m: errors.messages.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: errors.messages.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.messages.append(f"request failed: {r.url}"))
    try:
        yield page, errors
    finally:
        await context.close()


@pytest.fixture
def signed_in(gateway: Gateway, browser_page) -> SignedIn:
    """Sign ``username`` (created with ``roles`` when new) in through the console's form; the page."""

    async def sign(username: str, roles: list[str], department: str = "行政服务中心办公室") -> Page:
        staff = gateway.services.staff
        assert staff is not None
        if await staff.accounts.by_username(username) is None:
            await staff.accounts.create(username, username, PASSWORD, roles, department, False)
        page, _ = browser_page
        await sign_in_form(page, gateway.url, username, PASSWORD)
        return page

    return sign
