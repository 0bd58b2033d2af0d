"""Broadcast tables (migrations/versions/0006_broadcasts.py): campaigns, their recipients, saved groups;
WeChat campaigns' mass-send jobs (0011) and template notices to citizens bound to a case (0012).

A campaign is channel-neutral (``channel`` is ``sms`` or ``wechat``): recipients carry an ``address`` (an
E.164 number for SMS, an openid for WeChat) and the template variables of their row."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.core.clock import utcnow
from bot.core.db import Base


class CampaignState(StrEnum):
    DRAFT = "草稿"
    PENDING_APPROVAL = "待审核"
    SCHEDULED = "已排期"
    SENDING = "发送中"
    PAUSED = "已暂停"
    COMPLETED = "已完成"
    CANCELLED = "已取消"
    FAILED = "已失败"


FINAL_STATES = frozenset({CampaignState.COMPLETED, CampaignState.CANCELLED, CampaignState.FAILED})


class CampaignPurpose(StrEnum):
    NOTICE = "通知"
    LEGAL = "普法"
    REMINDER = "提醒"


class Channel(StrEnum):
    SMS = "sms"
    WECHAT = "wechat"  # the official account's mass send (群发): to a follower tag or an openid list


class Exclusion(StrEnum):
    INVALID = "invalid"  # not a phone number
    DUPLICATE = "duplicate"  # the same number earlier in the list
    OPTED_OUT = "opted_out"  # on the opt-out list when the list was checked


EXCLUSION_LABELS = {
    Exclusion.INVALID: "号码无效",
    Exclusion.DUPLICATE: "号码重复",
    Exclusion.OPTED_OUT: "已退订",
}


def new_id(prefix: str) -> str:
    """A campaign's (``bc``) or saved group's (``grp``) id: the prefix, today's date, 8 random hex digits."""
    return f"{prefix}-{utcnow():%Y%m%d}-{uuid.uuid4().hex[:8]}"


class BroadcastCampaign(Base):
    __tablename__ = "broadcast_campaigns"
    __table_args__ = (Index("ix_broadcast_campaigns_state", "state"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16), default=Channel.SMS)
    purpose: Mapped[str] = mapped_column(String(16), default=CampaignPurpose.NOTICE)
    template: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(8), default=CampaignState.DRAFT)
    rate: Mapped[float | None] = mapped_column()  # segments per second; None = the configured default
    window_start: Mapped[int] = mapped_column(Integer, default=8 * 60)  # minutes after local midnight
    window_end: Mapped[int] = mapped_column(Integer, default=21 * 60)
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    column_map: Mapped[str] = mapped_column(Text, default="{}")  # JSON: variable -> column header
    group_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of saved groups used
    source_name: Mapped[str | None] = mapped_column(String(255))  # the uploaded file
    created_by: Mapped[str] = mapped_column(String(64))
    created_by_account: Mapped[int | None] = mapped_column(
        Integer
    )  # the staff account (rows before 0008: None)
    submitted_by: Mapped[str | None] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_by_account: Mapped[int | None] = mapped_column(Integer)
    state_reason: Mapped[str | None] = mapped_column(String(255))
    recipients_total: Mapped[int] = mapped_column(Integer, default=0)
    # WeChat campaigns to a follower tag (instead of an openid list): the tag and its size when chosen
    audience_tag: Mapped[int | None] = mapped_column(Integer)
    audience_tag_name: Mapped[str | None] = mapped_column(String(100))
    # WeChat campaigns to citizens bound to a case (template notices): "*" every case, else an item code
    audience_cases: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BroadcastRecipient(Base):
    __tablename__ = "broadcast_recipients"
    __table_args__ = (UniqueConstraint("campaign_id", "seq", name="uq_broadcast_recipient_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("broadcast_campaigns.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)  # 1-based position in the final list
    source: Mapped[str] = mapped_column(String(64))  # "upload:<row>" or "group:<id>"
    raw: Mapped[str] = mapped_column(String(64))  # the number as given
    address: Mapped[str | None] = mapped_column(String(64))  # E.164 (SMS) or openid; None when invalid
    variables: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    excluded: Mapped[str | None] = mapped_column(String(16))  # Exclusion, or None


class BroadcastGroup(Base):
    __tablename__ = "broadcast_groups"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default=Channel.SMS)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BroadcastGroupMember(Base):
    __tablename__ = "broadcast_group_members"
    __table_args__ = (UniqueConstraint("group_id", "address", name="uq_broadcast_group_member"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("broadcast_groups.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(64))
    variables: Mapped[str] = mapped_column(Text, default="{}")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class BroadcastWeChatJob(Base):
    """One mass-send call of a WeChat campaign: a tag, or up to 10,000 openids of its list.  The
    ``client_msg_id`` makes the call idempotent at WeChat (a resubmission within 24 h returns the first
    job's ``msg_id``); the counts come from the MASSSENDJOBFINISH event."""

    __tablename__ = "broadcast_wechat_jobs"
    __table_args__ = (UniqueConstraint("campaign_id", "seq", name="uq_broadcast_wechat_job_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("broadcast_campaigns.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    client_msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    tag_id: Mapped[int | None] = mapped_column(Integer)
    openids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list (empty for a tag)
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending|submitted|finished|failed
    msg_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    filtered: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    status_text: Mapped[str | None] = mapped_column(String(64))  # the event's Status, or the refusal
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NoticeState(StrEnum):
    PENDING = "pending"  # not sent yet (or a transient failure: sent again next round)
    SENDING = "sending"  # claimed by a runner until ``lease_until``
    SENT = "sent"  # WeChat took it (``msg_id``); TEMPLATESENDJOBFINISH sets ``outcome``
    FAILED = "failed"  # WeChat refused it for this follower (``errcode``)
    SKIPPED = "skipped"  # the citizen turned notifications off, or the binding is gone, before the send


class BroadcastWeChatNotice(Base):
    """One template notice of a WeChat campaign to citizens bound to a case: a follower, the case that binds
    them (its ticket and item fill the template) and what WeChat made of it.  ``client_msg_id`` at WeChat is
    ``<campaign>:<seq>``, so a resend after a crash is not delivered twice."""

    __tablename__ = "broadcast_wechat_notices"
    __table_args__ = (
        UniqueConstraint("campaign_id", "seq", name="uq_broadcast_wechat_notice_seq"),
        Index("ix_broadcast_wechat_notices_due", "campaign_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("broadcast_campaigns.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # the recipient's seq in the campaign's list
    openid: Mapped[str] = mapped_column(String(64))
    ticket_no: Mapped[str] = mapped_column(String(15))
    item_name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(12), default=NoticeState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    msg_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    errcode: Mapped[int | None] = mapped_column(Integer)
    status_text: Mapped[str | None] = mapped_column(String(64))  # WeChat's errmsg, or the event's Status
    outcome: Mapped[str | None] = mapped_column(String(16))  # delivered | blocked | failed (the event)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
