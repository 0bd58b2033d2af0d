"""Office hours of the service center, on the Chinese working-day calendar (holidays and 调休 workdays).

The spec is ``"mon-fri 08:30-12:00,14:30-17:30"``: the day range names the regular working days; statutory
holidays are closed and 调休 weekend workdays are open, as published by the State Council
(the ``chinese-calendar`` package keeps that table).

The package covers the years up to its release; the State Council publishes the next year's schedule each
autumn.  Until an updated package is installed, ``CENTER_CALENDAR_FILE`` names a file of lines
``2027-01-01 holiday`` / ``2027-02-07 workday`` that take precedence; a year known to neither falls back to
the plain week, with a warning in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)
_warned_years: set[int] = set()


def load_calendar_overrides(path: str | None) -> dict[date, bool]:
    """``{day: is_working_day}`` from a file of ``YYYY-MM-DD holiday|workday`` lines (# comments)."""
    if not path:
        return {}
    out: dict[date, bool] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        day, _, kind = line.partition(" ")
        kind = kind.strip().lower()
        if kind not in ("holiday", "workday"):
            raise ValueError(f"{path}:{number}: expected 'YYYY-MM-DD holiday|workday', got {raw!r}")
        out[date.fromisoformat(day)] = kind == "workday"
    return out


_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@dataclass(frozen=True)
class OfficeHours:
    weekdays: frozenset[int]
    periods: tuple[tuple[time, time], ...]
    tz: ZoneInfo
    overrides: dict[date, bool] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def parse(cls, spec: str, tz: str = "Asia/Shanghai", calendar_file: str | None = None) -> OfficeHours:
        days_part, _, times_part = spec.strip().partition(" ")
        first, _, last = days_part.partition("-")
        start, end = _DAYS.index(first.lower()), _DAYS.index((last or first).lower())
        periods = []
        for chunk in times_part.split(","):
            a, _, b = chunk.strip().partition("-")
            periods.append((time.fromisoformat(a), time.fromisoformat(b)))
        overrides = load_calendar_overrides(calendar_file)
        return cls(frozenset(range(start, end + 1)), tuple(periods), ZoneInfo(tz), overrides)

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        try:
            if chinese_calendar.is_holiday(day) and day.weekday() in self.weekdays:
                return False
            if chinese_calendar.is_workday(day) and day.weekday() not in self.weekdays:
                return True  # 调休: a weekend day made a workday
        except NotImplementedError:  # a year outside the package's table: fall back to the plain week
            if day.year not in _warned_years:
                _warned_years.add(day.year)
                log.warning(
                    "no holiday table for %s: upgrade chinesecalendar or set CENTER_CALENDAR_FILE", day.year
                )
        return day.weekday() in self.weekdays

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        if not self.is_working_day(local.date()):
            return False
        t = local.time()
        return any(a <= t < b for a, b in self.periods)
