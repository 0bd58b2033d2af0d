"""Office hours of the service center, on the Chinese working-day calendar (holidays and 调休 workdays).

The spec is ``"mon-fri 08:30-12:00,14:30-17:30"``: the day range names the regular working days; statutory
holidays are closed and 调休 weekend workdays are open, as published by the State Council
(the ``chinese-calendar`` package keeps that table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import chinese_calendar

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@dataclass(frozen=True)
class OfficeHours:
    weekdays: frozenset[int]
    periods: tuple[tuple[time, time], ...]
    tz: ZoneInfo

    @classmethod
    def parse(cls, spec: str, tz: str = "Asia/Shanghai") -> OfficeHours:
        days_part, _, times_part = spec.strip().partition(" ")
        first, _, last = days_part.partition("-")
        start, end = _DAYS.index(first.lower()), _DAYS.index((last or first).lower())
        periods = []
        for chunk in times_part.split(","):
            a, _, b = chunk.strip().partition("-")
            periods.append((time.fromisoformat(a), time.fromisoformat(b)))
        return cls(frozenset(range(start, end + 1)), tuple(periods), ZoneInfo(tz))

    def is_working_day(self, day: date) -> bool:
        try:
            if chinese_calendar.is_holiday(day) and day.weekday() in self.weekdays:
                return False
            if chinese_calendar.is_workday(day) and day.weekday() not in self.weekdays:
                return True  # 调休: a weekend day made a workday
        except NotImplementedError:
            pass  # year outside the package's table: fall back to the plain week
        return day.weekday() in self.weekdays

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        if not self.is_working_day(local.date()):
            return False
        t = local.time()
        return any(a <= t < b for a, b in self.periods)
