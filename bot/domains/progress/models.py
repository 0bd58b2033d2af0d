"""Tables of the progress feature (created by migrations/versions/0004_case_progress.py).

* ``progress_bindings``: who may see which case without verifying again (an openid after the phone check,
  an SMS number that matched the applicant's phone), and whether they get status notifications;
* ``progress_notifications``: one row per (ticket, status, round, subscriber): the unique key that makes
  every notification happen once, across restarts and workers (``seen`` rows mark a status the subscriber
  already saw in a lookup reply);
* ``progress_feed_cursor``: how far the notifier has read the backend's change feed;
* ``progress_audit``: every lookup (who, when, which ticket, result).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, UniqueConstraint
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


PROGRESS_TABLES = tuple(
    mapped_table(m) for m in (ProgressBinding, ProgressNotification, ProgressFeedCursor, ProgressAudit)
)
