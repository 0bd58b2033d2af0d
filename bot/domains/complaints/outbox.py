"""Delivery of the notices queued in ``complaint_notices`` (the outbox of messages to the citizen).

A change that tells the citizen something writes its notice in the same transaction as the change
(:mod:`.store`); :meth:`Outbox.deliver` sends it right after the commit through the injected
:class:`~bot.domains.complaints.delivery.ReplySender`, and the sweep calls :meth:`Outbox.deliver_pending`
to retry what failed.  A send is claimed first (``pending`` → ``sending`` with a 60-second lease, one
conditional UPDATE), so two workers never send the same notice at once; a worker that dies mid-send leaves
the notice to be picked up when the lease runs out.  Failures back off exponentially (2, 4, 8 … minutes)
until ``notice_max_attempts``; a non-retryable :class:`~bot.domains.complaints.delivery.DeliveryError`
fails the notice at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domains.complaints.config import ComplaintSettings
from bot.domains.complaints.delivery import DeliveryError, Recipient, ReplySender
from bot.domains.complaints.models import Complaint, ComplaintNotice

log = logging.getLogger(__name__)


def _due(now: datetime) -> ColumnElement[bool]:
    """Notices to send at ``now``: pending and due, or stuck in sending past their lease."""
    return or_(
        and_(ComplaintNotice.status == "pending", ComplaintNotice.next_attempt_at <= now),
        and_(ComplaintNotice.status == "sending", ComplaintNotice.lease_until < now),
    )


class Outbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: ReplySender | None,
        settings: ComplaintSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.sender = sender
        self.settings = settings
        self.clock = clock

    async def deliver_pending(self, now: datetime | None = None) -> int:
        """Send every due notice (pending, or stuck in sending past its lease); returns how many were sent."""
        if self.sender is None:
            return 0
        now = (now or self.clock()).astimezone(UTC)
        async with self.sessions() as s:
            ids = list(
                (
                    await s.execute(select(ComplaintNotice.id).where(_due(now)).order_by(ComplaintNotice.id))
                ).scalars()
            )
        sent = 0
        for notice_id in ids:
            sent += await self.deliver(notice_id, now)
        return sent

    async def deliver(self, notice_id: int, now: datetime | None = None) -> bool:
        """Claim the notice and send it; False when there is no sender, it is not due or another worker has
        it, or the send failed (it is then rescheduled or failed for good)."""
        if self.sender is None:
            return False
        now = (now or self.clock()).astimezone(UTC)
        async with self.sessions() as s:
            claimed = cast(
                CursorResult[Any],
                await s.execute(
                    update(ComplaintNotice)
                    .where(ComplaintNotice.id == notice_id, _due(now))
                    .values(
                        status="sending",
                        lease_until=now + timedelta(seconds=60),
                        attempts=ComplaintNotice.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                ),
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
