"""电子监察's case register: every case of the reference backend's change feed — subscribed or not — with
its item, window, status and the times it was first seen, accepted and completed; a batch read twice
changes nothing; a backend that cannot give a new case's details leaves the cursor where it was."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.approval.http_backend import HttpApprovalBackend
from bot.core.clock import as_utc
from bot.core.db import create_engine, session_factory
from bot.domains.progress.config import ProgressSettings
from bot.domains.progress.models import SupervisionCase
from bot.domains.progress.notifier import ProgressNotifier
from bot.domains.progress.register import CURSOR_NAME, CaseRegister
from bot.domains.progress.replies import Replies, ReplyContext
from bot.domains.progress.store import ProgressStore
from bot.domains.progress.supervision import by_department, by_window, supervised_cases
from knowledge_base.models import KbItem
from tests.support.progress import CENTER_PHONE, ITEM_3D, ITEM_NOW, RefHarness, local, working_days


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, SupervisionCase]:
    async with sessions() as s:
        return {r.ticket_no: r for r in await s.scalars(select(SupervisionCase))}


async def _drain(register: CaseRegister) -> None:
    for _ in range(20):
        report = await register.run_once()
        assert report.error is None
        if not report.has_more:
            return


async def test_every_case_of_the_feed_is_registered_with_its_dates(
    reference: RefHarness, adapter: HttpApprovalBackend, sessions: async_sessionmaker[AsyncSession]
) -> None:
    monday = local(2026, 3, 2, 9)
    a = (await reference.create(ITEM_3D, status="申请", at=monday))["ticket_no"]
    await reference.change(a, "受理", at=monday + timedelta(hours=2))
    await reference.change(a, "审核", at=monday + timedelta(days=1))
    await reference.change(a, "办结", at=monday + timedelta(days=2))
    b = (await reference.create(ITEM_NOW, at=monday + timedelta(days=1)))["ticket_no"]
    register = CaseRegister(adapter, sessions, batch=2)  # small pages: several rounds
    await _drain(register)
    rows = await _rows(sessions)
    assert set(rows) == {a, b}  # nobody subscribed to either
    ra = rows[a]
    assert (ra.status, ra.item_code, ra.details) == ("completed", ITEM_3D, True)
    assert ra.item_name and ra.window
    assert as_utc(ra.first_seen_at) == monday.astimezone(UTC)
    assert as_utc(ra.accepted_at) == (monday + timedelta(hours=2)).astimezone(UTC)
    assert as_utc(ra.completed_at) == (monday + timedelta(days=2)).astimezone(UTC)
    assert rows[b].status == "accepted" and rows[b].completed_at is None
    # a later change moves the status; reading the same changes again (cursor reset) changes nothing
    await reference.change(b, "办结", at=monday + timedelta(days=1, hours=1))
    await _drain(register)
    before = {
        t: (r.status, r.first_seen_at, r.accepted_at, r.completed_at)
        for t, r in (await _rows(sessions)).items()
    }
    assert before[b][0] == "completed"
    calls = await reference.case_calls()
    store = ProgressStore(sessions)
    assert await store.advance_cursor(CURSOR_NAME, await store.cursor(CURSOR_NAME), "0")
    await _drain(CaseRegister(adapter, sessions, batch=3))
    after = {
        t: (r.status, r.first_seen_at, r.accepted_at, r.completed_at)
        for t, r in (await _rows(sessions)).items()
    }
    assert after == before
    assert await reference.case_calls() == calls  # details are fetched once per case


async def test_an_unreachable_backend_keeps_the_cursor(
    reference: RefHarness, adapter: HttpApprovalBackend, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ticket = (await reference.create(ITEM_3D))["ticket_no"]
    register = CaseRegister(adapter, sessions)
    await reference.fault(status=503, body='{"error": "busy"}', times=-1, path_prefix="/api/v1/cases/")
    report = await register.run_once()
    assert report.error is not None and report.changes == 1
    assert await ProgressStore(sessions).cursor(CURSOR_NAME) is None
    assert await _rows(sessions) == {}
    await reference.fault(times=0)
    await adapter.breaker.reset()  # the failures opened the adapter's circuit breaker
    report = await register.run_once()
    assert report.error is None
    assert set(await _rows(sessions)) == {ticket}


async def test_supervision_reads_the_register(
    reference: RefHarness, adapter: HttpApprovalBackend, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Promised dates in working days from the day accepted; flags against today; figures per department
    and per window."""
    async with sessions.begin() as s:
        s.add(KbItem(code=ITEM_3D, name="食品经营许可（新办）", department="市场监管局", window="5号窗口",
                     materials="身份证", promised_time_limit="3个工作日"))  # fmt: skip
    friday = local(2026, 3, 6, 10)
    late = (await reference.create(ITEM_3D, at=friday))["ticket_no"]  # due Wed 11 March
    done = (await reference.create(ITEM_3D, at=friday))["ticket_no"]
    await reference.change(done, "办结", at=friday + timedelta(days=3))  # Monday: on time
    due = (await reference.create(ITEM_3D, at=local(2026, 3, 9, 10)))["ticket_no"]  # due Thu 12 March
    await _drain(CaseRegister(adapter, sessions))
    today = local(2026, 3, 12).date()
    cases = await supervised_cases(
        sessions, working_days(), today, local(2026, 3, 1).astimezone(UTC), local(2026, 3, 13).astimezone(UTC)
    )
    by_ticket = {c.ticket_no: c for c in cases}
    assert by_ticket[late].promised == local(2026, 3, 11).date() and by_ticket[late].flag == "overdue"
    assert by_ticket[due].flag == "warning"
    assert by_ticket[done].on_time is True and by_ticket[done].flag == ""
    assert all(c.department == "市场监管局" for c in cases)
    (dept,) = by_department(cases)
    assert (dept.name, dept.received, dept.completed_on_time, dept.overdue, dept.warning) == (
        "市场监管局", 3, 1, 1, 1
    )  # fmt: skip
    (window,) = by_window(cases)
    assert window.name.startswith("市场监管局 / ")


async def test_the_notifiers_loop_keeps_the_register_current(
    reference: RefHarness, adapter: HttpApprovalBackend, sessions: async_sessionmaker[AsyncSession]
) -> None:
    notifier = ProgressNotifier(
        adapter,
        sessions,
        Replies(ReplyContext(CENTER_PHONE, working_days())),
        wechat=None,
        sms=None,
        settings=dataclasses.replace(ProgressSettings(), poll_interval=0.05),
        register=CaseRegister(adapter, sessions),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run_forever(stop))
    try:
        ticket = (await reference.create(ITEM_3D))["ticket_no"]
        for _ in range(100):
            if ticket in await _rows(sessions):
                break
            await asyncio.sleep(0.05)
        await reference.change(ticket, "办结")
        for _ in range(100):
            if (await _rows(sessions))[ticket].status == "completed":
                break
            await asyncio.sleep(0.05)
        assert (await _rows(sessions))[ticket].status == "completed"
    finally:
        stop.set()
        await task


async def test_one_bad_case_does_not_stop_the_register(
    reference: RefHarness, adapter: HttpApprovalBackend, sessions: async_sessionmaker[AsyncSession]
) -> None:
    good = (await reference.create(ITEM_3D))["ticket_no"]
    bad = (await reference.create(ITEM_NOW))["ticket_no"]
    await reference.fault(status=200, body="{not json", times=-1, path_prefix=f"/api/v1/cases/{bad}")
    register = CaseRegister(adapter, sessions)
    report = await register.run_once()
    assert report.error is None and await ProgressStore(sessions).cursor(CURSOR_NAME) is not None
    rows = await _rows(sessions)
    assert rows[good].details and not rows[bad].details  # registered, details to come
    await reference.fault(times=0)
    await adapter.breaker.reset()
    assert await register.fill_details() == 1
    assert (await _rows(sessions))[bad].item_code == ITEM_NOW
