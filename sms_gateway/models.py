"""SMS tables (created by migrations/versions/0003_sms.py): the outbound ledger, its delivery events and the
opt-out list."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.core.clock import utcnow
from bot.core.db import Base


class Purpose(StrEnum):
    REPLY = "reply"  # answer to an inbound SMS (including help and opt-in confirmations)
    NOTIFICATION = "notification"  # one citizen, triggered by the system (case progress, appointment)
    BROADCAST = "broadcast"  # one recipient of a campaign (``campaign_id``)
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"  # the single message an opted-out number may receive


class LedgerStatus(StrEnum):
    PENDING = "pending"  # written, provider not called yet, or a retry is due at next_attempt_at
    SENDING = "sending"  # claimed; the provider call (or the TwiML answer) is in flight until lease_until
    UNKNOWN = "unknown"  # the outcome is ambiguous (5xx, timeout, crash): reconcile before any resend
    ACCEPTED = "accepted"  # the provider queued it
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # never sent: the recipient has opted out


FINAL_STATUSES = frozenset({LedgerStatus.DELIVERED, LedgerStatus.FAILED, LedgerStatus.SUPPRESSED})


class Via(StrEnum):
    API = "api"  # the provider's send API
    SYNC = "sync"  # the synchronous webhook answer (TwiML <Message>)


class SmsOutbound(Base):
    """One provider message.  Written before the provider is called; its id travels in the status-callback
    URL.  ``dedup_key`` makes writes idempotent (``reply:<provider>:<inbound id>:<part>``,
    ``broadcast:<campaign>:<phone>:<part>``, or a caller's key)."""

    __tablename__ = "sms_outbound"
    __table_args__ = (
        Index("ix_sms_outbound_due", "status", "next_attempt_at"),
        Index("ix_sms_outbound_campaign", "campaign_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(20), index=True)
    body: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(24))
    campaign_id: Mapped[str | None] = mapped_column(String(64))
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    reply_to: Mapped[str | None] = mapped_column(String(64))  # the inbound message id a reply answers
    part: Mapped[int] = mapped_column(Integer, default=1)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    via: Mapped[str] = mapped_column(String(8), default=Via.API)
    status: Mapped[str] = mapped_column(String(16))
    provider_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    provider_status: Mapped[str | None] = mapped_column(String(24))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    transient_retries: Mapped[int] = mapped_column(Integer, default=0)
    throttle_retries: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SmsDeliveryEvent(Base):
    """Every status report and send receipt, once: (ledger row, attempt, provider status) is unique, so a
    repeated callback is recognised and ignored."""

    __tablename__ = "sms_delivery_events"
    __table_args__ = (UniqueConstraint("ledger_id", "attempt", "provider_status", name="uq_sms_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ledger_id: Mapped[str] = mapped_column(ForeignKey("sms_outbound.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    provider_status: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # callback | receipt | lookup
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SmsOptOut(Base):
    """A number's opt-out state.  ``confirmation_ledger_id`` is set once the single opt-out confirmation has
    been written for the current opt-out (cleared on opt-in)."""

    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))  # keyword | provider | staff
    keyword: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    confirmation_ledger_id: Mapped[str | None] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
