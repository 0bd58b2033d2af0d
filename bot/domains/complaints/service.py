"""The complaint service: the one object that handles complaints; the staff transitions and search.

:class:`ComplaintService` is what the gateway, the staff API, Open311 and the CLI hold.  It carries the
staff transitions itself (受理, 不予受理, 派单, 退单, 签收, 延期, 答复, 回访, 办结) and ``search`` for the
staff lists, and delegates the rest to its parts, which share one :class:`~.store.ComplaintStore` (the
reads and the single write path every change goes through, see :mod:`.store`):

* :class:`~.intake.Intake` — ``create`` (exactly once per idempotency key) and the ``receipt``;
* :class:`~.merging.Merger` — ``find_duplicate``, ``add_to_existing`` (并单 by the citizen), ``merge``
  (并单 by staff);
* :class:`~.citizen.CitizenDesk` — ``lookup`` ("查询投诉 TS…"), ``awaiting_rating`` and ``rate`` (好差评);
* :class:`~.sweep.Sweeper` — ``sweep`` (督办), and :class:`~.outbox.Outbox` — ``deliver_pending``.

Transitions that tell the citizen something (不予受理, 延期, 答复) queue a notice in the same transaction
and deliver it after the commit through the injected :class:`~.delivery.ReplySender`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.core.workdays import WorkCalendar
from bot.domains.complaints.citizen import RATING_PROMPT, CitizenDesk, RateResult
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.complaints.delivery import ReplySender
from bot.domains.complaints.errors import ComplaintError, InvalidInputError, required
from bot.domains.complaints.intake import CreateResult, Intake, NewComplaint
from bot.domains.complaints.merging import Merger
from bot.domains.complaints.models import Complaint, ComplaintEvent, ComplaintNotice
from bot.domains.complaints.outbox import Outbox
from bot.domains.complaints.states import (
    AWAITING_ACCEPTANCE,
    BAD_RATINGS,
    IN_HANDLING,
    KIND_LABELS,
    RATING_LABELS,
    Action,
    Kind,
    Status,
)
from bot.domains.complaints.store import Change, ComplaintStore, cn_date
from bot.domains.complaints.sweep import Sweeper, SweepReport

__all__ = ["CLOSE_RESULTS", "ComplaintError", "ComplaintService", "NewComplaint"]

CLOSE_RESULTS = {"resolved": "已解决", "explained": "已解释说明", "unresolved": "未解决"}
ORDERS = ("received", "deadline")


def reply_notice(number: str, text: str) -> str:
    """The message that carries a staff reply to the citizen (the console previews it before sending)."""
    return f"您的投诉（{number}）已答复：\n{text}\n{RATING_PROMPT}"


def _deadline_order() -> tuple[Any, ...]:
    """Open complaints first, the nearest deadline (``accept_due`` while awaiting acceptance, else ``due``)
    first; then the rest."""
    waiting = [s.value for s in AWAITING_ACCEPTANCE]
    deadline = case((Complaint.status.in_(waiting), Complaint.accept_due), else_=Complaint.due)
    open_ = [s.value for s in AWAITING_ACCEPTANCE | IN_HANDLING]
    rank = case((Complaint.status.in_(open_), 0), else_=1)
    return (rank, case((deadline.is_(None), 1), else_=0), deadline, Complaint.received_at, Complaint.id)


class ComplaintService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        settings: ComplaintSettings | None = None,
        calendar: WorkCalendar | None = None,
        sender: ReplySender | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        settings = settings or ComplaintSettings()
        self.outbox = Outbox(sessions, sender, settings, clock)
        self.store = ComplaintStore(
            sessions, settings=settings, calendar=calendar or WorkCalendar(), clock=clock, outbox=self.outbox
        )
        self.intake = Intake(self.store)
        self.merger = Merger(self.store)
        self.citizen = CitizenDesk(self.store)
        self.sweeper = Sweeper(self.store, self.outbox)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.store.sessions

    @property
    def settings(self) -> ComplaintSettings:
        return self.store.settings

    @property
    def calendar(self) -> WorkCalendar:
        return self.store.calendar

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.store.clock

    @property
    def sender(self) -> ReplySender | None:
        return self.outbox.sender

    def today(self, now: datetime | None = None) -> date:
        return self.store.today(now)

    def answer_days(self, kind: Kind) -> int:
        return self.store.answer_days(kind)

    # ------------------------------------------------------------------------------------------ reads

    async def get(self, number: str) -> Complaint | None:
        return await self.store.get(number)

    async def history(self, number: str) -> list[ComplaintEvent]:
        return await self.store.history(number)

    async def notices(self, number: str) -> list[ComplaintNotice]:
        return await self.store.notices(number)

    async def search(
        self,
        *,
        status: Sequence[str] | None = None,
        overdue: bool | None = None,
        department: str | None = None,
        kind: str | None = None,
        received_from: date | None = None,
        received_to: date | None = None,
        numbers_in: Sequence[str] | None = None,
        category: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        order: str = "received",
    ) -> tuple[list[Complaint], int]:
        """Complaints matching the filters (dates are local and inclusive; ``since``/``until`` are instants),
        newest first (``order="deadline"``: open ones by nearest deadline first), and the total count."""
        if order not in ORDERS:
            raise InvalidInputError(f"排序须为：{'、'.join(ORDERS)}。")
        conds: list[Any] = []
        if numbers_in is not None:
            conds.append(Complaint.number.in_(list(numbers_in)))
        if category:
            conds.append(Complaint.category == category)
        if since:
            conds.append(Complaint.received_at >= since.astimezone(UTC))
        if until:
            conds.append(Complaint.received_at <= until.astimezone(UTC))
        if status:
            conds.append(Complaint.status.in_([Status(s).value for s in status]))
        if overdue is not None:
            conds.append(Complaint.overdue.is_(overdue))
        if department:
            conds.append(Complaint.owner_department == department)
        if kind:
            conds.append(Complaint.kind == Kind(kind).value)
        tz = self.store.calendar.tz
        if received_from:
            start = datetime(received_from.year, received_from.month, received_from.day, tzinfo=tz)
            conds.append(Complaint.received_at >= start.astimezone(UTC))
        if received_to:
            end = datetime(received_to.year, received_to.month, received_to.day, tzinfo=tz) + timedelta(
                days=1
            )
            conds.append(Complaint.received_at < end.astimezone(UTC))
        where = and_(*conds) if conds else and_(True)
        async with self.store.sessions() as s:
            total = (await s.execute(select(func.count()).select_from(Complaint).where(where))).scalar_one()
            rows = (
                await s.execute(
                    select(Complaint)
                    .where(where)
                    .order_by(
                        *(
                            _deadline_order()
                            if order == "deadline"
                            else (Complaint.received_at.desc(), Complaint.id.desc())
                        )
                    )
                    .limit(limit)
                    .offset(offset)
                )
            ).scalars()
            return list(rows), int(total)

    # ------------------------------------------------------------------------------------------ parts

    def receipt(self, row: Complaint) -> str:
        return self.intake.receipt(row)

    async def create(
        self, new: NewComplaint, *, idempotency_key: str | None, actor: str | None = None
    ) -> CreateResult:
        return await self.intake.create(new, idempotency_key=idempotency_key, actor=actor)

    async def find_duplicate(
        self, sender_id: str, respondent: str | None, description: str | None = None, phone: str | None = None
    ) -> Complaint | None:
        return await self.merger.find_duplicate(sender_id, respondent, description, phone)

    async def add_to_existing(
        self, number: str, sender_id: str, text: str, *, idempotency_key: str | None = None
    ) -> Complaint | None:
        return await self.merger.add_to_existing(number, sender_id, text, idempotency_key=idempotency_key)

    async def merge(self, number: str, into: str, actor: str) -> Complaint:
        return await self.merger.merge(number, into, actor)

    async def lookup(self, text: str, sender_id: str) -> str:
        return await self.citizen.lookup(text, sender_id)

    async def awaiting_rating(self, sender_id: str) -> Complaint | None:
        return await self.citizen.awaiting_rating(sender_id)

    async def rate(self, number: str, sender_id: str, score: int, comment: str | None = None) -> RateResult:
        return await self.citizen.rate(number, sender_id, score, comment)

    async def sweep(self, now: datetime | None = None) -> SweepReport:
        return await self.sweeper.sweep(now)

    async def deliver_pending(self, now: datetime | None = None) -> int:
        return await self.outbox.deliver_pending(now)

    # ------------------------------------------------------------------------------------------ staff

    async def accept(self, number: str, actor: str, note: str | None = None) -> Complaint:
        def build(row: Complaint, now: datetime) -> Change:
            due = self.store.calendar.add(self.store.today(now), self.store.answer_days(Kind(row.kind)))
            return Change(
                values={
                    "decided_at": now,
                    "decision_reason": note,
                    "due": due,
                    "overdue": False,
                    "supervision_level": 0,
                    "status_note": "已受理",
                },
                note=note,
                detail={"due": due.isoformat()},
            )

        return await self.store.apply(number, Action.ACCEPT, actor, build)

    async def reject(self, number: str, actor: str, reason: str) -> Complaint:
        reason = required(reason, "不予受理的理由和告知途径")

        def build(row: Complaint, now: datetime) -> Change:
            return Change(
                values={
                    "decided_at": now,
                    "decision_reason": reason,
                    "overdue": False,
                    "status_note": reason,
                    "closed_at": now,
                },
                note=reason,
                notice=f"您的{KIND_LABELS[Kind(row.kind)]}（{row.number}）不予受理。{reason}",
                notice_purpose="reject",
            )

        return await self.store.apply(number, Action.REJECT, actor, build)

    async def dispatch(self, number: str, actor: str, department: str, note: str | None = None) -> Complaint:
        department = required(department, "承办部门", 100)

        def build(row: Complaint, now: datetime) -> Change:
            redispatch = row.status == Status.RETURNED.value
            return Change(
                values={"owner_department": department, "status_note": f"已派至{department}"},
                note=note,
                department=department,
                detail={"redispatch": redispatch, "previous": row.owner_department},
            )

        return await self.store.apply(number, Action.DISPATCH, actor, build)

    async def return_(self, number: str, actor: str, reason: str) -> Complaint:
        reason = required(reason, "退单理由")

        def build(row: Complaint, now: datetime) -> Change:
            return Change(
                values={"status_note": f"{row.owner_department or ''}退单：{reason}"},
                note=reason,
                department=row.owner_department,
            )

        return await self.store.apply(number, Action.RETURN, actor, build)

    async def start(self, number: str, actor: str, note: str | None = None) -> Complaint:
        return await self.store.apply(
            number,
            Action.START,
            actor,
            lambda row, now: Change(
                values={"status_note": "办理中"}, note=note, department=row.owner_department
            ),
        )

    async def extend(self, number: str, actor: str, days: int, reason: str, approver: str) -> Complaint:
        reason = required(reason, "延期理由")
        approver = required(approver, "审批人", 80)
        if days < 1:
            raise InvalidInputError("延期天数须为正整数。")
        limit = self.store.settings.max_extension_days

        def build(row: Complaint, now: datetime) -> Change:
            total = row.extension_days + days
            if total > limit:
                left = limit - row.extension_days
                raise InvalidInputError(f"延期累计不能超过{limit}个工作日，本投诉还可延期{left}个工作日。")
            assert row.due is not None
            due = self.store.calendar.add(row.due, days)
            return Change(
                values={"due": due, "extension_days": total, "overdue": False, "supervision_level": 0},
                note=reason,
                detail={
                    "days": days,
                    "approver": approver,
                    "old_due": row.due.isoformat(),
                    "new_due": due.isoformat(),
                },
                notice=f"您的投诉（{row.number}）需要延期办理，预计于{cn_date(due)}前答复您。原因：{reason}",
                notice_purpose="extend",
            )

        return await self.store.apply(number, Action.EXTEND, actor, build)

    async def reply(self, number: str, actor: str, text: str) -> Complaint:
        """Record the answer and push it to the citizen on the complaint's channel."""
        text = required(text, "答复内容", 600)

        def build(row: Complaint, now: datetime) -> Change:
            return Change(
                values={
                    "reply_text": text,
                    "replied_at": now,
                    "overdue": False,
                    "status_note": "已答复，待评价",
                },
                note=text,
                department=row.owner_department,
                notice=reply_notice(row.number, text),
                notice_purpose="reply",
            )

        return await self.store.apply(number, Action.REPLY, actor, build)

    async def callback(self, number: str, actor: str, note: str, rating: int | None = None) -> Complaint:
        """Staff 回访 (telephone callback), optionally recording the rating the citizen gave by phone."""
        note = required(note, "回访情况")
        if rating is not None and rating not in RATING_LABELS:
            raise InvalidInputError("评价须为1到5的数字。")

        def build(row: Complaint, now: datetime) -> Change:
            values: dict[str, Any] = {"callback_note": note, "status_note": "已回访"}
            if rating is not None:
                values.update(rating=rating, rated_at=now, bad_review=rating in BAD_RATINGS)
            return Change(values=values, note=note, detail={"rating": rating} if rating else None)

        return await self.store.apply(number, Action.CALLBACK, actor, build)

    async def close(
        self, number: str, actor: str, result: str = "resolved", note: str | None = None
    ) -> Complaint:
        if result not in CLOSE_RESULTS:
            raise InvalidInputError(f"办结结果须为：{'、'.join(CLOSE_RESULTS)}。")
        return await self.store.apply(
            number,
            Action.CLOSE,
            actor,
            lambda row, now: Change(
                values={
                    "closed_at": now,
                    "close_result": result,
                    "status_note": f"已办结（{CLOSE_RESULTS[result]}）",
                },
                note=note,
                detail={"result": result},
            ),
        )
