"""A broadcast in real Chromium, by two people: the operator composes (the live segment counter), uploads
the list and submits; the approver approves from the queue; the operator starts it and watches the progress
fragment (htmx polling) reach 已完成 while a broadcast worker sends through the Twilio fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from bot.gateway.channels.sms.channel import SmsChannel
from sms_gateway.broadcast.engine import BroadcastWorker
from sms_gateway.broadcast.limiter import RateLimiter
from tests.support.broadcast import csv_bytes
from tests.support.browser import Gateway, PageErrors, SignedIn, live_gateway, screenshot


@pytest.fixture
async def gateway(redis_client, sqlite_url, aiohttp_server) -> AsyncIterator[Gateway]:
    """The browser tests' gateway with SMS on: the Twilio fake as the provider, so broadcasts are served."""
    async with live_gateway(redis_client, sqlite_url, aiohttp_server, sms=True) as live:
        assert live.services.broadcasts is not None
        yield live


@pytest.fixture
async def worker(gateway: Gateway) -> AsyncIterator[None]:
    """One broadcast worker in this process, sending through the gateway's SMS ledger."""
    services = gateway.services
    assert services.broadcasts is not None
    outbox = next(c.outbox for c in services.channels if isinstance(c, SmsChannel))
    limiter = RateLimiter(services.redis, 100.0, 100.0)
    w = BroadcastWorker(
        services.broadcasts, outbox, services.redis, limiter, concurrency=4, run_outbox_sweep=False
    )
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _sign_out(page: Page) -> None:
    await page.get_by_role("button", name="退出").click()
    await page.wait_for_load_state("networkidle")


async def test_compose_approve_and_send_a_broadcast(
    gateway: Gateway, browser_page, signed_in: SignedIn, worker: None
) -> None:
    page, errors = browser_page
    assert isinstance(errors, PageErrors)
    page = await signed_in("op", ["broadcast_operator"])
    await page.get_by_role("link", name="群发通知").click()
    await page.get_by_role("link", name="新建群发").click()
    await page.get_by_label("群发名称").fill("企业年报提醒")
    await page.get_by_label("短信正文").press_sequentially("{姓名}您好：请于6月30日前报送企业年报。")
    # the counter counts the signature too: 【县行政服务中心】 (9) + 22 characters
    await expect(page.locator("#template-count")).to_have_text("31 字，约 1 条短信")
    await page.get_by_label("用途").select_option("提醒")
    await page.get_by_label("发送时段").fill("00:00-24:00")
    await screenshot(page, "broadcast_composer")
    await page.get_by_role("button", name="保存草稿，下一步上传名单").click()
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("h1")).to_contain_text("企业年报提醒")

    rows = [["手机号", "姓名"], ["13900000001", "张三"], ["13900000002", "李四"], ["13900000002", "李四"],
            ["110", "王五"], ["13900000003", "赵六"]]  # fmt: skip
    await page.get_by_label("名单文件").set_input_files(
        {"name": "名单.csv", "mimeType": "text/csv", "buffer": csv_bytes(rows)}
    )
    await page.get_by_role("button", name="上传名单").click()
    await page.wait_for_load_state("networkidle")
    report = page.locator("[role=status]", has_text="本次上传")
    await expect(report.locator("tbody td")).to_have_text(["5", "3", "1", "1", "0"])  # rows, eligible, …
    await expect(page.get_by_text("检查通过")).to_be_visible()
    await expect(page.locator("figure.sample pre").first).to_have_text(
        "【县行政服务中心】张三您好：请于6月30日前报送企业年报。回T退订"
    )
    await page.get_by_role("button", name="提交审核").click()
    await page.wait_for_load_state("networkidle")
    await expect(page.get_by_text("已提交审核")).to_be_visible()
    await _sign_out(page)

    page = await signed_in("boss", ["approver"])
    await page.goto(f"{gateway.url}/console/broadcasts/review")
    await expect(page.get_by_text("可发送 3 人")).to_be_visible()
    await page.get_by_role("button", name="审核通过").click()
    await page.wait_for_load_state("networkidle")
    await expect(page.get_by_text("目前没有待审核的群发")).to_be_visible()
    await _sign_out(page)

    page = await signed_in("op", ["broadcast_operator"])
    await page.goto(f"{gateway.url}/console/broadcasts")
    await page.get_by_role("link", name="企业年报提醒").click()
    await expect(page.locator("h1")).to_contain_text("已排期")
    campaign = page.url.rsplit("/", 1)[1]
    await page.get_by_role("button", name="开始发送").click()
    await page.wait_for_load_state("networkidle")
    # the progress fragment polls; when the state changes, the page reloads with its new controls
    await expect(page.locator("h1")).to_contain_text("已完成", timeout=30_000)
    assert page.url == f"{gateway.url}/console/broadcasts/{campaign}"
    await expect(page.locator("#progress tbody td")).to_have_text(["3", "3", "0", "0", "0", "0", "—"])
    await expect(page.get_by_role("button", name="暂停")).to_have_count(0)
    # the export runs as a background job: its page shows the progress, then the download link
    await page.get_by_role("button", name="导出每个收件人的结果（XLSX）").click()
    await expect(page.locator("h1")).to_contain_text("导出群发明细")
    link = page.get_by_role("link", name=f"下载 {campaign}.xlsx")
    await expect(link).to_be_visible(timeout=30_000)
    await expect(page.locator("#job-status")).to_contain_text("已完成（共 5 条）")  # 3 sent, 2 excluded
    async with page.expect_download() as download:
        await link.click()
    assert (await download.value).suggested_filename == f"{campaign}.xlsx"
    assert errors.messages == []
