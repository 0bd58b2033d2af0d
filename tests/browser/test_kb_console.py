"""知识库 in real Chromium: a kb_editor tries a question, edits the item's fee, and the tester's answer
(the running bot's) changes at once."""

from __future__ import annotations

from knowledge_base.importer import ensure_sample_loaded
from tests.support.browser import Gateway, screenshot

PASSPORT = "36072200-XK-041"


async def test_an_edited_fee_changes_the_testers_answer(gateway: Gateway, signed_in, browser_page) -> None:
    _, errors = browser_page
    await ensure_sample_loaded(gateway.services.sessions, gateway.services.redis)
    page = await signed_in("editor", ["kb_editor"])
    await page.goto(f"{gateway.url}/console/kb")
    await page.fill("#q", "护照要多少钱")
    await page.press("#q", "Enter")
    await page.wait_for_load_state("networkidle")
    wechat = page.locator('pre.reply[data-channel="wechat"]').first
    assert "普通护照120元/本" in await wechat.inner_text()
    await page.click(f'a[href="/console/kb/items/{PASSPORT}"]')
    await page.wait_for_load_state("networkidle")
    await page.fill("#f-fee", "普通护照100元/本（2027年起）")
    await page.click("text=保存")
    await page.wait_for_load_state("networkidle")
    assert "已保存" in await page.inner_text("main")
    assert "普通护照100元/本（2027年起）" in await page.inner_text("table")  # the history
    await page.goto(f"{gateway.url}/console/kb?q=护照要多少钱")
    assert "普通护照100元/本（2027年起）" in await wechat.inner_text()
    sms = page.locator('pre.reply[data-channel="sms"]').first
    assert "普通护照100元/本（2027年起）" in await sms.inner_text()
    await screenshot(page, "kb_tester")
    assert errors.messages == []
