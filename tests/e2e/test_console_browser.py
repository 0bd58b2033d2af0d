"""The web console on the real chat path, in real Chromium: the gateway runs live on a local port against the
e2e stack (the real Rasa server, our action server, the knowledge base; tests/e2e/conftest.py), with the
WeChat API fake for pushes and safe (encrypted) message mode.  What staff do in the console reaches the
citizen typing in the WeChat simulator:

* a kb_editor edits an item's fee, and the bot (the action server, which notices the catalogue's new
  version through the shared Redis) answers the new fee at once;
* a complaint filed through Rasa's complaint form is worked from 已登记 to 已办结 at the complaint desk by
  the supervisor (受理, 派单) and the department's handler (签收, 答复, 回访, 办结), and the reply is pushed
  to the citizen (the fake's record, shown by the simulator)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from bot.gateway.conversation.dialogue import RasaRestDialogue
from eval.stack import Stack
from tests.support.browser import (
    ARGS,
    CHROMIUM,
    Gateway,
    PageErrors,
    live_gateway,
    sign_in_form,
    submit_action,
)
from tests.support.rasa_stack import stack_redis_url
from tests.support.staff import PASSWORD

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]

PASSPORT = "36072200-XK-041"  # 普通护照申领
OFFICE = "行政服务中心办公室"
DEPARTMENT = "信丰县公安局出入境管理大队"
TURN = 30_000  # ms: one real Rasa turn on a busy machine, with room to spare


@pytest.fixture
async def gateway(rasa_stack: Stack, aiohttp_server) -> AsyncIterator[Gateway]:
    """The gateway on a local port, talking to the stack's Rasa, on its database and its Redis database
    (the one the action server watches for the catalogue's version)."""
    redis = aioredis.from_url(stack_redis_url(), decode_responses=False)
    async with aiohttp.ClientSession() as http:
        dialogue = RasaRestDialogue(http, rasa_stack.rasa_url, 20.0)
        async with live_gateway(
            redis,
            rasa_stack.database_url,
            aiohttp_server,
            dialogue=dialogue,
            wechat_message_mode="safe",
            wechat_reply_deadline=20.0,
            actions_port=rasa_stack.actions_port,  # the console's tester asks the stack's action server
        ) as live:
            yield live
    await redis.aclose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield instance
        finally:
            await instance.close()


class People:
    """Fresh browser contexts, one per signed-in person; every page's console errors go to ``errors``."""

    def __init__(self, gateway: Gateway, browser: Browser) -> None:
        self.gateway, self.browser = gateway, browser
        self.errors = PageErrors()
        self.contexts: list[BrowserContext] = []

    async def sign_in(self, username: str, roles: list[str], department: str = OFFICE) -> Page:
        staff = self.gateway.services.staff
        assert staff is not None
        if await staff.accounts.by_username(username) is None:
            await staff.accounts.create(username, username, PASSWORD, roles, department, False)
        context = await self.browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        self.contexts.append(context)
        page = await context.new_page()
        errors = self.errors.messages
        page.on(
            "console",
            lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        await sign_in_form(page, self.gateway.url, username, PASSWORD)
        assert "/console/login" not in page.url, await page.inner_text("main")
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def people(gateway: Gateway, browser: Browser) -> AsyncIterator[People]:
    found = People(gateway, browser)
    try:
        yield found
    finally:
        await found.close()


async def open_simulator(page: Page, gateway: Gateway) -> str:
    """A new citizen (a fresh openid) in the WeChat simulator; the openid."""
    openid = f"oConsoleE2e{time.time_ns()}"
    await page.goto(f"{gateway.url}/console/simulator?openid={openid}")
    assert "微信模拟器" in await page.inner_text("h1")
    return openid


async def say(page: Page, text: str) -> str:
    """Type ``text`` as the citizen and send it; the bot's passive reply, as the simulator shows it."""
    sent = await page.locator("li.bubble.me").count()
    await page.fill("#text", text)
    await page.click("form.compose button[type=submit]")
    await page.locator("li.bubble.me").nth(sent).wait_for(timeout=TURN)
    last = page.locator("li.bubble").last
    answer = await last.locator(".text").inner_text()
    assert "bot" in (await last.get_attribute("class") or ""), answer  # not a note: a passive reply
    return answer


async def test_an_edited_fee_is_answered_in_the_simulator(gateway: Gateway, people: People) -> None:
    citizen = await people.sign_in("e2e-simulator", ["kb_editor"])
    await open_simulator(citizen, gateway)
    before = await say(citizen, "办护照要多少钱")
    assert "普通护照" in before and "120元" in before, before

    editor = await people.sign_in("e2e-editor", ["kb_editor"])
    await editor.goto(f"{gateway.url}/console/kb/items/{PASSPORT}")
    new_fee = "普通护照88元/本（e2e）"
    await editor.fill("#f-fee", new_fee)
    await editor.click("text=保存")
    await editor.wait_for_load_state("networkidle")
    assert "已保存" in await editor.inner_text("main")

    after = await say(citizen, "办护照要多少钱")
    assert new_fee in after, after
    assert people.errors.messages == []


async def desk_submit(
    page: Page, action: str, fields: dict[str, str], selects: dict[str, str] | None = None
) -> str:
    """Fill and send one action form of the complaint page; the new heading."""
    await submit_action(page, action, fields, selects)
    return await page.inner_text("h1")


async def test_a_complaint_filed_in_the_simulator_is_answered_there(gateway: Gateway, people: People) -> None:
    citizen = await people.sign_in("e2e-citizen", ["kb_editor"])
    openid = await open_simulator(citizen, gateway)
    assert "描述" in await say(citizen, "我要投诉")
    assert "窗口" in await say(citizen, "上午在出入境窗口排了三个小时的队，叫号系统一直不动也没人解释")
    assert "电话" in await say(citizen, "10号窗口")
    assert "保密" in await say(citizen, "13812340909")
    readback = await say(citizen, "否")
    assert "请确认" in readback and "138****0909" in readback, readback
    receipt = await say(citizen, "确认")
    found = re.search(r"编号：(TS[0-9A-Za-z-]+)", receipt)
    assert found, receipt
    number = found.group(1)
    service = gateway.services.complaints
    assert service is not None
    row = await service.get(number)
    assert row is not None and row.sender_id == f"wx:{openid}" and row.respondent == "10号窗口"

    chief = await people.sign_in("e2e-chief", ["complaint_supervisor"], OFFICE)
    await chief.goto(f"{gateway.url}/console/complaints/{number}")
    assert "已登记" in await chief.inner_text("h1")
    assert "已受理" in await desk_submit(chief, "accept", {"note": "属实，予以受理"})
    assert "已派单" in await desk_submit(chief, "dispatch", {"department": DEPARTMENT})

    handler = await people.sign_in("e2e-handler", ["complaint_handler"], DEPARTMENT)
    await handler.goto(f"{gateway.url}/console/complaints/{number}")
    assert "已派单" in await handler.inner_text("h1")
    assert "办理中" in await desk_submit(handler, "start", {"note": "已签收"})
    reply = "经核实，当日叫号系统故障，已修复并增派人员，向您致歉。"
    assert "已答复" in await desk_submit(handler, "reply", {"text": reply})
    assert "已回访" in await desk_submit(handler, "callback", {"note": "电话回访，表示满意"}, {"rating": "5"})
    assert "已办结" in await desk_submit(handler, "close", {"note": "办结"}, {"result": "resolved"})

    await citizen.goto(f"{gateway.url}/console/simulator?openid={openid}")
    pushes = citizen.locator("#pushes")
    await pushes.locator(f"text={number}").first.wait_for(timeout=10_000)
    shown = await pushes.inner_text()
    assert f"您的投诉（{number}）已答复" in shown and reply in shown, shown
    assert [e.action for e in await service.history(number)] == [
        "create", "accept", "dispatch", "start", "reply", "callback", "close",
    ]  # fmt: skip
    assert people.errors.messages == []
