"""The one sending path for every outbound SMS (replies, notifications, broadcasts): a ledger that never
loses and never duplicates a message, and never writes to an opted-out number.

Life of a ledger row (``sms_outbound``)::

    write (pending) ──claim──▶ sending ──provider accepted──▶ accepted ──▶ sent ──▶ delivered
        │                        │  ├─ 429 / not processed ──▶ pending (back-off, capped)
        │                        │  ├─ rejected (21610 → opt-out, 21614, ...) ──▶ failed
        │                        │  └─ 5xx / timeout / crash (lease expired) ──▶ unknown
        │                        │                                                 │ look the message up
        │                        │                       found ◀───────────────────┤ (never resend blindly)
        │                        │                       not found ──▶ pending ──▶ resend
        └─ opted out ──▶ suppressed      callbacks: undelivered 30003/30008 ──▶ pending (≤ 2 delayed retries)

* The row is committed before the provider is called, and the claim (pending → sending, attempts + 1) is
  committed before the HTTP request: a row still ``pending`` after a crash was certainly never sent and is
  sent by the recovery sweep; a row stuck in ``sending`` may have been sent and is reconciled first.
* Every state change is one conditional UPDATE (``WHERE status IN (...) AND attempts = n``), so callbacks
  that arrive before the send call returns, repeated callbacks, late callbacks of an earlier attempt and
  several gateway workers sweeping at once cannot move a row backwards or send it twice.
* The status-callback URL carries the ledger id and the attempt number (``?lid=...&n=...``).
* The opt-out list is checked when a row is written and again right before each provider call; an
  opted-out number only ever gets the one ``opt_out_confirmation`` row, claimed atomically on the opt-out
  record.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import utcnow
from bot.metrics import Metrics
from sms_gateway.compose import Composer, SmsMessage
from sms_gateway.config import SmsSettings
from sms_gateway.models import (
    FINAL_STATUSES,
    LedgerStatus,
    Purpose,
    SmsDeliveryEvent,
    SmsOptOut,
    SmsOutbound,
    Via,
    as_utc,
)
from sms_gateway.optout import OptOutStore
from sms_gateway.phone import masked, to_e164
from sms_gateway.provider import (
    Ambiguous,
    DeliveryState,
    Failure,
    OutboundRequest,
    Rejected,
    RetryLater,
    SendError,
    SendReceipt,
    SmsProvider,
    StatusUpdate,
)

log = logging.getLogger(__name__)

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
SYNC_LEASE = timedelta(minutes=10)  # a synchronous (TwiML) answer not confirmed by then is reconciled
LOOKUP_SLACK = timedelta(minutes=10)  # clock skew allowance when looking a message up
MAX_BACKOFF = 300.0


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    recipient: str
    body: str
    segments: int
    purpose: str
    campaign_id: str | None
    status: str
    provider_sid: str | None
    error_code: int | None
    attempts: int
    via: str
    part: int
    parts: int

    @classmethod
    def of(cls, row: SmsOutbound) -> LedgerEntry:
        return cls(
            row.id,
            row.recipient,
            row.body,
            row.segments,
            row.purpose,
            row.campaign_id,
            row.status,
            row.provider_sid,
            row.error_code,
            row.attempts,
            row.via,
            row.part,
            row.parts,
        )


class SmsOutbox:
    def __init__(
        self,
        settings: SmsSettings,
        sessions: async_sessionmaker[AsyncSession],
        provider: SmsProvider,
        optouts: OptOutStore,
        metrics: Metrics,
        *,
        composer: Composer | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._s = settings
        self._sessions = sessions
        self._provider = provider
        self._optouts = optouts
        self._metrics = metrics
        self.composer = composer or Composer(
            settings.signature,
            reply_budget=settings.reply_segment_budget,
            max_segments_per_message=settings.max_segments_per_message,
        )
        self.clock = clock
        self._lease = timedelta(seconds=2 * settings.send_timeout + 5)
        self._worker: asyncio.Task[None] | None = None

    @property
    def provider(self) -> SmsProvider:
        return self._provider

    def status_url(self, ledger_id: str, attempt: int) -> str:
        return f"{self._s.public_base_url}/sms/{self._provider.name}/status?lid={ledger_id}&n={attempt}"

    # ------------------------------------------------------------------------------------------ writing

    async def send(
        self,
        to: str,
        texts: str | Sequence[str],
        *,
        purpose: Purpose = Purpose.NOTIFICATION,
        campaign_id: str | None = None,
        key: str | None = None,
        dispatch: bool = True,
    ) -> list[LedgerEntry]:
        """Send ``texts`` whole (no reply budget; broadcasts get the 回T退订 hint) to ``to``.

        ``key`` makes the call idempotent (the same key never sends twice); broadcasts default to
        ``broadcast:<campaign_id>:<phone>``.  With ``dispatch=False`` the rows are only written and the
        worker sends them (bulk sends)."""
        phone = to_e164(to)
        if purpose is Purpose.BROADCAST:
            if not campaign_id:
                raise ValueError("a broadcast needs a campaign_id")
            key = key or f"broadcast:{campaign_id}:{phone}"
        items = [texts] if isinstance(texts, str) else list(texts)
        messages = self.composer.whole(items, opt_out_hint=purpose is Purpose.BROADCAST)
        return await self.send_messages(
            phone, messages, purpose=purpose, campaign_id=campaign_id, key=key, dispatch=dispatch
        )

    async def send_messages(
        self,
        to: str,
        messages: Sequence[SmsMessage],
        *,
        purpose: Purpose,
        campaign_id: str | None = None,
        key: str | None = None,
        reply_to: str | None = None,
        dispatch: bool = True,
    ) -> list[LedgerEntry]:
        """Write composed messages to the ledger and (by default) send them now, in order."""
        entries = await self.write(
            to_e164(to),
            messages,
            purpose=purpose,
            campaign_id=campaign_id,
            key=key,
            reply_to=reply_to,
            due_now=not dispatch,
        )
        if not dispatch:
            return entries
        out: list[LedgerEntry] = []
        for entry in entries:
            if entry.status == S.PENDING:
                entry = await self.dispatch(entry.id) or entry
            out.append(entry)
        return out

    async def write(
        self,
        phone: str,
        messages: Sequence[SmsMessage],
        *,
        purpose: Purpose,
        campaign_id: str | None = None,
        key: str | None = None,
        reply_to: str | None = None,
        via: Via = Via.API,
        due_now: bool = False,
    ) -> list[LedgerEntry]:
        """Ledger rows for ``messages`` (idempotent per ``key``).

        ``pending`` rows are due for the background sweep at once with ``due_now`` (bulk sends), else only
        after a lease: the writer dispatches them itself, and the sweep takes over if it crashed first.
        ``via=SYNC`` rows are answered in the webhook response: they start in ``sending`` with a long lease
        and are reconciled if never confirmed."""
        if not messages:
            return []
        keys = [f"{key}:{i}" for i in range(1, len(messages) + 1)] if key else [None] * len(messages)
        if key:
            existing = await self._by_keys(keys)
            if existing:
                return existing
        now = self.clock()
        ids = [uuid.uuid4().hex for _ in messages]
        try:
            async with self._sessions.begin() as s:
                allowed = await self._may_send(s, phone, purpose, ids[0])
                if not allowed:
                    status = S.SUPPRESSED
                elif via is Via.SYNC:
                    status = S.SENDING
                else:
                    status = S.PENDING
                for i, (msg, lid, dedup) in enumerate(zip(messages, ids, keys, strict=True), start=1):
                    s.add(
                        SmsOutbound(
                            id=lid,
                            provider=self._provider.name,
                            recipient=phone,
                            body=msg.body,
                            segments=msg.segments,
                            encoding=str(msg.encoding),
                            purpose=str(purpose),
                            campaign_id=campaign_id,
                            dedup_key=dedup,
                            reply_to=reply_to,
                            part=i,
                            parts=len(messages),
                            via=str(via),
                            status=str(status),
                            attempts=1 if status is S.SENDING else 0,
                            transient_retries=0,
                            throttle_retries=0,
                            next_attempt_at=(now if due_now else now + self._lease)
                            if status is S.PENDING
                            else None,
                            lease_until=now + SYNC_LEASE if status is S.SENDING else None,
                            error_message="opted_out" if status is S.SUPPRESSED else None,
                            created_at=now,
                            updated_at=now,
                            finished_at=now if status is S.SUPPRESSED else None,
                        )
                    )
        except IntegrityError:
            if key:  # a concurrent writer with the same key won
                return await self._by_keys(keys)
            raise
        result = "suppressed" if status is S.SUPPRESSED else "written"
        await self._metrics.inc(
            "govbot_sms_outbound_total", {"purpose": str(purpose), "result": result}, len(ids)
        )
        if status is S.SUPPRESSED:
            log.info("sms suppressed: opted out", extra={"to": masked(phone), "purpose": str(purpose)})
        return await self.get_many(ids)

    async def _may_send(self, s: AsyncSession, phone: str, purpose: Purpose, first_id: str) -> bool:
        if purpose is Purpose.OPT_OUT_CONFIRMATION:
            # The one message an opted-out number may get, claimed once per opt-out.
            claimed = await s.execute(
                update(SmsOptOut)
                .where(
                    SmsOptOut.phone == phone,
                    SmsOptOut.opted_out.is_(True),
                    SmsOptOut.confirmation_ledger_id.is_(None),
                )
                .values(confirmation_ledger_id=first_id)
                .execution_options(synchronize_session=False)
            )
            return bool(claimed.rowcount)  # type: ignore[attr-defined]
        return not await self._optouts.is_opted_out(phone, session=s)

    async def _by_keys(self, keys: Sequence[str | None]) -> list[LedgerEntry]:
        async with self._sessions() as s:
            rows = (
                (
                    await s.execute(
                        select(SmsOutbound).where(SmsOutbound.dedup_key.in_([k for k in keys if k]))
                    )
                )
                .scalars()
                .all()
            )
        return [LedgerEntry.of(r) for r in sorted(rows, key=lambda r: r.part)]

    # ------------------------------------------------------------------------------------------ reading

    async def get(self, ledger_id: str) -> LedgerEntry | None:
        async with self._sessions() as s:
            row = await s.get(SmsOutbound, ledger_id)
            return LedgerEntry.of(row) if row else None

    async def get_many(self, ids: Sequence[str]) -> list[LedgerEntry]:
        async with self._sessions() as s:
            rows = (await s.execute(select(SmsOutbound).where(SmsOutbound.id.in_(ids)))).scalars().all()
        order = {lid: i for i, lid in enumerate(ids)}
        return [LedgerEntry.of(r) for r in sorted(rows, key=lambda r: order[r.id])]

    async def entries(
        self, *, recipient: str | None = None, campaign_id: str | None = None
    ) -> list[LedgerEntry]:
        stmt = select(SmsOutbound).order_by(SmsOutbound.created_at, SmsOutbound.part)
        if recipient:
            stmt = stmt.where(SmsOutbound.recipient == to_e164(recipient))
        if campaign_id:
            stmt = stmt.where(SmsOutbound.campaign_id == campaign_id)
        async with self._sessions() as s:
            return [LedgerEntry.of(r) for r in (await s.execute(stmt)).scalars().all()]

    async def events(self, ledger_id: str) -> list[tuple[int, str, str | None, int | None, str]]:
        """(attempt, provider status, provider sid, error code, source) in arrival order."""
        async with self._sessions() as s:
            rows = (
                await s.execute(
                    select(SmsDeliveryEvent)
                    .where(SmsDeliveryEvent.ledger_id == ledger_id)
                    .order_by(SmsDeliveryEvent.id)
                )
            ).scalars()
            return [(e.attempt, e.provider_status, e.provider_sid, e.error_code, e.source) for e in rows]

    async def campaign_counts(self, campaign_id: str) -> dict[str, int]:
        """Rows per status for one broadcast campaign."""
        counts: dict[str, int] = {}
        for entry in await self.entries(campaign_id=campaign_id):
            counts[entry.status] = counts.get(entry.status, 0) + 1
        return counts

    # ------------------------------------------------------------------------------------------ sending

    async def dispatch(self, ledger_id: str, *, due_only: bool = False) -> LedgerEntry | None:
        """Claim a pending row and call the provider once.  A row someone else claimed is left alone."""
        now = self.clock()
        conditions = [SmsOutbound.id == ledger_id, SmsOutbound.status == S.PENDING]
        if due_only:
            conditions.append(SmsOutbound.next_attempt_at <= now)
        async with self._sessions.begin() as s:
            claimed = await s.execute(
                update(SmsOutbound)
                .where(*conditions)
                .values(
                    status=S.SENDING,
                    attempts=SmsOutbound.attempts + 1,
                    lease_until=now + self._lease,
                    provider_sid=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                row = await s.get(SmsOutbound, ledger_id)
                return LedgerEntry.of(row) if row else None
            row = await s.get(SmsOutbound, ledger_id)
            assert row is not None
            entry = LedgerEntry.of(row)
            throttle_retries = row.throttle_retries
        await self._call(entry, throttle_retries)
        return await self.get(ledger_id)

    async def _call(self, entry: LedgerEntry, throttle_retries: int) -> None:
        attempt = entry.attempts
        labels = {"purpose": entry.purpose}
        if entry.purpose != Purpose.OPT_OUT_CONFIRMATION and await self._optouts.is_opted_out(
            entry.recipient
        ):
            await self._move(entry.id, attempt, (S.SENDING,), status=S.SUPPRESSED, error_message="opted_out")
            await self._metrics.inc("govbot_sms_outbound_total", {**labels, "result": "suppressed"})
            return
        request = OutboundRequest(
            entry.id, attempt, entry.recipient, entry.body, self.status_url(entry.id, attempt)
        )
        try:
            receipt = await self._provider.send(request)
        except Rejected as exc:
            if exc.failure is Failure.OPTED_OUT:
                await self._optouts.opt_out(entry.recipient, source="provider", error_code=exc.code)
            await self._move(
                entry.id, attempt, (S.SENDING,), status=S.FAILED, error_code=exc.code, error_message=str(exc)
            )
            await self._metrics.inc("govbot_sms_outbound_total", {**labels, "result": "rejected"})
            self._log("sms rejected", entry, attempt, exc.code)
        except RetryLater as exc:
            if throttle_retries >= self._s.throttle_max_retries or attempt >= self._s.max_attempts:
                await self._move(
                    entry.id,
                    attempt,
                    (S.SENDING,),
                    status=S.FAILED,
                    error_code=exc.code,
                    error_message=str(exc),
                )
            else:
                delay = min(MAX_BACKOFF, self._s.throttle_backoff * 2**throttle_retries)
                await self._move(
                    entry.id,
                    attempt,
                    (S.SENDING,),
                    status=S.PENDING,
                    error_code=exc.code,
                    error_message=str(exc),
                    throttle_retries=SmsOutbound.throttle_retries + 1,
                    next_attempt_at=self.clock() + timedelta(seconds=delay),
                )
            await self._metrics.inc("govbot_sms_outbound_total", {**labels, "result": "throttled"})
            self._log("sms throttled", entry, attempt, exc.code)
        except Exception as exc:  # Ambiguous, or anything unexpected: the provider may have it
            code = exc.code if isinstance(exc, SendError) else None
            await self._move(
                entry.id,
                attempt,
                (S.SENDING,),
                status=S.UNKNOWN,
                error_code=code,
                error_message=f"{type(exc).__name__}: {exc}",
                next_attempt_at=self.clock() + timedelta(seconds=self._s.reconcile_delay),
            )
            await self._metrics.inc("govbot_sms_outbound_total", {**labels, "result": "ambiguous"})
            self._log("sms send ambiguous, will reconcile", entry, attempt, code)
            if not isinstance(exc, Ambiguous):
                log.exception("unexpected error from the SMS provider")
        else:
            await self._metrics.inc("govbot_sms_outbound_total", {**labels, "result": "accepted"})
            await self._metrics.inc(
                "govbot_sms_segments_total", {"purpose": entry.purpose}, receipt.segments or entry.segments
            )
            await self.apply(
                StatusUpdate(
                    provider_sid=receipt.provider_sid,
                    state=receipt.state,
                    provider_status=receipt.provider_status,
                    ledger_id=entry.id,
                    attempt=attempt,
                    error_code=receipt.error_code,
                    failure=receipt.failure,
                ),
                source="receipt",
            )

    def _log(self, message: str, entry: LedgerEntry, attempt: int, code: int | None) -> None:
        log.warning(
            message,
            extra={"ledger_id": entry.id, "to": masked(entry.recipient), "attempt": attempt, "code": code},
        )

    async def _move(
        self, ledger_id: str, attempt: int, from_statuses: Sequence[LedgerStatus], **values: Any
    ) -> bool:
        now = self.clock()
        values.setdefault("updated_at", now)
        if values.get("status") in FINAL_STATUSES:
            values.setdefault("finished_at", now)
        if isinstance(values.get("error_message"), str):
            values["error_message"] = values["error_message"][:255]
        async with self._sessions.begin() as s:
            result = await s.execute(
                update(SmsOutbound)
                .where(
                    SmsOutbound.id == ledger_id,
                    SmsOutbound.attempts == attempt,
                    SmsOutbound.status.in_([str(x) for x in from_statuses]),
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------------------------------ status

    async def apply(self, update_: StatusUpdate, *, source: str = "callback") -> str:
        """Apply a status report, receipt or lookup result.  Idempotent; returns what happened:
        ``applied``, ``duplicate``, ``stale`` (an earlier attempt), ``ignored`` (no progress) or
        ``unknown_ledger``."""
        now = self.clock()
        opt_out_phone: str | None = None
        async with self._sessions.begin() as s:
            row = await self._find_row(s, update_)
            if row is None:
                return "unknown_ledger"
            attempt = update_.attempt if update_.attempt is not None else row.attempts
            try:
                async with s.begin_nested():
                    s.add(
                        SmsDeliveryEvent(
                            ledger_id=row.id,
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
                return "duplicate"
            if attempt != row.attempts:
                return "stale"
            if update_.state is None:
                return "ignored"
            where = [SmsOutbound.id == row.id, SmsOutbound.attempts == attempt]
            values: dict[str, Any] = {
                "updated_at": now,
                "provider_status": update_.provider_status[:24],
            }
            if update_.provider_sid:
                values["provider_sid"] = update_.provider_sid
            if update_.state is DeliveryState.FAILED:
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
                if update_.failure is Failure.OPTED_OUT:
                    opt_out_phone = row.recipient
            else:
                status = _STATE_STATUS[update_.state]
                values["status"] = status
                values["accepted_at"] = case(
                    (SmsOutbound.accepted_at.is_(None), now), else_=SmsOutbound.accepted_at
                )
                if status is S.DELIVERED:
                    values.update(delivered_at=now, finished_at=now)
                where.append(SmsOutbound.status.in_([str(x) for x in _FROM[status]]))
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
        if opt_out_phone is not None:
            await self._optouts.opt_out(opt_out_phone, source="provider", error_code=update_.error_code)
        if changed:
            await self._metrics.inc("govbot_sms_status_total", {"status": update_.provider_status})
            if update_.state is DeliveryState.FAILED:
                log.warning(
                    "sms not delivered",
                    extra={
                        "ledger_id": row.id,
                        "to": masked(row.recipient),
                        "attempt": attempt,
                        "code": update_.error_code,
                        "status": values["status"],
                    },
                )
        return "applied" if changed else "ignored"

    async def _find_row(self, s: AsyncSession, update_: StatusUpdate) -> SmsOutbound | None:
        if update_.ledger_id:
            return await s.get(SmsOutbound, update_.ledger_id)
        if update_.provider_sid:
            return (
                await s.execute(select(SmsOutbound).where(SmsOutbound.provider_sid == update_.provider_sid))
            ).scalar_one_or_none()
        return None

    # ------------------------------------------------------------------------------------------ recovery

    async def reconcile(self, ledger_id: str) -> LedgerEntry | None:
        """Settle an ``unknown`` row: adopt the provider's message if it exists, else resend it."""
        now = self.clock()
        async with self._sessions.begin() as s:
            claimed = await s.execute(
                update(SmsOutbound)
                .where(
                    SmsOutbound.id == ledger_id,
                    SmsOutbound.status == S.UNKNOWN,
                    SmsOutbound.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + self._lease, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                return await self.get(ledger_id)
            row = await s.get(SmsOutbound, ledger_id)
            assert row is not None
            entry = LedgerEntry.of(row)
            created = as_utc(row.created_at) or now
            exclude = set(
                (
                    await s.execute(
                        select(SmsOutbound.provider_sid).where(
                            SmsOutbound.recipient == row.recipient,
                            SmsOutbound.id != row.id,
                            SmsOutbound.provider_sid.is_not(None),
                        )
                    )
                ).scalars()
            )
            exclude |= {
                sid
                for sid in (
                    await s.execute(
                        select(SmsDeliveryEvent.provider_sid).where(
                            SmsDeliveryEvent.ledger_id == row.id, SmsDeliveryEvent.attempt < row.attempts
                        )
                    )
                ).scalars()
                if sid
            }
        if entry.provider_sid:  # a status callback for this attempt already told us
            await self._move(entry.id, entry.attempts, (S.UNKNOWN,), status=S.ACCEPTED)
            return await self.get(ledger_id)
        try:
            found = await self._provider.find_sent(
                entry.recipient, entry.body, created - LOOKUP_SLACK, exclude
            )
        except SendError as exc:
            await self._move(
                entry.id,
                entry.attempts,
                (S.UNKNOWN,),
                next_attempt_at=self.clock() + timedelta(seconds=max(self._s.reconcile_delay, 1.0) * 2),
                error_message=f"lookup failed: {exc}",
            )
            self._log("sms lookup failed, will retry", entry, entry.attempts, exc.code)
            return await self.get(ledger_id)
        if found is not None:
            self._log("sms reconciled: the provider has it, not resending", entry, entry.attempts, None)
            await self._adopt(entry, found)
            return await self.get(ledger_id)
        if entry.attempts >= self._s.max_attempts:
            await self._move(
                entry.id,
                entry.attempts,
                (S.UNKNOWN,),
                status=S.FAILED,
                error_message="not accepted after retries",
            )
            return await self.get(ledger_id)
        self._log("sms reconciled: the provider does not have it, resending", entry, entry.attempts, None)
        await self._move(
            entry.id, entry.attempts, (S.UNKNOWN,), status=S.PENDING, next_attempt_at=self.clock()
        )
        return await self.dispatch(ledger_id)

    async def _adopt(self, entry: LedgerEntry, found: SendReceipt) -> None:
        await self.apply(
            StatusUpdate(
                provider_sid=found.provider_sid,
                state=found.state,
                provider_status=found.provider_status,
                ledger_id=entry.id,
                attempt=entry.attempts,
                error_code=found.error_code,
                failure=found.failure,
            ),
            source="lookup",
        )
        # A lookup that found the message in a status we already recorded still settles "unknown".
        await self._move(
            entry.id, entry.attempts, (S.UNKNOWN,), status=S.ACCEPTED, provider_sid=found.provider_sid
        )

    async def run_due(self, limit: int = 100) -> int:
        """One sweep: expired leases become ``unknown``; due ``pending`` rows are sent (replies and
        notifications before broadcasts); due ``unknown`` rows are reconciled.  Safe in every worker."""
        now = self.clock()
        async with self._sessions.begin() as s:
            await s.execute(
                update(SmsOutbound)
                .where(SmsOutbound.status == S.SENDING, SmsOutbound.lease_until < now)
                .values(status=S.UNKNOWN, next_attempt_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        async with self._sessions() as s:
            pending = (
                (
                    await s.execute(
                        select(SmsOutbound.id)
                        .where(SmsOutbound.status == S.PENDING, SmsOutbound.next_attempt_at <= now)
                        .order_by(
                            case((SmsOutbound.purpose == Purpose.BROADCAST, 1), else_=0),
                            SmsOutbound.next_attempt_at,
                        )
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            unknown = (
                (
                    await s.execute(
                        select(SmsOutbound.id)
                        .where(SmsOutbound.status == S.UNKNOWN, SmsOutbound.next_attempt_at <= now)
                        .order_by(SmsOutbound.next_attempt_at)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
        for lid in pending:
            await self.dispatch(lid, due_only=True)
        for lid in unknown:
            await self.reconcile(lid)
        return len(pending) + len(unknown)

    # ------------------------------------------------------------------------------------------ worker

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
