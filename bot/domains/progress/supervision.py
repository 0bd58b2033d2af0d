"""电子监察: the cases this system has seen, with promised dates in working days.

We do not store the approval backend's case list: what we have is every case the notifier saw change and
every case a citizen looked up (``progress_notifications``: ticket, status, when first seen; and
``progress_bindings``: the item).  The department, the window and the promised time limit come from the
catalogue (``kb_items``, "N个工作日" / 即办).  The accepted day is when the case was first seen 受理 (else
first seen at all); it is completed when first seen 办结/已取件.  So dates are as precise as the notifier's
polling, and a case nobody subscribed to is not listed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.approval.model import CaseStatus
from bot.core.clock import as_utc
from bot.domains.progress.models import ProgressBinding, ProgressNotification
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
class DepartmentFigures:
    department: str
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
    first = func.min(ProgressNotification.created_at)
    async with sessions() as session:
        tickets = [
            t
            for (t,) in await session.execute(
                select(ProgressNotification.ticket_no)
                .group_by(ProgressNotification.ticket_no)
                .having(first >= since, first < until)
            )
        ]
        if not tickets:
            return []
        rows = (
            await session.execute(
                select(
                    ProgressNotification.ticket_no,
                    ProgressNotification.status,
                    func.min(ProgressNotification.created_at),
                )
                .where(ProgressNotification.ticket_no.in_(tickets))
                .group_by(ProgressNotification.ticket_no, ProgressNotification.status)
            )
        ).all()
        items = dict(
            (
                await session.execute(
                    select(ProgressBinding.ticket_no, func.max(ProgressBinding.item_code))
                    .where(ProgressBinding.ticket_no.in_(tickets))
                    .group_by(ProgressBinding.ticket_no)
                )
            ).all()
        )
        names = dict(
            (
                await session.execute(
                    select(ProgressBinding.ticket_no, func.max(ProgressBinding.item_name))
                    .where(ProgressBinding.ticket_no.in_(tickets))
                    .group_by(ProgressBinding.ticket_no)
                )
            ).all()
        )
        codes = {c for c in items.values() if c}
        catalogue = {k.code: k for k in await session.scalars(select(KbItem).where(KbItem.code.in_(codes)))}
    seen: dict[str, dict[str, date]] = defaultdict(dict)
    latest: dict[str, tuple[datetime, str]] = {}
    for ticket, status, at in rows:
        moment = as_utc(at)
        seen[ticket][status] = calendar.local_date(moment)
        if ticket not in latest or moment >= latest[ticket][0]:
            latest[ticket] = (moment, status)
    out = []
    for ticket in tickets:
        statuses = seen[ticket]
        status = latest[ticket][1]
        code = items.get(ticket) or ""
        item = catalogue.get(code)
        limit = time_limit_days(item.promised_time_limit) if item is not None else None
        first_seen = min(statuses.values())
        accepted = statuses.get(CaseStatus.ACCEPTED.value)
        start = accepted or first_seen
        promised = calendar.add(start, limit) if limit is not None else None
        done = [d for s, d in statuses.items() if s in COMPLETED]
        flag = ""
        if status not in CLOSED and promised is not None:
            if today > promised:
                flag = "overdue"
            elif calendar.between(today, promised) <= 1:
                flag = "warning"
        out.append(
            SupervisedCase(
                ticket_no=ticket,
                item_code=code,
                item_name=(item.name if item is not None else "") or names.get(ticket) or "",
                department=(item.department if item is not None else "") or "（未知部门）",
                window=item.window if item is not None else "",
                status=status,
                status_label=_label(status),
                first_seen=first_seen,
                accepted_on=accepted,
                limit_days=limit,
                promised=promised,
                completed_on=min(done) if done else None,
                flag=flag,
            )
        )
    out.sort(key=lambda c: (c.first_seen, c.ticket_no), reverse=True)
    return out


def by_department(cases: list[SupervisedCase]) -> list[DepartmentFigures]:
    figures: dict[str, DepartmentFigures] = {}
    for c in cases:
        f = figures.setdefault(c.department, DepartmentFigures(c.department))
        f.received += 1
        if c.completed_on is not None:
            f.completed += 1
            f.completed_on_time += 1 if c.on_time else 0
        if c.flag == "overdue":
            f.overdue += 1
        elif c.flag == "warning":
            f.warning += 1
    return sorted(figures.values(), key=lambda f: f.department)
