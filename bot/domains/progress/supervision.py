"""电子监察: every case of the approval backend's change feed (the case register, ``register.py``), with
its promised date in working days, 预警 and overdue flags, and on-time rates per department and window.

The department comes from the catalogue (``kb_items``) by the case's item.  The promised date is the
backend's own when it states one; otherwise the time limit (the backend's, else the catalogue's "N个工作日" /
即办) counted in working days from the day the case was accepted (else first seen).  A case is completed on
the day the feed first showed it 办结 or 已取件.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.approval.model import CaseStatus
from bot.core.clock import as_utc
from bot.domains.progress.models import SupervisionCase
from bot.domains.progress.workdays import WorkingDays
from knowledge_base.models import KbItem

_LIMIT = re.compile(r"(\d+)\s*个?\s*工作日")
COMPLETED = frozenset({CaseStatus.COMPLETED.value, CaseStatus.COLLECTED.value})
CLOSED = COMPLETED | {CaseStatus.REJECTED.value, CaseStatus.RETURNED.value}


def time_limit_days(text: str) -> int | None:
    """``"5个工作日"`` → 5, ``"即办"`` → 0, anything else → None."""
    if "即办" in (text or ""):
        return 0
    m = _LIMIT.search(text or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class SupervisedCase:
    ticket_no: str
    item_code: str
    item_name: str
    department: str
    window: str
    status: str
    status_label: str
    first_seen: date
    accepted_on: date | None
    limit_days: int | None
    promised: date | None
    completed_on: date | None
    flag: str  # "overdue" | "warning" | ""

    @property
    def on_time(self) -> bool | None:
        if self.completed_on is None or self.promised is None:
            return None
        return self.completed_on <= self.promised


@dataclass
class Figures:
    name: str  # a department, or a department and window
    received: int = 0
    completed: int = 0
    completed_on_time: int = 0
    overdue: int = 0
    warning: int = 0


def _label(status: str) -> str:
    try:
        return CaseStatus(status).label
    except ValueError:
        return status


async def supervised_cases(
    sessions: async_sessionmaker[AsyncSession],
    calendar: WorkingDays,
    today: date,
    since: datetime,
    until: datetime,
) -> list[SupervisedCase]:
    """Cases first seen in [since, until), newest first, with their department's promised dates."""
    async with sessions() as session:
        rows = list(
            await session.scalars(
                select(SupervisionCase).where(
                    SupervisionCase.first_seen_at >= since, SupervisionCase.first_seen_at < until
                )
            )
        )
        codes = {r.item_code for r in rows if r.item_code}
        catalogue = (
            {k.code: k for k in await session.scalars(select(KbItem).where(KbItem.code.in_(codes)))}
            if codes
            else {}
        )
    out = [_supervised(row, catalogue.get(row.item_code), calendar, today) for row in rows]
    out.sort(key=lambda c: (c.first_seen, c.ticket_no), reverse=True)
    return out


def _supervised(
    row: SupervisionCase, item: KbItem | None, calendar: WorkingDays, today: date
) -> SupervisedCase:
    limit = row.time_limit_days
    if limit is None and item is not None:
        limit = time_limit_days(item.promised_time_limit)
    first_seen = calendar.local_date(as_utc(row.first_seen_at))
    accepted = calendar.local_date(as_utc(row.accepted_at)) if row.accepted_at is not None else None
    promised = row.promised_on
    if promised is None and limit is not None:
        promised = calendar.add(accepted or first_seen, limit)
    flag = ""
    if row.status not in CLOSED and promised is not None:
        if today > promised:
            flag = "overdue"
        elif calendar.between(today, promised) <= 1:
            flag = "warning"
    return SupervisedCase(
        ticket_no=row.ticket_no,
        item_code=row.item_code,
        item_name=row.item_name or (item.name if item is not None else ""),
        department=(item.department if item is not None else "") or "（未知部门）",
        window=row.window or (item.window if item is not None else ""),
        status=row.status,
        status_label=_label(row.status),
        first_seen=first_seen,
        accepted_on=accepted,
        limit_days=limit,
        promised=promised,
        completed_on=calendar.local_date(as_utc(row.completed_at)) if row.completed_at is not None else None,
        flag=flag,
    )


def by_department(cases: list[SupervisedCase]) -> list[Figures]:
    return _figures(cases, lambda c: c.department)


def by_window(cases: list[SupervisedCase]) -> list[Figures]:
    """Per department and window (``"民政局 / 3号窗口"``)."""
    return _figures(cases, lambda c: f"{c.department} / {c.window or '（未知窗口）'}")


def _figures(cases: list[SupervisedCase], key: Callable[[SupervisedCase], str]) -> list[Figures]:
    figures: dict[str, Figures] = {}
    for c in cases:
        f = figures.setdefault(key(c), Figures(key(c)))
        f.received += 1
        if c.completed_on is not None:
            f.completed += 1
            f.completed_on_time += 1 if c.on_time else 0
        if c.flag == "overdue":
            f.overdue += 1
        elif c.flag == "warning":
            f.warning += 1
    return sorted(figures.values(), key=lambda f: f.name)
