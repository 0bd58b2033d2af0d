"""A complaint from 已登记 to 已办结 through the console's forms in real Chromium, with no console errors."""

from __future__ import annotations

from playwright.async_api import Page

from bot.domains.complaints.intake import NewComplaint
from tests.browser.conftest import Gateway, PageErrors, SignedIn, screenshot

OFFICE = "行政服务中心办公室"


async def submit(
    page: Page, action: str, fields: dict[str, str], selects: dict[str, str] | None = None
) -> None:
    form = page.locator(f"#form-{action}")
    for name, value in fields.items():
        await form.locator(f"#{action}-{name}").fill(value)
    for name, value in (selects or {}).items():
        await form.locator(f"#{action}-{name}").select_option(value)
    async with page.expect_navigation():
        await form.locator("button[type=submit]:not([name=preview])").click()
    await page.wait_for_load_state("networkidle")


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

    await submit(page, "accept", {"note": "属实，予以受理"})
    assert "已受理" in await page.inner_text("h1")
    await submit(page, "dispatch", {"department": OFFICE})
    assert "已派单" in await page.inner_text("h1")
    await submit(page, "start", {"note": "已签收"})
    assert "办理中" in await page.inner_text("h1")

    reply = "经核实，已对3号窗口工作人员批评教育，并安排专人协助您一次办结。"
    await page.fill("#reply-text", reply)
    assert "微信文字消息" in await page.inner_text("#reply-channel")
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, "complaint_desk")
    await submit(page, "reply", {"text": reply})
    assert "已答复" in await page.inner_text("h1")
    await submit(page, "callback", {"note": "电话回访，群众表示满意"}, {"rating": "5"})
    assert "已回访" in await page.inner_text("h1")
    await submit(page, "close", {"note": "办结"}, {"result": "resolved"})
    assert "已办结" in await page.inner_text("h1")
    assert "5 分 · 非常满意" in await page.inner_text("main")

    row = await service.get(number)
    assert row is not None and row.status == "closed"
    assert [e.action for e in await service.history(number)] == [
        "create", "accept", "dispatch", "start", "reply", "callback", "close",
    ]  # fmt: skip
    assert errors.messages == []
