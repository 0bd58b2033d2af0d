"""What the service's parts share: settings, calendar and clock, the reads by number, and the one write path
every change to a complaint goes through.

Every change is one conditional UPDATE (``WHERE id = … AND version = …``) plus one history row with
``seq`` = the new version, in one transaction: two staff members, two gateway workers or two sweepers
can never both apply a change read from the same version, and the history has exactly one row per change.
Messages to the citizen are written to ``complaint_notices`` in the same transaction and delivered after
the commit by the :class:`~bot.domains.complaints.outbox.Outbox`; the sweep retries failures.

:meth:`ComplaintStore.apply` is that path for a state-machine transition; a change described by a
:class:`Change` (new column values, history note/department/detail, optional notice) is built from the
freshly loaded row by the caller.  Changes that touch more than one row or are not transitions (并单,
督办) use :meth:`ComplaintStore.write` and :meth:`ComplaintStore.event` in their own transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.workdays import WorkCalendar
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.complaints.errors import ConflictError, IllegalTransitionError, NotFoundError, required
from bot.domains.complaints.models import Complaint, ComplaintEvent, ComplaintNotice
from bot.domains.complaints.outbox import Outbox
from bot.domains.complaints.states import Action, Kind, Status, target

log = logging.getLogger(__name__)


@dataclass
class Change:
    """What a change writes besides the new status and version: column ``values``, the history row's
    ``note``, ``department`` and ``detail``, and optionally a ``notice`` to the citizen."""

    values: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    department: str | None = None
    detail: dict[str, Any] | None = None
    notice: str | None = None
    notice_purpose: str | None = None


def cn_date(day: date) -> str:
    return f"{day.month}月{day.day}日"


def stored_key(value: str | None) -> str | None:
    """Idempotency keys longer than the column are hashed (WeChat MsgIds and form ids are short)."""
    if not value:
        return None
    if len(value) <= 128:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


class ComplaintStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        settings: ComplaintSettings,
        calendar: WorkCalendar,
        clock: Callable[[], datetime],
        outbox: Outbox,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.calendar = calendar
        self.clock = clock
        self.outbox = outbox

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def today(self, now: datetime | None = None) -> date:
        return self.calendar.local_date(now or self.now())

    def answer_days(self, kind: Kind) -> int:
        return self.settings.answer_days.get(kind, 5)

    # ------------------------------------------------------------------------------------------ reads

    @staticmethod
    async def load(s: AsyncSession, number: str) -> Complaint:
        row = (
            await s.execute(
                select(Complaint).where(Complaint.number == number).execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(number)
        return row

    async def get(self, number: str) -> Complaint | None:
        async with self.sessions() as s:
            return (await s.execute(select(Complaint).where(Complaint.number == number))).scalar_one_or_none()

    async def history(self, number: str) -> list[ComplaintEvent]:
        async with self.sessions() as s:
            row = await self.load(s, number)
            result = await s.execute(
                select(ComplaintEvent)
                .where(ComplaintEvent.complaint_id == row.id)
                .order_by(ComplaintEvent.seq)
            )
            return list(result.scalars())

    async def notices(self, number: str) -> list[ComplaintNotice]:
        async with self.sessions() as s:
            row = await self.load(s, number)
            result = await s.execute(
                select(ComplaintNotice)
                .where(ComplaintNotice.complaint_id == row.id)
                .order_by(ComplaintNotice.id)
            )
            return list(result.scalars())

    # ------------------------------------------------------------------------------------------ writes

    @staticmethod
    def event(
        row: Complaint,
        seq: int,
        now: datetime,
        actor: str,
        action: Action,
        to: Status | None,
        change: Change,
        key: str | None = None,
    ) -> ComplaintEvent:
        """The history row of a change to ``row`` (as read, before the change)."""
        return ComplaintEvent(
            complaint_id=row.id,
            seq=seq,
            at=now,
            actor=actor,
            action=action.value,
            from_status=row.status,
            to_status=to.value if to else None,
            department=change.department,
            note=change.note,
            detail=json.dumps(change.detail, ensure_ascii=False) if change.detail else None,
            idempotency_key=key,
        )

    @staticmethod
    async def write(
        s: AsyncSession, row: Complaint, values: dict[str, Any], *conditions: ColumnElement[bool]
    ) -> bool:
        """Set ``values`` and the next version on ``row`` if it is still at the version it was read at (and
        ``conditions`` hold); otherwise roll back and return False."""
        result = cast(
            CursorResult[Any],
            await s.execute(
                update(Complaint)
                .where(Complaint.id == row.id, Complaint.version == row.version, *conditions)
                .values(**values, version=row.version + 1)
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            await s.rollback()
            return False
        return True

    async def apply(
        self,
        number: str,
        action: Action,
        actor: str,
        build: Callable[[Complaint, datetime], Change],
        *,
        key: str | None = None,
    ) -> Complaint:
        """Apply ``action`` to the complaint: the change ``build(row, now)`` describes, its history row (with
        the idempotency ``key``) and its notice in one transaction; then deliver the notice."""
        actor = required(actor, "经办人", 80)
        now = self.now()
        notice_id: int | None = None
        async with self.sessions() as s:
            row = await self.load(s, number)
            current = Status(row.status)
            to = target(action, current)
            if to is None:
                raise IllegalTransitionError(action, current)
            change = build(row, now)
            if not await self.write(s, row, {**change.values, "status": to.value, "updated_at": now}):
                raise ConflictError()
            s.add(self.event(row, row.version + 1, now, actor, action, to, change, key))
            if change.notice:
                notice = self._notice(row, f"{row.number}:{action.value}:{row.version + 1}", change, now)
                s.add(notice)
                await s.flush()
                notice_id = notice.id
            await s.commit()
            fresh = await self.load(s, number)
        log.info("complaint %s: %s by %s (%s → %s)", number, action.value, actor, current.value, to.value)
        if notice_id is not None:
            await self.outbox.deliver(notice_id)
        return fresh

    @staticmethod
    def _notice(row: Complaint, key: str, change: Change, now: datetime) -> ComplaintNotice:
        return ComplaintNotice(
            complaint_id=row.id,
            key=key,
            purpose=change.notice_purpose or "notice",
            text=change.notice or "",
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
