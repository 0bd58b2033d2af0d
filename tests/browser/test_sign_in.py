"""Sign in with the keyboard in real Chromium, see the navigation of one's roles, sign out."""

from __future__ import annotations

from tests.support.browser import Gateway, PageErrors
from tests.support.staff import PASSWORD


async def test_sign_in_with_the_keyboard_and_out(gateway: Gateway, browser_page) -> None:
    page, errors = browser_page
    assert isinstance(errors, PageErrors)
    staff = gateway.services.staff
    assert staff is not None
    await staff.accounts.create("boss", "主任", PASSWORD, ["admin"], "办公室", False)
    await page.goto(f"{gateway.url}/console/")
    assert "/console/login" in page.url
    await page.wait_for_selector("#username:focus")  # the form opens with the username focused
    await page.keyboard.type("boss")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    async with page.expect_navigation():  # the form posts and the console answers with a redirect
        await page.keyboard.press("Enter")
    await page.goto(f"{gateway.url}/console/?menu=1")
    assert "主任(boss)" in await page.inner_text("header")
    await page.click("text=退出")
    await page.wait_for_load_state("networkidle")
    assert "/console/login" in page.url
    assert errors.messages == []
