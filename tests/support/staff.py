"""Helpers for the staff identity tests: a settable clock and strong passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

PASSWORD = "Lantern-oxbow-7-quietly"
OTHER_PASSWORD = "Copper-meadow-4-swiftly"


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)
