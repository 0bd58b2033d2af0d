"""The complaint service: the only code that writes complaints.

Every change is one conditional UPDATE (``WHERE id = … AND version = …``) plus one history row with
``seq`` = the new version, in one transaction: two staff members, two gateway workers or two sweepers
can never both apply a change read from the same version, and the history has exactly one row per change.
Messages to the citizen are written to ``complaint_notices`` in the same transaction and delivered after
the commit through the injected :class:`~bot.domains.complaints.delivery.ReplySender`; the sweep retries
failures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import as_utc, utcnow
from bot.core.masking import mask_phone, mask_sender
from bot.core.phone import contact_phone
from bot.core.workdays import WorkCalendar
from bot.domains.complaints import numbers
from bot.domains.complaints.categories import BY_CODE
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.complaints.delivery import DeliveryError, Recipient, ReplySender
from bot.domains.complaints.models import Complaint, ComplaintEvent, ComplaintNotice
from bot.domains.complaints.states import (
    ACTION_LABELS,
    AWAITING_ACCEPTANCE,
    BAD_RATINGS,
    FINAL,
    IN_HANDLING,
    KIND_LABELS,
    RATING_LABELS,
    STATUS_LABELS,
    Action,
    Kind,
    Status,
    target,
)

log = logging.getLogger(__name__)

MAX_DESCRIPTION = 4000
MAX_TEXT = 1000
SUPERVISION_LABELS = {1: "科室督办", 2: "中心督办", 3: "分管领导督办"}
CLOSE_RESULTS = {"resolved": "已解决", "explained": "已解释说明", "unresolved": "未解决"}
UNKNOWN_OR_NOT_YOURS = "未查到该编号的投诉。请核对编号；投诉只能用提交时的微信或手机号查询。"
ASK_FOR_NUMBER = "请发送投诉编号，例如：查询投诉 TS2345678ABC。"
RATING_PROMPT = "请对办理结果评价，回复数字：5非常满意 4满意 3基本满意 2不满意 1非常不满意。"


class ComplaintError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(ComplaintError):
    pass


class NotFoundError(ComplaintError):
    status = 404
    code = "not_found"

    def __init__(self, number: str) -> None:
        super().__init__(f"未找到投诉编号 {number}。")


class IllegalTransitionError(ComplaintError):
    status = 409
    code = "illegal_transition"

    def __init__(self, action: Action, current: Status) -> None:
        super().__init__(f"当前状态为「{STATUS_LABELS[current]}」，不能执行「{ACTION_LABELS[action]}」。")
        self.action = action
        self.current = current


class ConflictError(ComplaintError):
    status = 409
    code = "conflict"

    def __init__(self) -> None:
        super().__init__("该投诉刚被他人修改，请刷新后重试。")


@dataclass(frozen=True)
class NewComplaint:
    channel: str
    sender_id: str
    description: str
    kind: Kind = Kind.COMPLAINT
    category: str | None = None
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
class RateResult:
    ok: bool
    text: str
    reopened: bool = False


@dataclass
class SweepReport:
    escalated: list[str] = field(default_factory=list)
    delivered: int = 0


@dataclass
class _Change:
    values: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    department: str | None = None
    detail: dict[str, Any] | None = None
    notice: str | None = None
    notice_purpose: str | None = None


_CN_DIGITS = str.maketrans("〇一二两三四五六七八九", "01223456789")


def respondent_key(respondent: str | None) -> str | None:
    """``"3号窗口"``, ``"三 号窗口"`` and ``"３号窗口 "`` compare equal."""
    if not respondent:
        return None
    text = unicodedata.normalize("NFKC", respondent).lower().translate(_CN_DIGITS)
    text = re.sub(r"[\s\W_]+", "", text)
    return text or None


def _bigrams(text: str) -> set[str]:
    t = re.sub(r"[\s\W_]+", "", unicodedata.normalize("NFKC", text))
    return {t[i : i + 2] for i in range(len(t) - 1)} or {t}


def similarity(a: str, b: str) -> float:
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / len(x | y) if x | y else 0.0


_RATING_WORDS = sorted(((label, score) for score, label in RATING_LABELS.items()), key=lambda p: -len(p[0]))


def parse_rating(text: str) -> int | None:
    """``"5"``, ``"５分"``, ``"非常满意"`` → 5; ``"不满意"`` → 2; anything else → ``None``."""
    t = re.sub(r"[\s。！!.,，]+", "", unicodedata.normalize("NFKC", text or ""))
    match = re.fullmatch(r"([1-5])分?", t)
    if match:
        return int(match.group(1))
    for label, score in _RATING_WORDS:
        if t == label:
            return score
    return None


def confirmation_text(new: NewComplaint) -> str:
    """The read-back before submitting (the phone masked)."""
    lines = [f"请确认您的{KIND_LABELS[Kind(new.kind)]}：", f"内容：{new.description.strip()}"]
    if new.respondent:
        lines.append(f"涉及窗口/部门/人员：{new.respondent.strip()}")
    if new.occurred:
        lines.append(f"发生时间：{new.occurred.strip()}")
    if new.phone:
        lines.append(f"联系电话：{mask_phone(new.phone)}")
    lines.append(f"是否保密：{'是' if new.confidential else '否'}")
    lines.append("回复“确认”提交，回复“取消”放弃。")
    return "\n".join(lines)


def _required(value: str | None, what: str, limit: int = MAX_TEXT) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInputError(f"请填写{what}。")
    if len(text) > limit:
        raise InvalidInputError(f"{what}不能超过{limit}字。")
    return text


def _key(value: str | None) -> str | None:
    """Idempotency keys longer than the column are hashed (WeChat MsgIds and form ids are short)."""
    if not value:
        return None
    if len(value) <= 128:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _cn_date(day: date) -> str:
    return f"{day.month}月{day.day}日"


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
        self.sessions = sessions
        self.settings = settings or ComplaintSettings()
        self.calendar = calendar or WorkCalendar()
        self.sender = sender
        self.clock = clock

    # ------------------------------------------------------------------------------------------ helpers

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def today(self, now: datetime | None = None) -> date:
        return self.calendar.local_date(now or self._now())

    def answer_days(self, kind: Kind) -> int:
        return self.settings.answer_days.get(kind, 5)

    @staticmethod
    async def _load(s: AsyncSession, number: str) -> Complaint:
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
            row = await self._load(s, number)
            result = await s.execute(
                select(ComplaintEvent)
                .where(ComplaintEvent.complaint_id == row.id)
                .order_by(ComplaintEvent.seq)
            )
            return list(result.scalars())

    async def notices(self, number: str) -> list[ComplaintNotice]:
        async with self.sessions() as s:
            row = await self._load(s, number)
            result = await s.execute(
                select(ComplaintNotice)
                .where(ComplaintNotice.complaint_id == row.id)
                .order_by(ComplaintNotice.id)
            )
            return list(result.scalars())

    @staticmethod
    def _event(
        row: Complaint,
        seq: int,
        now: datetime,
        actor: str,
        action: Action,
        to: Status | None,
        change: _Change,
        key: str | None = None,
    ) -> ComplaintEvent:
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

    async def _apply(
        self,
        number: str,
        action: Action,
        actor: str,
        build: Callable[[Complaint, datetime], _Change],
        *,
        key: str | None = None,
    ) -> Complaint:
        actor = _required(actor, "经办人", 80)
        now = self._now()
        notice_id: int | None = None
        async with self.sessions() as s:
            row = await self._load(s, number)
            current = Status(row.status)
            to = target(action, current)
            if to is None:
                raise IllegalTransitionError(action, current)
            change = build(row, now)
            values = {**change.values, "status": to.value, "updated_at": now, "version": row.version + 1}
            result = await s.execute(
                update(Complaint)
                .where(Complaint.id == row.id, Complaint.version == row.version)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                await s.rollback()
                raise ConflictError()
            s.add(self._event(row, row.version + 1, now, actor, action, to, change, key))
            if change.notice:
                notice = self._notice(row, f"{row.number}:{action.value}:{row.version + 1}", change, now)
                s.add(notice)
                await s.flush()
                notice_id = notice.id
            await s.commit()
            fresh = await self._load(s, number)
        log.info("complaint %s: %s by %s (%s → %s)", number, action.value, actor, current.value, to.value)
        if notice_id is not None:
            await self._deliver(notice_id)
        return fresh

    @staticmethod
    def _notice(row: Complaint, key: str, change: _Change, now: datetime) -> ComplaintNotice:
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

    # ------------------------------------------------------------------------------------------ intake

    def receipt(self, row: Complaint) -> str:
        kind = KIND_LABELS[Kind(row.kind)]
        days = self.answer_days(Kind(row.kind))
        where = "微信" if row.sender_id.startswith("wx:") else "号码"
        return (
            f"您的{kind}已登记，编号：{row.number}。\n"
            f"我们将在{self.settings.accept_days}个工作日内（{_cn_date(row.accept_due)}前）决定是否受理，"
            f"受理后{days}个工作日内答复您。\n"
            f"查询进度请发送“查询投诉 {row.number}”（仅限本{where}查询）。"
        )

    async def _by_key(self, key: str) -> Complaint | None:
        async with self.sessions() as s:
            return (
                await s.execute(select(Complaint).where(Complaint.idempotency_key == key))
            ).scalar_one_or_none()

    async def create(
        self, new: NewComplaint, *, idempotency_key: str | None, actor: str | None = None
    ) -> CreateResult:
        """File a complaint exactly once per ``idempotency_key`` (e.g. the WeChat MsgId or the form's id):
        a repeated call, even a concurrent one, returns the first complaint with ``created=False``."""
        idempotency_key = _key(idempotency_key)
        if idempotency_key:
            existing = await self._by_key(idempotency_key)
            if existing is not None:
                return CreateResult(existing, False, self.receipt(existing))
        description = _required(new.description, "投诉内容", MAX_DESCRIPTION)
        channel = _required(new.channel, "渠道", 16)
        kind = Kind(new.kind)
        category = new.category or {Kind.SUGGESTION: "suggestion", Kind.HELP: "help"}.get(kind, "other")
        if category not in BY_CODE:
            raise InvalidInputError(f"未知的投诉类别：{category}。")
        phone = None
        if new.phone:
            phone = contact_phone(new.phone)
            if phone is None:
                raise InvalidInputError("联系电话格式不正确，请填写手机号或带区号的固定电话。")
        sender_id = _required(new.sender_id, "来源账号", 80)
        now = self._now()
        accept_due = self.calendar.add(self.today(now), self.settings.accept_days)
        for _ in range(5):
            number = numbers.new_number()
            async with self.sessions() as s:
                row = Complaint(
                    number=number,
                    idempotency_key=idempotency_key or None,
                    channel=channel,
                    sender_id=sender_id,
                    kind=kind.value,
                    category=category,
                    phone=phone,
                    confidential=new.confidential,
                    respondent=(new.respondent or "").strip()[:200] or None,
                    respondent_key=(respondent_key(new.respondent) or "")[:200] or None,
                    description=description,
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
                try:
                    s.add(row)
                    await s.flush()
                    change = _Change(
                        detail={"channel": new.channel, "kind": kind.value, "category": category}
                    )
                    event = self._event(
                        row, 1, now, actor or "citizen", Action.CREATE, Status.REGISTERED, change
                    )
                    event.from_status = None
                    s.add(event)
                    await s.commit()
                except IntegrityError:
                    await s.rollback()
                else:
                    log.info("complaint %s filed via %s by %s", number, new.channel, mask_sender(sender_id))
                    return CreateResult(row, True, self.receipt(row))
            if idempotency_key:
                existing = await self._by_key(idempotency_key)
                if existing is not None:
                    return CreateResult(existing, False, self.receipt(existing))
        raise RuntimeError("could not allocate a complaint number")

    async def find_duplicate(
        self,
        sender_id: str,
        respondent: str | None,
        description: str | None = None,
        phone: str | None = None,
    ) -> Complaint | None:
        """An open complaint by the same citizen (account or phone) about the same respondent within
        ``duplicate_hours`` (without a respondent: a similar description), newest first — offer 并单."""
        since = self._now() - timedelta(hours=self.settings.duplicate_hours)
        who = [Complaint.sender_id == sender_id]
        normalized = contact_phone(phone) if phone else None
        if normalized:
            who.append(Complaint.phone == normalized)
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(Complaint)
                    .where(
                        or_(*who),
                        Complaint.received_at >= since,
                        Complaint.status.not_in([st.value for st in FINAL]),
                    )
                    .order_by(Complaint.received_at.desc())
                )
            ).scalars()
            key = (respondent_key(respondent) or "")[:200] or None
            for row in rows:
                if key and row.respondent_key == key:
                    return row
                if not key and not row.respondent_key and description:
                    if similarity(description, row.description) >= 0.5:
                        return row
        return None

    async def add_to_existing(
        self, number: str, sender_id: str, text: str, *, idempotency_key: str | None = None
    ) -> Complaint | None:
        """The citizen accepted 并单: ``text`` is added to their open complaint ``number``.  ``None`` when the
        number is unknown, not theirs, or already finished.  Idempotent per ``idempotency_key``."""
        idempotency_key = _key(idempotency_key)
        if idempotency_key:
            async with self.sessions() as s:
                done = (
                    await s.execute(
                        select(Complaint)
                        .join(ComplaintEvent, ComplaintEvent.complaint_id == Complaint.id)
                        .where(ComplaintEvent.idempotency_key == idempotency_key)
                    )
                ).scalar_one_or_none()
            if done is not None:
                return done if done.sender_id == sender_id else None
        row = await self.get(number)
        if row is None or row.sender_id != sender_id or target(Action.SUPPLEMENT, Status(row.status)) is None:
            return None
        body = _required(text, "补充内容", MAX_DESCRIPTION)
        for attempt in range(3):
            try:
                return await self._apply(
                    number, Action.SUPPLEMENT, "citizen", lambda r, n: _Change(note=body), key=idempotency_key
                )
            except IntegrityError:  # the same idempotency key, applied concurrently
                return await self.get(number)
            except ConflictError:  # staff changed it at the same moment: apply on the new version
                if attempt == 2:
                    raise
            except IllegalTransitionError:
                return None
        return None

    # ------------------------------------------------------------------------------------------ staff

    async def accept(self, number: str, actor: str, note: str | None = None) -> Complaint:
        def build(row: Complaint, now: datetime) -> _Change:
            due = self.calendar.add(self.today(now), self.answer_days(Kind(row.kind)))
            return _Change(
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

        return await self._apply(number, Action.ACCEPT, actor, build)

    async def reject(self, number: str, actor: str, reason: str) -> Complaint:
        reason = _required(reason, "不予受理的理由和告知途径")

        def build(row: Complaint, now: datetime) -> _Change:
            return _Change(
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

        return await self._apply(number, Action.REJECT, actor, build)

    async def merge(self, number: str, into: str, actor: str) -> Complaint:
        """Staff 并单: ``number`` is closed as merged into the open complaint ``into``."""
        actor = _required(actor, "经办人", 80)
        if number == into:
            raise InvalidInputError("不能把投诉合并到它自己。")
        now = self._now()
        async with self.sessions() as s:
            row = await self._load(s, number)
            dest = await self._load(s, into)
            current = Status(row.status)
            if target(Action.MERGE, current) is None:
                raise IllegalTransitionError(Action.MERGE, current)
            if Status(dest.status) in FINAL:
                raise InvalidInputError(f"目标投诉 {into} 已结束，不能并入。")
            for r, values in (
                (
                    row,
                    {
                        "status": Status.MERGED.value,
                        "merged_into_id": dest.id,
                        "closed_at": now,
                        "overdue": False,
                        "status_note": f"已并入 {into} 一并办理",
                    },
                ),
                (dest, {}),
            ):
                result = await s.execute(
                    update(Complaint)
                    .where(Complaint.id == r.id, Complaint.version == r.version)
                    .values(**values, updated_at=now, version=r.version + 1)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:
                    await s.rollback()
                    raise ConflictError()
            s.add(
                self._event(
                    row,
                    row.version + 1,
                    now,
                    actor,
                    Action.MERGE,
                    Status.MERGED,
                    _Change(note=f"并入 {into}", detail={"into": into}),
                )
            )
            s.add(
                self._event(
                    dest,
                    dest.version + 1,
                    now,
                    actor,
                    Action.SUPPLEMENT,
                    None,
                    _Change(note=f"并入 {number}：{row.description}", detail={"merged": number}),
                )
            )
            await s.commit()
            return await self._load(s, number)

    async def dispatch(self, number: str, actor: str, department: str, note: str | None = None) -> Complaint:
        department = _required(department, "承办部门", 100)

        def build(row: Complaint, now: datetime) -> _Change:
            redispatch = row.status == Status.RETURNED.value
            return _Change(
                values={"owner_department": department, "status_note": f"已派至{department}"},
                note=note,
                department=department,
                detail={"redispatch": redispatch, "previous": row.owner_department},
            )

        return await self._apply(number, Action.DISPATCH, actor, build)

    async def return_(self, number: str, actor: str, reason: str) -> Complaint:
        reason = _required(reason, "退单理由")

        def build(row: Complaint, now: datetime) -> _Change:
            return _Change(
                values={"status_note": f"{row.owner_department or ''}退单：{reason}"},
                note=reason,
                department=row.owner_department,
            )

        return await self._apply(number, Action.RETURN, actor, build)

    async def start(self, number: str, actor: str, note: str | None = None) -> Complaint:
        return await self._apply(
            number,
            Action.START,
            actor,
            lambda row, now: _Change(
                values={"status_note": "办理中"}, note=note, department=row.owner_department
            ),
        )

    async def extend(self, number: str, actor: str, days: int, reason: str, approver: str) -> Complaint:
        reason = _required(reason, "延期理由")
        approver = _required(approver, "审批人", 80)
        if days < 1:
            raise InvalidInputError("延期天数须为正整数。")

        def build(row: Complaint, now: datetime) -> _Change:
            total = row.extension_days + days
            if total > self.settings.max_extension_days:
                left = self.settings.max_extension_days - row.extension_days
                raise InvalidInputError(
                    f"延期累计不能超过{self.settings.max_extension_days}个工作日，本投诉还可延期{left}个工作日。"
                )
            assert row.due is not None
            due = self.calendar.add(row.due, days)
            return _Change(
                values={"due": due, "extension_days": total, "overdue": False, "supervision_level": 0},
                note=reason,
                detail={
                    "days": days,
                    "approver": approver,
                    "old_due": row.due.isoformat(),
                    "new_due": due.isoformat(),
                },
                notice=f"您的投诉（{row.number}）需要延期办理，预计于{_cn_date(due)}前答复您。原因：{reason}",
                notice_purpose="extend",
            )

        return await self._apply(number, Action.EXTEND, actor, build)

    async def reply(self, number: str, actor: str, text: str) -> Complaint:
        """Record the answer and push it to the citizen on the complaint's channel."""
        text = _required(text, "答复内容", 600)

        def build(row: Complaint, now: datetime) -> _Change:
            return _Change(
                values={
                    "reply_text": text,
                    "replied_at": now,
                    "overdue": False,
                    "status_note": "已答复，待评价",
                },
                note=text,
                department=row.owner_department,
                notice=f"您的投诉（{row.number}）已答复：\n{text}\n{RATING_PROMPT}",
                notice_purpose="reply",
            )

        return await self._apply(number, Action.REPLY, actor, build)

    async def callback(self, number: str, actor: str, note: str, rating: int | None = None) -> Complaint:
        """Staff 回访 (telephone callback), optionally recording the rating the citizen gave by phone."""
        note = _required(note, "回访情况")
        if rating is not None and rating not in RATING_LABELS:
            raise InvalidInputError("评价须为1到5的数字。")

        def build(row: Complaint, now: datetime) -> _Change:
            values: dict[str, Any] = {"callback_note": note, "status_note": "已回访"}
            if rating is not None:
                values.update(rating=rating, rated_at=now, bad_review=rating in BAD_RATINGS)
            return _Change(values=values, note=note, detail={"rating": rating} if rating else None)

        return await self._apply(number, Action.CALLBACK, actor, build)

    async def close(
        self, number: str, actor: str, result: str = "resolved", note: str | None = None
    ) -> Complaint:
        if result not in CLOSE_RESULTS:
            raise InvalidInputError(f"办结结果须为：{'、'.join(CLOSE_RESULTS)}。")
        return await self._apply(
            number,
            Action.CLOSE,
            actor,
            lambda row, now: _Change(
                values={
                    "closed_at": now,
                    "close_result": result,
                    "status_note": f"已办结（{CLOSE_RESULTS[result]}）",
                },
                note=note,
                detail={"result": result},
            ),
        )

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
    ) -> tuple[list[Complaint], int]:
        """Complaints matching the filters (dates are local and inclusive; ``since``/``until`` are instants),
        newest first, and the total count."""
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
        tz = self.calendar.tz
        if received_from:
            start = datetime(received_from.year, received_from.month, received_from.day, tzinfo=tz)
            conds.append(Complaint.received_at >= start.astimezone(UTC))
        if received_to:
            end = datetime(received_to.year, received_to.month, received_to.day, tzinfo=tz) + timedelta(
                days=1
            )
            conds.append(Complaint.received_at < end.astimezone(UTC))
        where = and_(*conds) if conds else and_(True)
        async with self.sessions() as s:
            total = (await s.execute(select(func.count()).select_from(Complaint).where(where))).scalar_one()
            rows = (
                await s.execute(
                    select(Complaint)
                    .where(where)
                    .order_by(Complaint.received_at.desc(), Complaint.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).scalars()
            return list(rows), int(total)

    # ------------------------------------------------------------------------------------------ citizen

    async def _owned(self, number: str, sender_id: str) -> Complaint | None:
        row = await self.get(number)
        if row is None or row.sender_id != sender_id:
            return None
        return row

    async def lookup(self, text: str, sender_id: str) -> str:
        """The reply to "查询投诉 TS…": the same sentence for an unknown number and someone else's."""
        number = numbers.parse(text)
        if number is None:
            return ASK_FOR_NUMBER
        row = await self._owned(number, sender_id)
        log.info("complaint lookup %s by %s: %s", number, mask_sender(sender_id), "ok" if row else "refused")
        if row is None:
            return UNKNOWN_OR_NOT_YOURS
        status = Status(row.status)
        local = as_utc(row.received_at)
        assert local is not None
        lines = [
            f"投诉编号：{row.number}",
            f"类型：{KIND_LABELS[Kind(row.kind)]}",
            f"登记时间：{local.astimezone(self.calendar.tz):%Y-%m-%d %H:%M}",
            f"当前状态：{STATUS_LABELS[status]}",
        ]
        if status in AWAITING_ACCEPTANCE:
            lines.append(f"受理期限：{_cn_date(row.accept_due)}前")
        elif status in IN_HANDLING and row.due:
            lines.append(f"预计答复：{_cn_date(row.due)}前")
        elif status == Status.REJECTED and row.decision_reason:
            lines.append(f"说明：{row.decision_reason}")
        elif status == Status.MERGED:
            lines.append("说明：已与您的其他同类投诉合并办理。")
        if row.reply_text and status in (Status.REPLIED, Status.CALLED_BACK, Status.CLOSED):
            lines.append(f"答复：{row.reply_text}")
        if status == Status.REPLIED:
            lines.append(RATING_PROMPT)
        return "\n".join(lines)

    async def awaiting_rating(self, sender_id: str) -> Complaint | None:
        """The citizen's latest answered, not yet rated complaint (so a bare "1"–"5" can be a rating)."""
        async with self.sessions() as s:
            return (
                await s.execute(
                    select(Complaint)
                    .where(Complaint.sender_id == sender_id, Complaint.status == Status.REPLIED.value)
                    .order_by(Complaint.replied_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()

    async def rate(self, number: str, sender_id: str, score: int, comment: str | None = None) -> RateResult:
        """好差评: 1–5 from the citizen who filed it.  1–2 (差评) reopens the complaint for rectification with
        a deadline (once; a later 差评 is recorded for 申诉复核 and callback)."""
        row = await self._owned(number, sender_id)
        if row is None:
            return RateResult(False, UNKNOWN_OR_NOT_YOURS)
        if score not in RATING_LABELS:
            return RateResult(False, RATING_PROMPT)
        if Status(row.status) != Status.REPLIED:
            return RateResult(False, f"投诉 {number} 目前不在评价阶段，感谢您的关注。")
        comment = (comment or "").strip()[:500] or None
        bad = score in BAD_RATINGS
        reopen = bad and row.reopen_count < self.settings.max_reopens
        label = RATING_LABELS[score]
        detail = {"rating": score, "label": label}
        try:
            if reopen:

                def build(r: Complaint, now: datetime) -> _Change:
                    due = self.calendar.add(self.today(now), self.settings.rectify_days)
                    return _Change(
                        values={
                            "rating": score,
                            "rated_at": now,
                            "rating_comment": comment,
                            "bad_review": True,
                            "reopen_count": r.reopen_count + 1,
                            "due": due,
                            "overdue": False,
                            "supervision_level": 0,
                            "status_note": "差评整改中",
                        },
                        note=comment,
                        department=r.owner_department,
                        detail={**detail, "due": due.isoformat()},
                    )

                fresh = await self._apply(number, Action.REOPEN, "citizen", build)
                assert fresh.due is not None
                return RateResult(
                    True,
                    f"很抱歉让您不满意（{label}）。投诉 {number} 已重新交办整改，"
                    f"将于{_cn_date(fresh.due)}前把整改结果告诉您。",
                    reopened=True,
                )
            await self._apply(
                number,
                Action.RATE,
                "citizen",
                lambda r, now: _Change(
                    values={
                        "rating": score,
                        "rated_at": now,
                        "rating_comment": comment,
                        "bad_review": bad,
                        "status_note": f"已评价：{label}",
                    },
                    note=comment,
                    detail=detail,
                ),
            )
        except (IllegalTransitionError, ConflictError):
            return RateResult(False, f"投诉 {number} 目前不在评价阶段，感谢您的关注。")
        if bad:
            return RateResult(True, f"已记录您的评价（{label}）。工作人员将回访核实，感谢您的监督。")
        return RateResult(True, f"感谢您的评价（{label}）！")

    # ------------------------------------------------------------------------------------------ sweep

    def _level(self, deadline: date, today: date) -> int:
        overdue_days = max(1, self.calendar.between(deadline, today))
        level = 1 + (overdue_days - 1) // max(1, self.settings.escalate_every)
        return min(self.settings.max_supervision_level, level)

    async def sweep(self, now: datetime | None = None) -> SweepReport:
        """Mark overdue complaints and escalate them (督办, levels 1–3 as the overdue working days grow), then
        retry undelivered notices.  Safe with several workers: each escalation is one conditional UPDATE."""
        now = (now or self._now()).astimezone(UTC)
        today = self.today(now)
        report = SweepReport()
        async with self.sessions() as s:
            candidates = list(
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
        for row in candidates:
            deadline = row.accept_due if Status(row.status) in AWAITING_ACCEPTANCE else row.due
            assert deadline is not None
            level = self._level(deadline, today)
            if row.overdue and row.supervision_level >= level:
                continue
            async with self.sessions() as s:
                result = await s.execute(
                    update(Complaint)
                    .where(
                        Complaint.id == row.id,
                        Complaint.version == row.version,
                        Complaint.supervision_level < level,
                    )
                    .values(
                        overdue=True,
                        supervision_level=level,
                        escalated_at=now,
                        updated_at=now,
                        version=row.version + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:
                    await s.rollback()
                    continue
                what = "受理" if Status(row.status) in AWAITING_ACCEPTANCE else "答复"
                change = _Change(
                    note=f"已超过{what}期限（{deadline.isoformat()}），{SUPERVISION_LABELS[level]}",
                    department=row.owner_department,
                    detail={"level": level, "deadline": deadline.isoformat()},
                )
                s.add(
                    self._event(
                        row, row.version + 1, now, "system", Action.SUPERVISE, Status(row.status), change
                    )
                )
                await s.commit()
            report.escalated.append(row.number)
            log.warning("complaint %s overdue: %s", row.number, SUPERVISION_LABELS[level])
        report.delivered = await self.deliver_pending(now)
        return report

    # ------------------------------------------------------------------------------------------ notices

    async def deliver_pending(self, now: datetime | None = None) -> int:
        """Send every due notice (pending, or stuck in sending past its lease); returns how many were sent."""
        if self.sender is None:
            return 0
        now = (now or self._now()).astimezone(UTC)
        async with self.sessions() as s:
            ids = list(
                (
                    await s.execute(
                        select(ComplaintNotice.id)
                        .where(
                            or_(
                                and_(
                                    ComplaintNotice.status == "pending",
                                    ComplaintNotice.next_attempt_at <= now,
                                ),
                                and_(ComplaintNotice.status == "sending", ComplaintNotice.lease_until < now),
                            )
                        )
                        .order_by(ComplaintNotice.id)
                    )
                ).scalars()
            )
        sent = 0
        for notice_id in ids:
            sent += await self._deliver(notice_id, now)
        return sent

    async def _deliver(self, notice_id: int, now: datetime | None = None) -> bool:
        if self.sender is None:
            return False
        now = (now or self._now()).astimezone(UTC)
        async with self.sessions() as s:
            claimed = await s.execute(
                update(ComplaintNotice)
                .where(
                    ComplaintNotice.id == notice_id,
                    or_(
                        and_(ComplaintNotice.status == "pending", ComplaintNotice.next_attempt_at <= now),
                        and_(ComplaintNotice.status == "sending", ComplaintNotice.lease_until < now),
                    ),
                )
                .values(
                    status="sending",
                    lease_until=now + timedelta(seconds=60),
                    attempts=ComplaintNotice.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                await s.rollback()
                return False
            await s.commit()
            notice = (
                await s.execute(
                    select(ComplaintNotice)
                    .where(ComplaintNotice.id == notice_id)
                    .execution_options(populate_existing=True)
                )
            ).scalar_one()
            row = (await s.execute(select(Complaint).where(Complaint.id == notice.complaint_id))).scalar_one()
        recipient = Recipient(row.number, row.channel, row.sender_id, row.phone)
        values: dict[str, Any]
        try:
            via = await self.sender.send(recipient, notice.text, key=notice.key)
        except Exception as exc:
            retryable = exc.retryable if isinstance(exc, DeliveryError) else True
            final = not retryable or notice.attempts >= self.settings.notice_max_attempts
            values = {
                "status": "failed" if final else "pending",
                "error": str(exc)[:255],
                "next_attempt_at": now + timedelta(minutes=2**notice.attempts),
                "lease_until": None,
            }
            log.warning("notice %s for complaint %s not delivered: %s", notice.key, row.number, exc)
        else:
            values = {"status": "sent", "via": via, "sent_at": now, "error": None, "lease_until": None}
        async with self.sessions() as s:
            await s.execute(
                update(ComplaintNotice)
                .where(ComplaintNotice.id == notice_id, ComplaintNotice.status == "sending")
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await s.commit()
        return values["status"] == "sent"
