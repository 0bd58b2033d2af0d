"""Shared helpers for the complaint tests (no tests here): a service on a freshly migrated database with a
settable clock, and an in-memory ReplySender."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.complaints.delivery import DeliveryError, Recipient
from bot.complaints.service import ComplaintService, NewComplaint
from bot.db import create_engine, session_factory

SHANGHAI = ZoneInfo("Asia/Shanghai")
WX = "wx:oUser0000000000000000000001"
OTHER = "wx:oUser0000000000000000000002"


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI).astimezone(UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Recorder:
    """In-memory ReplySender: records every send; ``fail`` makes the next sends raise."""

    sent: list[tuple[Recipient, str, str]] = field(default_factory=list)
    fail: int = 0

    async def send(self, recipient: Recipient, text: str, *, key: str) -> str:
        if self.fail:
            self.fail -= 1
            raise DeliveryError("boom")
        self.sent.append((recipient, text, key))
        return "memory"


@pytest.fixture(name="sessions")
async def sessions_fixture(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock(local(2026, 3, 2))  # a Monday


@pytest.fixture(name="recorder")
def recorder_fixture() -> Recorder:
    return Recorder()


@pytest.fixture(name="service")
def service_fixture(sessions, clock: Clock, recorder: Recorder) -> ComplaintService:  # type: ignore[no-untyped-def]
    return ComplaintService(sessions, clock=clock, sender=recorder)


def new(description: str = "3号窗口的人态度很差，不耐烦", sender: str = WX, **kw: object) -> NewComplaint:
    return NewComplaint(
        channel="wechat" if sender.startswith("wx:") else "sms",
        sender_id=sender,
        description=description,
        respondent=kw.pop("respondent", "3号窗口"),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
