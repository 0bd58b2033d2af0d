"""The dashboard in real Chromium: every chart is drawn by ECharts, the tables and export links are there,
and the page logs no console errors."""

from __future__ import annotations

from tests.support.browser import Gateway, screenshot
from tests.support.reports import seed


async def test_dashboard_charts_render(gateway: Gateway, browser_page, signed_in) -> None:
    page, errors = browser_page
    period = await seed(gateway.services.sessions)
    await signed_in("viewer", ["viewer"])
    await page.goto(f"{gateway.url}/console/dashboard?from={period['from']}&to={period['to']}")
    await page.wait_for_load_state("networkidle")
    await page.wait_for_function(
        "document.querySelectorAll('.chart[data-drawn=\"1\"] canvas').length === 7", timeout=10_000
    )
    assert await page.locator("table").count() == 7
    assert await page.locator("text=导出 Excel（XLSX）").count() == 7
    await screenshot(page, "dashboard")
    await page.goto(f"{gateway.url}/console/supervision?from={period['from']}&to={period['to']}")
    await page.wait_for_load_state("networkidle")
    assert await page.locator(".badge.bad", has_text="超期").count() >= 1
    assert errors.messages == []
