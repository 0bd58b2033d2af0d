"""The WeChat simulator in real Chromium: type "你好" as a citizen and see the scripted reply, which went
signed and encrypted (safe mode) through this gateway's /wechat and came back decrypted."""

from __future__ import annotations

from tests.support.browser import Gateway, screenshot


async def test_type_as_a_citizen_and_see_the_reply(gateway: Gateway, signed_in, browser_page) -> None:
    page = await signed_in("editor", ["kb_editor"])
    _, errors = browser_page
    await page.goto(f"{gateway.url}/console/simulator")
    assert gateway.services.settings.wechat_message_mode == "safe"
    await page.fill("#text", "你好")
    await page.click("form.compose button[type=submit]")
    await page.wait_for_selector("li.bubble.bot >> text=收到：你好")
    assert await page.input_value("#text") == ""  # the conversation came back with an empty box
    await page.fill("#text", "怎么办理居住证")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # the send button, by keyboard
    await page.wait_for_selector("li.bubble.bot >> text=收到：怎么办理居住证")
    await page.wait_for_load_state("networkidle")
    await screenshot(page, "simulator")
    assert errors.messages == []
