"""Helpers for the browser tests (tests/browser/; fixtures in its conftest.py): where Chromium is, how it is
started, the live gateway and page-error records, screenshots for README."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import unused_port
from playwright.async_api import Page

from bot.adapters.wechat import fake_api
from bot.core.config import ROOT, Settings
from bot.core.env import Secret
from bot.gateway.app import Services, build_app, build_services
from bot.gateway.conversation.dialogue import Dialogue
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from sms_gateway.config import SmsSettings
from sms_gateway.twilio import fake as fake_twilio
from tests.support.services import with_action_server
from tests.support.sms import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER
from tests.support.wechat import AES_KEY, APP_ID, APP_SECRET, TOKEN

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
    """Take a README screenshot: into docs/screenshots/NAME.png with UPDATE_SCREENSHOTS=1, otherwise into
    var/screenshots/ (taken all the same, without changing the repository on every test run)."""
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else ROOT / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


async def sign_in_form(page: Page, url: str, username: str, password: str) -> None:
    """Sign in through the console's login form at ``url`` and wait for its redirect to land."""
    await page.goto(f"{url}/console/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    async with page.expect_navigation():  # a goto before the redirect lands would abort the login POST
        await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")


async def submit_action(
    page: Page, action: str, fields: dict[str, str], selects: dict[str, str] | None = None
) -> None:
    """Fill and send one action form (``#form-ACTION``) of a complaint page."""
    form = page.locator(f"#form-{action}")
    for name, value in fields.items():
        await form.locator(f"#{action}-{name}").fill(value)
    for name, value in (selects or {}).items():
        await form.locator(f"#{action}-{name}").select_option(value)
    async with page.expect_navigation():
        await form.locator("button[type=submit]:not([name=preview])").click()
    await page.wait_for_load_state("networkidle")


@contextlib.asynccontextmanager
async def live_gateway(
    redis: aioredis.Redis,
    database_url: str,
    aiohttp_server: Any,
    *,
    sms: bool = False,
    dialogue: Dialogue | None = None,
    **overrides: Any,
) -> AsyncIterator[Gateway]:
    """The real gateway app on a local port (scripted dialogue unless ``dialogue`` is given, the WeChat API
    fake, safe mode; ``overrides`` replace further settings); with ``sms`` the Twilio fake is its SMS
    provider, so broadcasts and SMS replies are served."""
    wechat = await aiohttp_server(fake_api.build_app(app_id=APP_ID, app_secret=APP_SECRET))
    port = unused_port()
    settings = dataclasses.replace(
        Settings(),
        database_url=database_url,
        wechat_token=Secret(TOKEN),
        wechat_app_id=APP_ID,
        wechat_app_secret=Secret(APP_SECRET),
        wechat_encoding_aes_key=Secret(AES_KEY),
        wechat_api_base=str(wechat.make_url("")).rstrip("/"),
        public_base_url=f"http://127.0.0.1:{port}",
        port=port,
        **overrides,
    )
    if "actions_port" not in overrides:  # the console's knowledge-base tester asks the action server
        settings = await with_action_server(aiohttp_server, settings)
    sms_settings = None
    if sms:
        twilio = await aiohttp_server(
            fake_twilio.build_app(ACCOUNT_SID, AUTH_TOKEN, from_numbers=(FROM_NUMBER,))
        )
        sms_settings = dataclasses.replace(
            SmsSettings(),
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=Secret(AUTH_TOKEN),
            twilio_from_number=FROM_NUMBER,
            twilio_api_base=str(twilio.make_url("")).rstrip("/"),
        )
    services = await build_services(
        settings, redis=redis, dialogue=dialogue or ScriptedDialogue(), sms_settings=sms_settings
    )
    runner = web.AppRunner(build_app(services))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Gateway(f"http://127.0.0.1:{port}", services, runner)
    finally:
        await runner.cleanup()
