"""Filing a complaint: :class:`NewComplaint` in, a registered complaint with its number and a receipt out.

A complaint is filed exactly once per idempotency key (the WeChat MsgId, the conversational form's id, the
Open311 client's ``Idempotency-Key``, the staff form's id): a repeat, even a concurrent one, returns the
first complaint.  The number is random (:mod:`.numbers`); a clash with an existing number is retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.core.masking import mask_sender
from bot.core.phone import contact_phone
from bot.domains.complaints import numbers
from bot.domains.complaints.categories import BY_CODE
from bot.domains.complaints.classify import classify
from bot.domains.complaints.errors import MAX_DESCRIPTION, InvalidInputError, required
from bot.domains.complaints.merging import respondent_key
from bot.domains.complaints.models import Complaint
from bot.domains.complaints.states import KIND_LABELS, Action, Kind, Status
from bot.domains.complaints.store import Change, ComplaintStore, cn_date, stored_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewComplaint:
    channel: str
    sender_id: str
    description: str
    kind: Kind | None = None  # None: from the category, or classified from the description
    category: str | None = None  # None: classified from the description
    phone: str | None = None
    confidential: bool = False
    respondent: str | None = None
    occurred: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class CreateResult:
    complaint: Complaint
    created: bool
    receipt: str


@dataclass(frozen=True)
class _Checked:
    description: str
    channel: str
    kind: Kind
    category: str
    phone: str | None
    sender_id: str


def kind_and_category(new: NewComplaint, description: str | None = None) -> tuple[Kind, str]:
    """What the citizen or clerk chose; what they left open is classified from the description."""
    given = Kind(new.kind) if new.kind else None
    if new.category:
        if new.category not in BY_CODE:
            raise InvalidInputError(f"未知的投诉类别：{new.category}。")
        return given or BY_CODE[new.category].kind, new.category
    if given in (Kind.SUGGESTION, Kind.HELP):
        return given, given.value
    guess = classify(new.description if description is None else description)
    return given or guess.kind, guess.category


def _check(new: NewComplaint) -> _Checked:
    """The fields of ``new`` as they are stored; :class:`InvalidInputError` when one is not acceptable."""
    description = required(new.description, "投诉内容", MAX_DESCRIPTION)
    channel = required(new.channel, "渠道", 16)
    kind, category = kind_and_category(new, description)
    phone = None
    if new.phone:
        phone = contact_phone(new.phone)
        if phone is None:
            raise InvalidInputError("联系电话格式不正确，请填写手机号或带区号的固定电话。")
    sender_id = required(new.sender_id, "来源账号", 80)
    return _Checked(description, channel, kind, category, phone, sender_id)


def _row(
    new: NewComplaint, checked: _Checked, number: str, key: str | None, now: datetime, accept_due: date
) -> Complaint:
    """The new complaint's row, registered at ``now``."""
    return Complaint(
        number=number,
        idempotency_key=key or None,
        channel=checked.channel,
        sender_id=checked.sender_id,
        kind=checked.kind.value,
        category=checked.category,
        phone=checked.phone,
        confidential=new.confidential,
        respondent=(new.respondent or "").strip()[:200] or None,
        respondent_key=(respondent_key(new.respondent) or "")[:200] or None,
        description=checked.description,
        occurred=(new.occurred or "").strip()[:64] or None,
        location=(new.location or "").strip()[:200] or None,
        received_at=now,
        status=Status.REGISTERED.value,
        accept_due=accept_due,
        extension_days=0,
        bad_review=False,
        reopen_count=0,
        overdue=False,
        supervision_level=0,
        version=1,
        created_at=now,
        updated_at=now,
    )


class Intake:
    def __init__(self, store: ComplaintStore) -> None:
        self.store = store

    def receipt(self, row: Complaint) -> str:
        """What the citizen is told on filing: the number, both deadlines and how to ask about it."""
        kind = KIND_LABELS[Kind(row.kind)]
        days = self.store.answer_days(Kind(row.kind))
        where = "微信" if row.sender_id.startswith("wx:") else "号码"
        return (
            f"您的{kind}已登记，编号：{row.number}。\n"
            f"我们将在{self.store.settings.accept_days}个工作日内（{cn_date(row.accept_due)}前）决定是否受理，"
            f"受理后{days}个工作日内答复您。\n"
            f"查询进度请发送“查询投诉 {row.number}”（仅限本{where}查询）。"
        )

    async def _by_key(self, key: str) -> Complaint | None:
        async with self.store.sessions() as s:
            return (
                await s.execute(select(Complaint).where(Complaint.idempotency_key == key))
            ).scalar_one_or_none()

    async def create(
        self, new: NewComplaint, *, idempotency_key: str | None, actor: str | None = None
    ) -> CreateResult:
        """File a complaint exactly once per ``idempotency_key`` (e.g. the WeChat MsgId or the form's id):
        a repeated call, even a concurrent one, returns the first complaint with ``created=False``."""
        key = stored_key(idempotency_key)
        if key:
            existing = await self._by_key(key)
            if existing is not None:
                return CreateResult(existing, False, self.receipt(existing))
        checked = _check(new)
        now = self.store.now()
        accept_due = self.store.calendar.add(self.store.today(now), self.store.settings.accept_days)
        for _ in range(5):
            number = numbers.new_number()
            async with self.store.sessions() as s:
                row = _row(new, checked, number, key, now, accept_due)
                try:
                    s.add(row)
                    await s.flush()
                    change = Change(
                        detail={
                            "channel": new.channel,
                            "kind": checked.kind.value,
                            "category": checked.category,
                        }
                    )
                    event = self.store.event(
                        row, 1, now, actor or "citizen", Action.CREATE, Status.REGISTERED, change
                    )
                    event.from_status = None
                    s.add(event)
                    await s.commit()
                except IntegrityError:
                    await s.rollback()
                else:
                    log.info(
                        "complaint %s filed via %s by %s", number, new.channel, mask_sender(checked.sender_id)
                    )
                    return CreateResult(row, True, self.receipt(row))
            if key:
                existing = await self._by_key(key)
                if existing is not None:
                    return CreateResult(existing, False, self.receipt(existing))
        raise RuntimeError("could not allocate a complaint number")
