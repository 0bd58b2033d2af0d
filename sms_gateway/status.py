"""What the provider says about a message, applied to its ledger row: the answer to each send call (a receipt
or an error), status callbacks, and the results of lookups (``recovery.py``).

Moves (never backwards; each one conditional UPDATE, see ``ledger.py``)::

    sending ──send call answered──▶ accepted ──▶ sent ──▶ delivered    (unknown rows too, once found)
    sending ──flow control (Deferred)──▶ pending until the limit's window has passed (failed at max_attempts)
    sending ──429 / not processed──▶ pending after throttle_backoff · 2^n s (at most MAX_BACKOFF), or
                                     failed after SMS_THROTTLE_MAX_RETRIES or max_attempts
    sending ──rejected──▶ failed (21610: the number is opted out as well)
    sending ──5xx / timeout / anything else──▶ unknown (looked up after SMS_RECONCILE_DELAY)
    in flight ──callback: failed──▶ failed, or pending again after SMS_RETRY_DELAYS[n] when the failure is
                                    transient (30003, 30008), at most len(SMS_RETRY_DELAYS) times

* Every report is recorded once in ``sms_delivery_events`` (unique per row, attempt and provider status):
  a repeated callback is a ``duplicate`` and changes nothing.
* The status-callback URL carries the attempt number: a report of an earlier attempt is ``stale``.
* A report that arrives out of order (``queued`` after ``delivered``) moves nothing but still records which
  provider message the row is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.masking import mask_phone
from bot.core.metrics import Metrics
from sms_gateway.config import SmsSettings
from sms_gateway.ledger import Ledger, LedgerEntry, log, log_attempt, move_in
from sms_gateway.models import LedgerStatus, SmsDeliveryEvent, SmsOutbound
from sms_gateway.optout import OptOutStore
from sms_gateway.provider import (
    Ambiguous,
    Deferred,
    DeliveryState,
    Failure,
    Rejected,
    RetryLater,
    SendError,
    SendReceipt,
    StatusUpdate,
)

S = LedgerStatus
_STATE_STATUS = {
    DeliveryState.ACCEPTED: S.ACCEPTED,
    DeliveryState.SENT: S.SENT,
    DeliveryState.DELIVERED: S.DELIVERED,
}
# Statuses a row may move *from* to reach each progress status (never backwards, never from pending:
# a pending row's previous attempt is over).
_FROM = {
    S.ACCEPTED: (S.SENDING, S.UNKNOWN),
    S.SENT: (S.SENDING, S.UNKNOWN, S.ACCEPTED),
    S.DELIVERED: (S.SENDING, S.UNKNOWN, S.ACCEPTED, S.SENT),
}
_IN_FLIGHT = (S.SENDING, S.UNKNOWN, S.ACCEPTED, S.SENT)
MAX_BACKOFF = 300.0


@dataclass
class _Batch:
    """What one batch of send calls changes: gathered in the transaction, reported after it."""

    receipts: dict[LedgerStatus, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    odd_receipts: list[tuple[LedgerEntry, SendReceipt]] = field(default_factory=list)
    opt_outs: list[tuple[str, int | None]] = field(default_factory=list)
    segments: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add_receipt(self, entry: LedgerEntry, result: SendReceipt, now: datetime) -> None:
        self.outcomes[(entry.purpose, "accepted")] += 1
        self.segments[entry.purpose] += result.segments or entry.segments
        status = _STATE_STATUS.get(result.state) if result.state else None
        if status is None:  # failed at once: the full status logic
            self.odd_receipts.append((entry, result))
            return
        self.receipts.setdefault(status, []).append(
            {
                "b_id": entry.id,
                "b_n": entry.attempts,
                "b_sid": result.provider_sid,
                "b_status": result.provider_status[:24],
            }
        )
        self.events.append(
            {
                "ledger_id": entry.id,
                "attempt": entry.attempts,
                "provider_sid": result.provider_sid,
                "provider_status": result.provider_status[:24],
                "error_code": result.error_code,
                "source": "receipt",
                "received_at": now,
            }
        )


class StatusUpdates:
    def __init__(self, ledger: Ledger, settings: SmsSettings, optouts: OptOutStore, metrics: Metrics) -> None:
        self._ledger = ledger
        self._s = settings
        self._optouts = optouts
        self._metrics = metrics

    # ------------------------------------------------------------------------------------------ send calls

    async def record_sends(
        self, claimed: Sequence[tuple[LedgerEntry, int]], results: Sequence[SendReceipt | BaseException]
    ) -> Counter[str]:
        """Record the provider's answer to the send call of each row the caller claimed (``sending``; with
        their throttle-retry counts), all in one transaction: one UPDATE per status for the receipts.
        Returns the count per outcome: ``accepted``, ``rejected``, ``throttled``, ``ambiguous``."""
        now = self._ledger.clock()
        batch = _Batch()
        async with self._ledger.sessions.begin() as s:
            for (entry, throttle_retries), result in zip(claimed, results, strict=True):
                if isinstance(result, SendReceipt):
                    batch.add_receipt(entry, result, now)
                    continue
                label, values = self.after_error(entry, throttle_retries, result, now)
                batch.outcomes[(entry.purpose, label)] += 1
                if isinstance(result, Rejected) and result.failure is Failure.OPTED_OUT:
                    batch.opt_outs.append((entry.recipient, result.code))
                await move_in(s, entry.id, entry.attempts, (S.SENDING,), now, **values)
            for status, params in batch.receipts.items():
                await _record_receipts(s, status, params, now)
            if batch.events:
                await s.execute(_insert_ignoring_duplicates(s, SmsDeliveryEvent), batch.events)
        for phone, code in batch.opt_outs:
            await self._optouts.opt_out(phone, source="provider", error_code=code)
        for entry, receipt in batch.odd_receipts:
            await self.apply_receipt(entry, receipt, source="receipt")
        return await self._count(batch)

    async def _count(self, batch: _Batch) -> Counter[str]:
        report: Counter[str] = Counter()
        for (purpose, label), n in batch.outcomes.items():
            await self._metrics.inc("govbot_sms_outbound_total", {"purpose": purpose, "result": label}, n)
            report[label] += n
        for purpose, n in batch.segments.items():
            await self._metrics.inc("govbot_sms_segments_total", {"purpose": purpose}, n)
        for provider_status, n in Counter(e["provider_status"] for e in batch.events).items():
            await self._metrics.inc("govbot_sms_status_total", {"status": provider_status}, n)
        return report

    def after_error(
        self, entry: LedgerEntry, throttle_retries: int, exc: BaseException, now: datetime
    ) -> tuple[str, dict[str, Any]]:
        """The outcome label and the row's new values after a send that raised ``exc``."""
        attempt = entry.attempts
        code = exc.code if isinstance(exc, SendError) else None
        if isinstance(exc, Rejected):
            log_attempt("sms rejected", entry, attempt, code)
            return "rejected", {"status": S.FAILED, "error_code": code, "error_message": str(exc)}
        if isinstance(exc, Deferred):
            log_attempt("sms deferred by flow control", entry, attempt, code)
            if attempt >= self._s.max_attempts:
                return "deferred", {"status": S.FAILED, "error_code": code, "error_message": str(exc)}
            return "deferred", {
                "status": S.PENDING,
                "error_code": code,
                "error_message": str(exc),
                "next_attempt_at": max(exc.until, now),
            }
        if isinstance(exc, RetryLater):
            log_attempt("sms throttled", entry, attempt, code)
            values: dict[str, Any] = {"error_code": code, "error_message": str(exc)}
            if throttle_retries >= self._s.throttle_max_retries or attempt >= self._s.max_attempts:
                return "throttled", {**values, "status": S.FAILED}
            delay = min(MAX_BACKOFF, self._s.throttle_backoff * 2**throttle_retries)
            return "throttled", {
                **values,
                "status": S.PENDING,
                "throttle_retries": SmsOutbound.throttle_retries + 1,
                "next_attempt_at": now + timedelta(seconds=delay),
            }
        # Ambiguous, or anything unexpected: the provider may have it
        log_attempt("sms send ambiguous, will reconcile", entry, attempt, code)
        if not isinstance(exc, Ambiguous):
            log.error("unexpected error from the SMS provider", exc_info=exc)
        return "ambiguous", {
            "status": S.UNKNOWN,
            "error_code": code,
            "error_message": f"{type(exc).__name__}: {exc}",
            "next_attempt_at": now + timedelta(seconds=self._s.reconcile_delay),
        }

    async def apply_receipt(self, entry: LedgerEntry, receipt: SendReceipt, *, source: str) -> str:
        """``apply`` what a send call (``receipt``) or a lookup (``lookup``) said of the entry's attempt."""
        return await self.apply(
            StatusUpdate(
                provider_sid=receipt.provider_sid,
                state=receipt.state,
                provider_status=receipt.provider_status,
                ledger_id=entry.id,
                attempt=entry.attempts,
                error_code=receipt.error_code,
                failure=receipt.failure,
            ),
            source=source,
        )

    # ------------------------------------------------------------------------------------------ reports

    async def apply(self, update_: StatusUpdate, *, source: str = "callback") -> str:
        """Apply a status report, receipt or lookup result.  Idempotent; returns what happened:
        ``applied``, ``duplicate``, ``stale`` (an earlier attempt), ``ignored`` (no progress) or
        ``unknown_ledger``."""
        now = self._ledger.clock()
        async with self._ledger.sessions.begin() as s:
            row = await _find_row(s, update_)
            if row is None:
                return "unknown_ledger"
            attempt = update_.attempt if update_.attempt is not None else row.attempts
            if not await _record_event(s, row.id, attempt, update_, source, now):
                return "duplicate"
            if attempt != row.attempts:
                return "stale"
            if update_.state is None:
                return "ignored"
            where, values = self._change(row, attempt, update_.state, update_, now)
            result = await s.execute(
                update(SmsOutbound)
                .where(*where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            changed = bool(result.rowcount)  # type: ignore[attr-defined]
            if not changed and update_.provider_sid and row.provider_sid is None:
                # out of order (e.g. "queued" after "delivered"): still remember which message this is
                await s.execute(
                    update(SmsOutbound)
                    .where(SmsOutbound.id == row.id, SmsOutbound.attempts == attempt)
                    .values(provider_sid=update_.provider_sid)
                    .execution_options(synchronize_session=False)
                )
        if update_.state is DeliveryState.FAILED and update_.failure is Failure.OPTED_OUT:
            await self._optouts.opt_out(row.recipient, source="provider", error_code=update_.error_code)
        if changed:
            await self._metrics.inc("govbot_sms_status_total", {"status": update_.provider_status})
            if update_.state is DeliveryState.FAILED:
                log.warning(
                    "sms not delivered",
                    extra={
                        "ledger_id": row.id,
                        "to": mask_phone(row.recipient),
                        "attempt": attempt,
                        "code": update_.error_code,
                        "status": values["status"],
                    },
                )
        return "applied" if changed else "ignored"

    def _change(
        self, row: SmsOutbound, attempt: int, state: DeliveryState, update_: StatusUpdate, now: datetime
    ) -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
        """The conditional UPDATE a report of the row's current attempt makes: its WHERE and its values."""
        where = [SmsOutbound.id == row.id, SmsOutbound.attempts == attempt]
        values: dict[str, Any] = {"updated_at": now, "provider_status": update_.provider_status[:24]}
        if update_.provider_sid:
            values["provider_sid"] = update_.provider_sid
        if state is DeliveryState.FAILED:
            values["error_code"] = update_.error_code
            retry = (
                update_.failure is Failure.TRANSIENT
                and row.transient_retries < len(self._s.retry_delays)
                and row.attempts < self._s.max_attempts
            )
            if retry:
                delay = self._s.retry_delays[row.transient_retries]
                values.update(
                    status=S.PENDING,
                    transient_retries=SmsOutbound.transient_retries + 1,
                    next_attempt_at=now + timedelta(seconds=delay),
                )
            else:
                values.update(status=S.FAILED, finished_at=now)
            where.append(SmsOutbound.status.in_([str(x) for x in _IN_FLIGHT]))
            return where, values
        status = _STATE_STATUS[state]
        values["status"] = status
        values["accepted_at"] = case((SmsOutbound.accepted_at.is_(None), now), else_=SmsOutbound.accepted_at)
        if status is S.DELIVERED:
            values.update(delivered_at=now, finished_at=now)
        where.append(SmsOutbound.status.in_([str(x) for x in _FROM[status]]))
        return where, values


async def _find_row(s: AsyncSession, update_: StatusUpdate) -> SmsOutbound | None:
    if update_.ledger_id:
        return await s.get(SmsOutbound, update_.ledger_id)
    if update_.campaign_id and update_.recipient:  # a batch send: one row per campaign and recipient
        query = select(SmsOutbound).where(
            SmsOutbound.campaign_id == update_.campaign_id, SmsOutbound.recipient == update_.recipient
        )
        return (await s.execute(query.limit(1))).scalars().first()
    if update_.provider_sid:
        query = select(SmsOutbound).where(SmsOutbound.provider_sid == update_.provider_sid)
        if update_.recipient:  # one provider id for several numbers (a batch call)
            query = query.where(SmsOutbound.recipient == update_.recipient)
        query = query.limit(2)
        rows = (await s.execute(query)).scalars().all()
        return rows[0] if len(rows) == 1 else None  # two rows with one sid: which one is unknown
    return None


async def _record_event(
    s: AsyncSession, ledger_id: str, attempt: int, update_: StatusUpdate, source: str, now: datetime
) -> bool:
    """Record the report in ``sms_delivery_events``; False if it was recorded before (a repeat)."""
    try:
        async with s.begin_nested():
            s.add(
                SmsDeliveryEvent(
                    ledger_id=ledger_id,
                    attempt=attempt,
                    provider_sid=update_.provider_sid or None,
                    provider_status=update_.provider_status[:24],
                    error_code=update_.error_code,
                    source=source,
                    received_at=now,
                )
            )
            await s.flush()
    except IntegrityError:
        return False
    return True


async def _record_receipts(
    s: AsyncSession, status: LedgerStatus, params: list[dict[str, Any]], now: datetime
) -> None:
    """The provider accepted these rows: one UPDATE executed for all of them (never backwards: a status
    callback that arrived first already moved the row on)."""
    values: dict[str, Any] = {
        "status": str(status),
        "provider_sid": bindparam("b_sid"),
        "provider_status": bindparam("b_status"),
        "accepted_at": case((SmsOutbound.accepted_at.is_(None), now), else_=SmsOutbound.accepted_at),
        "updated_at": now,
    }
    if status is S.DELIVERED:
        values.update(delivered_at=now, finished_at=now)
    stmt = (
        update(SmsOutbound)
        .where(
            SmsOutbound.id == bindparam("b_id"),
            SmsOutbound.attempts == bindparam("b_n"),
            or_(*(SmsOutbound.status == str(x) for x in _FROM[status])),  # no IN: executemany
        )
        .values(**values)
    )
    # On the session's connection: the Session itself would take a list of parameter sets for an ORM bulk
    # UPDATE by primary key, which has no WHERE of its own.
    await (await s.connection()).execute(stmt, params)


def _insert_ignoring_duplicates(s: AsyncSession, model: type[Any]) -> Any:
    if s.get_bind().dialect.name == "postgresql":
        return pg_insert(model).on_conflict_do_nothing()
    return sqlite_insert(model).on_conflict_do_nothing()
