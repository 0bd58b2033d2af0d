"""The sending window (default 08:00–21:00 Asia/Shanghai): whether ``now`` is inside, and when it opens."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def in_window(now: datetime, start: int, end: int, tz: ZoneInfo) -> bool:
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    return start <= minute < end


def next_window_start(now: datetime, start: int, end: int, tz: ZoneInfo) -> datetime | None:
    """None inside the window; else the local datetime at which it next opens."""
    if in_window(now, start, end, tz):
        return None
    local = now.astimezone(tz)
    opening = datetime.combine(local.date(), time(start // 60, start % 60), tzinfo=tz)
    if local >= opening:
        opening = datetime.combine(local.date() + timedelta(days=1), time(start // 60, start % 60), tzinfo=tz)
    return opening
