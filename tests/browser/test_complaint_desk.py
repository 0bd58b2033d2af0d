"""A complaint from 已登记 to 已办结 through the console's forms in real Chromium, with no console errors; the
reply composer's live SMS counter (signature included) agrees with the server's preview."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.domains.complaints.intake import NewComplaint
from bot.domains.complaints.service import reply_notice
from sms_gateway.compose import Composer
from tests.support.browser import (
    Gateway,
    PageErrors,
    SignedIn,
    live_gateway,
    screenshot,
    sign_in_form,
    submit_action,
)
from tests.support.staff import PASSWORD

OFFICE = "行政服务中心办公室"


async def test_a_complaint_from_registered_to_closed(
    gateway: Gateway, browser_page, signed_in: SignedIn
) -> None:
    page, errors = browser_page
    assert isinstance(errors, PageErrors)
    service = gateway.services.complaints
    assert service is not None
    new = NewComplaint(
        channel="wechat",
        sender_id="wx:o-browser-citizen",
        description="窗口工作人员态度生硬，多次让我补材料却不一次性告知。",
        category="attitude",
        respondent="3号窗口",
    )
    number = (await service.create(new, idempotency_key="browser-desk")).complaint.number
    await signed_in("chief", ["complaint_supervisor"], OFFICE)

    await page.goto(f"{gateway.url}/console/complaints")
    assert "投诉工单" in await page.inner_text("h1")
    async with page.expect_navigation():
        await page.click(f"text={number}")
    await page.wait_for_load_state("networkidle")
    assert "已登记" in await page.inner_text("h1")

    await submit_action(page, "accept", {"note": "属实，予以受理"})
    assert "已受理" in await page.inner_text("h1")
    await submit_action(page, "dispatch", {"department": OFFICE})
    assert "已派单" in await page.inner_text("h1")
    await submit_action(page, "start", {"note": "已签收"})
    assert "办理中" in await page.inner_text("h1")

    reply = "经核实，已对3号窗口工作人员批评教育，并安排专人协助您一次办结。"
    await page.fill("#reply-text", reply)
    assert "微信文字消息" in await page.inner_text("#reply-channel")
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, "complaint_desk")
    await submit_action(page, "reply", {"text": reply})
    assert "已答复" in await page.inner_text("h1")
    await submit_action(page, "callback", {"note": "电话回访，群众表示满意"}, {"rating": "5"})
    assert "已回访" in await page.inner_text("h1")
    await submit_action(page, "close", {"note": "办结"}, {"result": "resolved"})
    assert "已办结" in await page.inner_text("h1")
    assert "5 分 · 非常满意" in await page.inner_text("main")

    row = await service.get(number)
    assert row is not None and row.status == "closed"
    assert [e.action for e in await service.history(number)] == [
        "create", "accept", "dispatch", "start", "reply", "callback", "close",
    ]  # fmt: skip
    assert errors.messages == []


@pytest.fixture
async def sms_gateway(redis_client, sqlite_url, aiohttp_server) -> AsyncIterator[Gateway]:
    """The live gateway with SMS on (Twilio's fake), so replies to an SMS complaint go by SMS."""
    async with live_gateway(redis_client, sqlite_url, aiohttp_server, sms=True) as live:
        yield live


async def test_the_sms_counter_counts_live_with_the_signature(sms_gateway: Gateway, browser_page) -> None:
    page, errors = browser_page
    services = sms_gateway.services
    service, staff, broadcasts = services.complaints, services.staff, services.broadcasts
    assert service is not None and staff is not None and broadcasts is not None
    new = NewComplaint(channel="sms", sender_id="sms:+8613800138000", description="办事效率低，来回跑了三次")
    number = (await service.create(new, idempotency_key="sms-desk")).complaint.number
    await service.accept(number, "督办员")
    await service.dispatch(number, "督办员", OFFICE)
    await service.start(number, "承办人")
    await staff.accounts.create("chief", "chief", PASSWORD, ["complaint_supervisor"], OFFICE, False)
    await sign_in_form(page, sms_gateway.url, "chief", PASSWORD)
    await page.goto(f"{sms_gateway.url}/console/complaints/{number}")
    assert "短信" in await page.inner_text("#reply-channel")

    draft = "经核实，" + "已对相关窗口人员进行批评教育并整改。" * 5
    await page.locator("#reply-text").fill(draft)
    full = Composer(broadcasts.composer.signature).whole([reply_notice(number, draft)])
    segments = sum(m.segments for m in full)
    expected = f"{len(broadcasts.composer.prefix + reply_notice(number, draft))} 字，约 {segments} 条短信"
    assert await page.inner_text("#reply-count") == expected
    async with page.expect_navigation():
        await page.click("#form-reply button[name=preview]")
    assert f"计 {segments} 条短信" in await page.inner_text("#reply-channel")
    assert await page.input_value("#reply-text") == draft
    assert errors.messages == []
