"""Working-day arithmetic on the Chinese calendar (statutory holidays closed, 调休 weekend workdays open),
shared by complaint deadlines and case-progress promised dates.

The calendar itself is :meth:`bot.core.office_hours.OfficeHours.is_working_day` (the State Council's table
from ``chinese-calendar``); this module only counts.  A limit of N working days starts the day after the
start date, as for 行政许可法 time limits: accepted on a Friday with a 1-working-day limit → due Monday.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.office_hours import OfficeHours

DEFAULT_HOURS = "mon-fri 08:30-12:00,14:30-17:30"
_MAX_SCAN_DAYS = 3660


class WorkCalendar:
    def __init__(self, hours: OfficeHours | None = None) -> None:
        self.hours = hours or OfficeHours.parse(DEFAULT_HOURS)

    @property
    def tz(self) -> ZoneInfo:
        return self.hours.tz

    def is_working_day(self, day: date) -> bool:
        return self.hours.is_working_day(day)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def next_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, else the first working day after it."""
        try:
            for _ in range(_MAX_SCAN_DAYS):
                if self.is_working_day(day):
                    return day
                day += timedelta(days=1)
        except OverflowError:  # past 9999-12-31
            pass
        raise ValueError("no working day within ten years")

    def add(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start``; 0 → ``start`` itself or the next working day."""
        if days < 0:
            raise ValueError("days must not be negative")
        if days == 0:
            return self.next_working_day(start)
        day = start
        counted = 0
        try:
            for _ in range(_MAX_SCAN_DAYS):
                day += timedelta(days=1)
                if self.is_working_day(day):
                    counted += 1
                    if counted == days:
                        return day
        except OverflowError:  # past 9999-12-31 (a backend's date far in the future)
            pass
        raise ValueError("no such working day within ten years")

    def between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end`` <= ``start``)."""
        count = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count

    def end_of_day(self, day: date) -> datetime:
        """The last second of ``day`` in the center's time zone (deadlines are whole days)."""
        return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=self.tz)
