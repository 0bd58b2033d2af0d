"""What the console's list pages share: dates typed in Beijing time, shown in Beijing time, and paging."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlencode

from bot.core.clock import as_utc

BEIJING = timezone(timedelta(hours=8), "北京时间")
PAGE_SIZE = 50


def shown(moment: datetime | None) -> str:
    """A stored (UTC) moment as Beijing time, to the second."""
    value = as_utc(moment)
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def day_start(raw: str, field: str, errors: dict[str, str], *, end: bool = False) -> datetime | None:
    """``2026-12-06`` → that day's 00:00 in Beijing (the next day's, for the end of a range), or None;
    a bad value puts a message in ``errors[field]``."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        errors[field] = "日期格式应为 年-月-日，如 2026-01-31"
        return None
    if not 2000 <= day.year <= 2100:  # 9999-12-31 plus a day overflows; 0001-01-01 in Beijing is year 0 UTC
        errors[field] = "日期应在 2000 年到 2100 年之间"
        return None
    return datetime.combine(day + timedelta(days=1 if end else 0), time(), BEIJING)


def page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or "1"), 100_000))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Pager:
    page: int
    has_next: bool
    query: dict[str, str]  # the filters, to keep in the links

    def link(self, page: int) -> str:
        return "?" + urlencode({**{k: v for k, v in self.query.items() if v}, "page": str(page)})

    @property
    def prev_link(self) -> str:
        return self.link(self.page - 1) if self.page > 1 else ""

    @property
    def next_link(self) -> str:
        return self.link(self.page + 1) if self.has_next else ""
