"""Tables of the progress feature (created by migrations/versions/0004_case_progress.py).

* ``progress_bindings``: who may see which case without verifying again (an openid after the phone check,
  an SMS number that matched the applicant's phone), and whether they get status notifications;
* ``progress_notifications``: one row per (ticket, status, round, subscriber): the unique key that makes
  every notification happen once, across restarts and workers (``seen`` rows mark a status the subscriber
  already saw in a lookup reply);
* ``progress_feed_cursor``: how far the notifier has read the backend's change feed;
* ``progress_audit``: every lookup (who, when, which ticket, result);
* ``supervision_cases`` (migration 0010): the case register of 电子监察: every case of the backend's change
  feed, with its item, window, status and the days it was first seen, accepted and completed;
* ``supervision_urges`` (migration 0010): 督办单, notes from the center to a department, signed for
  (签收) and answered (反馈) by the department in the console.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.core.clock import utcnow
from bot.core.db import Base, mapped_table


class ProgressBinding(Base):
    __tablename__ = "progress_bindings"
    __table_args__ = (UniqueConstraint("sender_id", "ticket_no", name="uq_progress_binding"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender_id: Mapped[str] = mapped_column(String(80))
    ticket_no: Mapped[str] = mapped_column(String(15), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))  # openid or E.164 phone
    verified_by: Mapped[str] = mapped_column(String(16))  # phone_last4 | phone_full | sms_sender
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    item_code: Mapped[str] = mapped_column(String(32), default="")
    item_name: Mapped[str] = mapped_column(String(200), default="")
    window_phone: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProgressNotification(Base):
    __tablename__ = "progress_notifications"
    __table_args__ = (
        UniqueConstraint("ticket_no", "status", "status_round", "sender_id", name="uq_progress_notification"),
        Index("ix_progress_notifications_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_no: Mapped[str] = mapped_column(String(15))
    status: Mapped[str] = mapped_column(String(16))
    status_round: Mapped[int] = mapped_column(Integer)
    sender_id: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(12))  # seen | sending | retry | sent | failed | skipped
    via: Mapped[str | None] = mapped_column(String(8))  # wechat | sms
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProgressFeedCursor(Base):
    __tablename__ = "progress_feed_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProgressAudit(Base):
    __tablename__ = "progress_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender_id: Mapped[str] = mapped_column(String(80), index=True)
    ticket_no: Mapped[str | None] = mapped_column(String(15), index=True)
    action: Mapped[str] = mapped_column(String(16))  # lookup | verify | list | unsubscribe | resubscribe
    result: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str | None] = mapped_column(String(120))


class SupervisionCase(Base):
    """One case of the approval backend, as its change feed told us (see ``progress/register.py``)."""

    __tablename__ = "supervision_cases"

    ticket_no: Mapped[str] = mapped_column(String(15), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(32), default="")
    item_name: Mapped[str] = mapped_column(String(200), default="")
    window: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16))
    status_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    time_limit_days: Mapped[int | None] = mapped_column(Integer)  # as the backend states it
    promised_on: Mapped[date | None] = mapped_column(Date)  # as the backend states it
    details: Mapped[bool] = mapped_column(Boolean, default=False)  # item and window fetched
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SupervisionUrge(Base):
    """督办单: open → signed (签收) → answered (反馈)."""

    __tablename__ = "supervision_urges"
    __table_args__ = (Index("ix_supervision_urges_department", "department", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(String(100))
    ticket_no: Mapped[str] = mapped_column(String(15), default="")
    note: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | signed | answered
    signed_by: Mapped[str | None] = mapped_column(String(64))
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answer: Mapped[str | None] = mapped_column(String(500))
    answered_by: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


PROGRESS_TABLES = tuple(
    mapped_table(m)
    for m in (
        ProgressBinding,
        ProgressNotification,
        ProgressFeedCursor,
        ProgressAudit,
        SupervisionCase,
        SupervisionUrge,
    )
)
