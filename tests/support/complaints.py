"""Shared helpers for the complaint tests (no tests here): a service on a freshly migrated database with a
settable clock, and an in-memory ReplySender."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domains.complaints.delivery import DeliveryError, Recipient
from bot.domains.complaints.intake import NewComplaint

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


def new(description: str = "3号窗口的人态度很差，不耐烦", sender: str = WX, **kw: object) -> NewComplaint:
    return NewComplaint(
        channel="wechat" if sender.startswith("wx:") else "sms",
        sender_id=sender,
        description=description,
        respondent=kw.pop("respondent", "3号窗口"),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
