"""The periodic sweep: 督办 of overdue complaints, then a retry of undelivered notices.

A complaint past its acceptance deadline (while awaiting acceptance) or its answer deadline (while in
handling) is marked overdue and escalated: level 1 科室督办 on the first overdue working day, one level
more every ``escalate_every`` working days, up to ``max_supervision_level``.  Each escalation is one
conditional UPDATE and one ``supervise`` history row, so several workers can sweep at once and a complaint
is escalated to a level once.  The sweep then sends the due notices through the :class:`.outbox.Outbox`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import and_, or_, select

from bot.domains.complaints.models import Complaint
from bot.domains.complaints.outbox import Outbox
from bot.domains.complaints.states import AWAITING_ACCEPTANCE, IN_HANDLING, Action, Status
from bot.domains.complaints.store import Change, ComplaintStore

log = logging.getLogger(__name__)

SUPERVISION_LABELS = {1: "科室督办", 2: "中心督办", 3: "分管领导督办"}


@dataclass
class SweepReport:
    escalated: list[str] = field(default_factory=list)
    delivered: int = 0


class Sweeper:
    def __init__(self, store: ComplaintStore, outbox: Outbox) -> None:
        self.store = store
        self.outbox = outbox

    def _level(self, deadline: date, today: date) -> int:
        overdue_days = max(1, self.store.calendar.between(deadline, today))
        level = 1 + (overdue_days - 1) // max(1, self.store.settings.escalate_every)
        return min(self.store.settings.max_supervision_level, level)

    async def _overdue(self, today: date) -> list[Complaint]:
        async with self.store.sessions() as s:
            return list(
                (
                    await s.execute(
                        select(Complaint).where(
                            or_(
                                and_(
                                    Complaint.status.in_([x.value for x in AWAITING_ACCEPTANCE]),
                                    Complaint.accept_due < today,
                                ),
                                and_(
                                    Complaint.status.in_([x.value for x in IN_HANDLING]),
                                    Complaint.due < today,
                                ),
                            )
                        )
                    )
                ).scalars()
            )

    async def _escalate(self, row: Complaint, deadline: date, level: int, now: datetime) -> bool:
        """Raise ``row`` to ``level`` with its history row; False when another sweeper or a staff member
        changed it first."""
        async with self.store.sessions() as s:
            values = {"overdue": True, "supervision_level": level, "escalated_at": now, "updated_at": now}
            if not await self.store.write(s, row, values, Complaint.supervision_level < level):
                return False
            what = "受理" if Status(row.status) in AWAITING_ACCEPTANCE else "答复"
            change = Change(
                note=f"已超过{what}期限（{deadline.isoformat()}），{SUPERVISION_LABELS[level]}",
                department=row.owner_department,
                detail={"level": level, "deadline": deadline.isoformat()},
            )
            s.add(
                self.store.event(
                    row, row.version + 1, now, "system", Action.SUPERVISE, Status(row.status), change
                )
            )
            await s.commit()
        return True

    async def sweep(self, now: datetime | None = None) -> SweepReport:
        """Mark overdue complaints and escalate them (督办, levels 1–3 as the overdue working days grow), then
        retry undelivered notices.  Safe with several workers: each escalation is one conditional UPDATE."""
        now = (now or self.store.now()).astimezone(UTC)
        today = self.store.today(now)
        report = SweepReport()
        for row in await self._overdue(today):
            deadline = row.accept_due if Status(row.status) in AWAITING_ACCEPTANCE else row.due
            assert deadline is not None
            level = self._level(deadline, today)
            if row.overdue and row.supervision_level >= level:
                continue
            if not await self._escalate(row, deadline, level, now):
                continue
            report.escalated.append(row.number)
            log.warning("complaint %s overdue: %s", row.number, SUPERVISION_LABELS[level])
        report.delivered = await self.outbox.deliver_pending(now)
        return report
