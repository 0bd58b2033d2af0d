"""Recovery: the background sweep that sends what is due and settles rows whose outcome is not known.

* A row still ``pending`` after a crash was certainly never sent (the claim is committed before the provider
  is called): the sweep sends it once it is due, like a delayed retry.
* A ``sending`` row whose lease expired (a crash mid-call; a TwiML answer not confirmed within
  ``SYNC_LEASE``) may have been sent: it becomes ``unknown``, like an ambiguous answer (5xx, timeout).
* An ``unknown`` row is never resent blind: after ``SMS_RECONCILE_DELAY`` the message is looked up at the
  provider (same number, exact body, created at most ``LOOKUP_SLACK`` before the row, not a provider id the
  ledger already knows).  Found: adopted (``accepted``, then the status found).  Not found: ``pending``
  again and resent, or ``failed`` after ``max_attempts``.  Lookup failed: looked up again later.
* Every step claims its row with a conditional UPDATE first, so the sweep is safe in every worker.
* A row the provider accepted whose delivery report has not come after ``SMS_REPORT_WAIT`` (a push lost,
  our endpoint down longer than the provider retries) is looked up at the provider (Aliyun's
  ``QuerySendDetails``); a final status found (delivered, failed) is applied like a report.  Each such row
  is looked at once per ``SMS_REPORT_WAIT``, for at most ``REPORT_HORIZON`` after it was accepted.
* Pending *broadcast* rows are left to the broadcast workers (``sms_gateway.broadcast.engine``): they hold
  them while the campaign is paused or outside its sending window and count them against the bulk rate
  limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import as_utc
from sms_gateway.config import SmsSettings
from sms_gateway.ledger import Ledger, LedgerEntry, log, log_attempt
from sms_gateway.models import LedgerStatus, Purpose, SmsDeliveryEvent, SmsOutbound
from sms_gateway.provider import DeliveryState, SendError, SendReceipt, SmsProvider
from sms_gateway.sending import Sender
from sms_gateway.status import StatusUpdates

S = LedgerStatus
LOOKUP_SLACK = timedelta(minutes=10)  # clock skew allowance when looking a message up
REPORT_HORIZON = timedelta(days=3)  # no report after this long: the provider will not know more either
_FINAL = (DeliveryState.DELIVERED, DeliveryState.FAILED)


class Recovery:
    def __init__(
        self,
        ledger: Ledger,
        settings: SmsSettings,
        provider: SmsProvider,
        status: StatusUpdates,
        sender: Sender,
    ) -> None:
        self._ledger = ledger
        self._s = settings
        self._provider = provider
        self._status = status
        self._sender = sender
        self._worker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------------------ reconcile

    async def reconcile(self, ledger_id: str) -> LedgerEntry | None:
        """Settle an ``unknown`` row: adopt the provider's message if it exists, else resend it."""
        claimed = await self._claim_unknown(ledger_id)
        if claimed is None:
            return await self._ledger.get(ledger_id)
        entry, created, exclude = claimed
        if entry.provider_sid:  # a status callback for this attempt already told us
            await self._ledger.move(entry.id, entry.attempts, (S.UNKNOWN,), status=S.ACCEPTED)
            return await self._ledger.get(ledger_id)
        try:
            found = await self._provider.find_sent(
                entry.recipient, entry.body, created - LOOKUP_SLACK, exclude
            )
        except SendError as exc:
            await self._ledger.move(
                entry.id,
                entry.attempts,
                (S.UNKNOWN,),
                next_attempt_at=self._ledger.clock()
                + timedelta(seconds=max(self._s.reconcile_delay, 1.0) * 2),
                error_message=f"lookup failed: {exc}",
            )
            log_attempt("sms lookup failed, will retry", entry, entry.attempts, exc.code)
            return await self._ledger.get(ledger_id)
        if found is not None:
            log_attempt("sms reconciled: the provider has it, not resending", entry, entry.attempts, None)
            await self._adopt(entry, found)
            return await self._ledger.get(ledger_id)
        return await self._resend(entry)

    async def _claim_unknown(self, ledger_id: str) -> tuple[LedgerEntry, datetime, set[str]] | None:
        """Hold a due ``unknown`` row for one lease (one worker looks it up), with what the lookup needs:
        the entry, when it was written and the provider ids it must not adopt.  None if it is not due."""
        now = self._ledger.clock()
        async with self._ledger.sessions.begin() as s:
            claimed = await s.execute(
                update(SmsOutbound)
                .where(
                    SmsOutbound.id == ledger_id,
                    SmsOutbound.status == S.UNKNOWN,
                    SmsOutbound.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + self._ledger.lease, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                return None
            row = await s.get(SmsOutbound, ledger_id)
            assert row is not None
            return LedgerEntry.of(row), as_utc(row.created_at) or now, await _known_sids(s, row)

    async def _adopt(self, entry: LedgerEntry, found: SendReceipt) -> None:
        await self._status.apply_receipt(entry, found, source="lookup")
        # A lookup that found the message in a status we already recorded still settles "unknown".
        await self._ledger.move(
            entry.id, entry.attempts, (S.UNKNOWN,), status=S.ACCEPTED, provider_sid=found.provider_sid
        )

    async def _resend(self, entry: LedgerEntry) -> LedgerEntry | None:
        """The provider does not have it: send it again, unless it has had all its attempts."""
        if entry.attempts >= self._s.max_attempts:
            await self._ledger.move(
                entry.id,
                entry.attempts,
                (S.UNKNOWN,),
                status=S.FAILED,
                error_message="not accepted after retries",
            )
            return await self._ledger.get(entry.id)
        log_attempt("sms reconciled: the provider does not have it, resending", entry, entry.attempts, None)
        await self._ledger.move(
            entry.id, entry.attempts, (S.UNKNOWN,), status=S.PENDING, next_attempt_at=self._ledger.clock()
        )
        if entry.purpose == Purpose.BROADCAST:  # resent by a broadcast worker, under its campaign's state
            return await self._ledger.get(entry.id)
        return await self._sender.dispatch(entry.id)

    # ------------------------------------------------------------------------------------------ sweep

    async def run_due(self, limit: int = 100) -> int:
        """One sweep: expired leases become ``unknown``; due ``pending`` rows (not broadcast rows) are sent;
        due ``unknown`` rows are reconciled.  Returns how many rows it took up."""
        now = self._ledger.clock()
        async with self._ledger.sessions.begin() as s:
            await s.execute(
                update(SmsOutbound)
                .where(SmsOutbound.status == S.SENDING, SmsOutbound.lease_until < now)
                .values(status=S.UNKNOWN, next_attempt_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        pending, unknown = await self._due(now, limit)
        for lid in pending:
            await self._sender.dispatch(lid, due_only=True)
        for lid in unknown:
            await self.reconcile(lid)
        checked = await self.check_reports(now, limit)
        return len(pending) + len(unknown) + checked

    async def check_reports(self, now: datetime, limit: int = 100) -> int:
        """Look up accepted rows whose delivery report is overdue; returns how many were looked up."""
        wait = timedelta(seconds=self._s.report_wait)
        async with self._ledger.sessions.begin() as s:
            rows = (
                (
                    await s.execute(
                        select(SmsOutbound)
                        .where(
                            SmsOutbound.status.in_([S.ACCEPTED, S.SENT]),
                            SmsOutbound.provider == self._provider.name,
                            SmsOutbound.updated_at <= now - wait,
                            SmsOutbound.accepted_at >= now - REPORT_HORIZON,
                        )
                        .order_by(SmsOutbound.updated_at)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            entries = [
                (LedgerEntry.of(r), as_utc(r.created_at) or now, await _known_sids(s, r)) for r in rows
            ]
            if rows:  # claimed until the next wait: one worker looks each row up, once per wait
                await s.execute(
                    update(SmsOutbound)
                    .where(
                        SmsOutbound.id.in_([r.id for r in rows]), SmsOutbound.status.in_([S.ACCEPTED, S.SENT])
                    )
                    .values(updated_at=now)
                    .execution_options(synchronize_session=False)
                )
        for entry, created, exclude in entries:
            try:
                found = await self._provider.find_sent(
                    entry.recipient, entry.body, created - LOOKUP_SLACK, exclude
                )
            except SendError as exc:
                log_attempt("sms report lookup failed", entry, entry.attempts, exc.code)
                continue
            if found is not None and found.state in _FINAL:  # the row keeps the provider id it has
                found = replace(
                    found,
                    provider_sid=entry.provider_sid or found.provider_sid,
                    provider_status=found.provider_status or str(found.state),
                )
                await self._status.apply_receipt(entry, found, source="report_lookup")
        return len(entries)

    async def _due(self, now: datetime, limit: int) -> tuple[Sequence[str], Sequence[str]]:
        """The ids of the due ``pending`` rows (broadcast rows excepted) and of the due ``unknown`` rows."""
        async with self._ledger.sessions() as s:
            pending = await s.execute(
                select(SmsOutbound.id)
                .where(
                    SmsOutbound.status == S.PENDING,
                    SmsOutbound.next_attempt_at <= now,
                    SmsOutbound.purpose != Purpose.BROADCAST,
                )
                .order_by(SmsOutbound.next_attempt_at)
                .limit(limit)
            )
            unknown = await s.execute(
                select(SmsOutbound.id)
                .where(SmsOutbound.status == S.UNKNOWN, SmsOutbound.next_attempt_at <= now)
                .order_by(SmsOutbound.next_attempt_at)
                .limit(limit)
            )
            return pending.scalars().all(), unknown.scalars().all()

    def start(self) -> None:
        """Start the background sweep (recovery after a restart, retries, reconciliation)."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._loop(), name="sms-outbox")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("sms outbox sweep failed")
            await asyncio.sleep(self._s.worker_interval)


async def _known_sids(s: AsyncSession, row: SmsOutbound) -> set[str]:
    """Provider ids a lookup for ``row`` must not adopt: other rows' messages to the same number, and what
    earlier attempts of this row were."""
    others = await s.execute(
        select(SmsOutbound.provider_sid).where(
            SmsOutbound.recipient == row.recipient,
            SmsOutbound.id != row.id,
            SmsOutbound.provider_sid.is_not(None),
        )
    )
    earlier = await s.execute(
        select(SmsDeliveryEvent.provider_sid).where(
            SmsDeliveryEvent.ledger_id == row.id, SmsDeliveryEvent.attempt < row.attempts
        )
    )
    return {sid for sid in others.scalars() if sid is not None} | {sid for sid in earlier.scalars() if sid}
