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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import as_utc, utcnow
from bot.core.masking import mask_phone
from bot.core.metrics import Metrics
from bot.core.phone import to_e164
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
)
from sms_gateway.optout import OptOutStore
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
    def from_row(cls, values: dict[str, Any]) -> LedgerEntry:
        """From the column values of a row just written."""
        return cls(**{name: values.get(name) for name in _ENTRY_FIELDS})

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


@dataclass(frozen=True)
class BatchItem:
    """One recipient of a bulk send: one composed message under an idempotency key."""

    to: str  # E.164
    message: SmsMessage
    key: str


_ENTRY_FIELDS = tuple(LedgerEntry.__dataclass_fields__)


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

    @property
    def throttle_backoff(self) -> float:
        """Seconds to hold traffic after the provider answered 429."""
        return self._s.throttle_backoff

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
        ledger's sweep sends them (broadcast rows: the broadcast workers)."""
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
                            **self._row(
                                lid,
                                phone,
                                msg,
                                purpose,
                                status,
                                now,
                                campaign_id=campaign_id,
                                dedup_key=dedup,
                                reply_to=reply_to,
                                part=i,
                                parts=len(messages),
                                via=via,
                                lease=SYNC_LEASE,
                                due_now=due_now,
                            )
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
            log.info("sms suppressed: opted out", extra={"to": mask_phone(phone), "purpose": str(purpose)})
        return await self.get_many(ids)

    def _row(
        self,
        lid: str,
        phone: str,
        msg: SmsMessage,
        purpose: Purpose,
        status: LedgerStatus,
        now: datetime,
        *,
        campaign_id: str | None,
        dedup_key: str | None,
        reply_to: str | None = None,
        part: int = 1,
        parts: int = 1,
        via: Via = Via.API,
        lease: timedelta,
        due_now: bool = False,
    ) -> dict[str, Any]:
        """The column values of a new ledger row (``sending`` rows are claimed: attempt 1, leased)."""
        return {
            "id": lid,
            "provider": self._provider.name,
            "recipient": phone,
            "body": msg.body,
            "segments": msg.segments,
            "encoding": str(msg.encoding),
            "purpose": str(purpose),
            "campaign_id": campaign_id,
            "dedup_key": dedup_key,
            "reply_to": reply_to,
            "part": part,
            "parts": parts,
            "via": str(via),
            "status": str(status),
            "attempts": 1 if status is S.SENDING else 0,
            "transient_retries": 0,
            "throttle_retries": 0,
            "next_attempt_at": (now if due_now else now + self._lease) if status is S.PENDING else None,
            "lease_until": now + lease if status is S.SENDING else None,
            "error_message": "opted_out" if status is S.SUPPRESSED else None,
            "created_at": now,
            "updated_at": now,
            "finished_at": now if status is S.SUPPRESSED else None,
        }

    async def send_batch(
        self, items: Sequence[BatchItem], *, purpose: Purpose, campaign_id: str | None = None
    ) -> Counter[str]:
        """Bulk sends (broadcasts), a few statements per batch instead of several per message.

        One transaction writes every new row already claimed (``sending``, attempt 1, leased; opted-out
        numbers ``suppressed``); then the provider is called for all of them at once and the outcomes are
        recorded in one more transaction.  A crash in between leaves ``sending`` rows that the sweep
        reconciles after the lease (looked up at the provider, never resent blind).  An item whose key is
        already in the ledger is left to that row's own life (``existing``): a redelivered queue entry never
        sends again.  Returns the count per outcome: ``accepted``, ``rejected``, ``throttled``,
        ``ambiguous``, ``suppressed``, ``existing``."""
        report: Counter[str] = Counter()
        if not items:
            return report
        now = self.clock()
        keys = [f"{item.key}:1" for item in items]
        rows: list[dict[str, Any]] = []
        try:
            async with self._sessions.begin() as s:
                taken = set(
                    (
                        await s.execute(select(SmsOutbound.dedup_key).where(SmsOutbound.dedup_key.in_(keys)))
                    ).scalars()
                )
                opted = await self._optouts.opted_out_among([item.to for item in items], session=s)
                for item, dedup in zip(items, keys, strict=True):
                    if dedup in taken:
                        report["existing"] += 1
                        continue
                    taken.add(dedup)
                    status = S.SUPPRESSED if item.to in opted else S.SENDING
                    rows.append(
                        self._row(
                            uuid.uuid4().hex,
                            item.to,
                            item.message,
                            purpose,
                            status,
                            now,
                            campaign_id=campaign_id,
                            dedup_key=dedup,
                            lease=self._lease,
                        )
                    )
                if rows:
                    await s.execute(insert(SmsOutbound), rows)
        except IntegrityError:  # a concurrent writer of the same keys (a reclaimed entry): one by one
            return await self._send_each(items, purpose=purpose, campaign_id=campaign_id)
        suppressed = sum(1 for r in rows if r["status"] == S.SUPPRESSED)
        labels = {"purpose": str(purpose)}
        await self._metrics.inc(
            "govbot_sms_outbound_total", {**labels, "result": "written"}, len(rows) - suppressed
        )
        if suppressed:
            report["suppressed"] += suppressed
            await self._metrics.inc(
                "govbot_sms_outbound_total", {**labels, "result": "suppressed"}, suppressed
            )
        claimed = [(LedgerEntry.from_row(r), 0) for r in rows if r["status"] == S.SENDING]
        report.update(await self._send_claimed(claimed, check_opt_out=False))
        return report

    async def _send_each(
        self, items: Sequence[BatchItem], *, purpose: Purpose, campaign_id: str | None
    ) -> Counter[str]:
        report: Counter[str] = Counter()
        for item in items:
            entries = await self.write(
                item.to, [item.message], purpose=purpose, campaign_id=campaign_id, key=item.key
            )
            for entry in entries:
                if entry.status != S.PENDING or entry.attempts:
                    report["existing" if entry.status != S.SUPPRESSED else "suppressed"] += 1
                    continue
                after = await self.dispatch(entry.id)
                throttled = after is not None and after.status == S.PENDING and after.attempts > 0
                report["throttled" if throttled else "sent_one_by_one"] += 1
        return report

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
        await self._send_claimed([(entry, throttle_retries)], check_opt_out=True)
        return await self.get(ledger_id)

    def _request(self, entry: LedgerEntry) -> OutboundRequest:
        return OutboundRequest(
            entry.id, entry.attempts, entry.recipient, entry.body, self.status_url(entry.id, entry.attempts)
        )

    async def _send_claimed(
        self, claimed: Sequence[tuple[LedgerEntry, int]], *, check_opt_out: bool
    ) -> Counter[str]:
        """Call the provider for rows this caller claimed (``sending``; with their throttle-retry counts),
        all at once, and record every outcome in one transaction.  Returns the count per outcome."""
        report: Counter[str] = Counter()
        if check_opt_out:
            opted = await self._optouts.opted_out_among(
                e.recipient for e, _ in claimed if e.purpose != Purpose.OPT_OUT_CONFIRMATION
            )
            for entry, _ in claimed:
                if entry.recipient in opted and entry.purpose != Purpose.OPT_OUT_CONFIRMATION:
                    await self._move(
                        entry.id, entry.attempts, (S.SENDING,), status=S.SUPPRESSED, error_message="opted_out"
                    )
                    await self._metrics.inc(
                        "govbot_sms_outbound_total", {"purpose": entry.purpose, "result": "suppressed"}
                    )
                    report["suppressed"] += 1
            claimed = [
                (e, n)
                for e, n in claimed
                if e.recipient not in opted or e.purpose == Purpose.OPT_OUT_CONFIRMATION
            ]
        if not claimed:
            return report
        results = await asyncio.gather(
            *(self._provider.send(self._request(entry)) for entry, _ in claimed), return_exceptions=True
        )
        for result in results:  # cancelled, or dying: the rows stay "sending" and are reconciled later
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
        now = self.clock()
        receipts: dict[LedgerStatus, list[dict[str, Any]]] = {}
        events: list[dict[str, Any]] = []
        odd_receipts: list[tuple[LedgerEntry, SendReceipt]] = []
        opt_outs: list[tuple[str, int | None]] = []
        segments: Counter[str] = Counter()
        outcomes: Counter[tuple[str, str]] = Counter()
        async with self._sessions.begin() as s:
            for (entry, throttle_retries), result in zip(claimed, results, strict=True):
                if isinstance(result, SendReceipt):
                    outcomes[(entry.purpose, "accepted")] += 1
                    segments[entry.purpose] += result.segments or entry.segments
                    status = _STATE_STATUS.get(result.state) if result.state else None
                    if status is None:  # failed at once: the full status logic
                        odd_receipts.append((entry, result))
                        continue
                    receipts.setdefault(status, []).append(
                        {
                            "b_id": entry.id,
                            "b_n": entry.attempts,
                            "b_sid": result.provider_sid,
                            "b_status": result.provider_status[:24],
                        }
                    )
                    events.append(
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
                    continue
                label, values = self._failure(entry, throttle_retries, result, now)
                outcomes[(entry.purpose, label)] += 1
                if isinstance(result, Rejected) and result.failure is Failure.OPTED_OUT:
                    opt_outs.append((entry.recipient, result.code))
                await self._move_in(s, entry.id, entry.attempts, (S.SENDING,), now, **values)
            for status, params in receipts.items():
                await self._record_receipts(s, status, params, now)
            if events:
                await s.execute(self._insert_ignoring_duplicates(s, SmsDeliveryEvent), events)
        for phone, code in opt_outs:
            await self._optouts.opt_out(phone, source="provider", error_code=code)
        for entry, receipt in odd_receipts:
            await self._apply_receipt(entry, receipt)
        for (purpose, label), n in outcomes.items():
            await self._metrics.inc("govbot_sms_outbound_total", {"purpose": purpose, "result": label}, n)
            report[label] += n
        for purpose, n in segments.items():
            await self._metrics.inc("govbot_sms_segments_total", {"purpose": purpose}, n)
        for provider_status, n in Counter(e["provider_status"] for e in events).items():
            await self._metrics.inc("govbot_sms_status_total", {"status": provider_status}, n)
        return report

    async def _record_receipts(
        self, s: AsyncSession, status: LedgerStatus, params: list[dict[str, Any]], now: datetime
    ) -> None:
        """The provider accepted these rows: one UPDATE executed for all of them (never backwards: a status
        callback that arrived first already moved the row on)."""
        t = SmsOutbound.__table__
        values: dict[str, Any] = {
            "status": str(status),
            "provider_sid": bindparam("b_sid"),
            "provider_status": bindparam("b_status"),
            "accepted_at": case((t.c.accepted_at.is_(None), now), else_=t.c.accepted_at),
            "updated_at": now,
        }
        if status is S.DELIVERED:
            values.update(delivered_at=now, finished_at=now)
        stmt = (
            t.update()
            .where(
                t.c.id == bindparam("b_id"),
                t.c.attempts == bindparam("b_n"),
                or_(*(t.c.status == str(x) for x in _FROM[status])),  # no IN: executemany
            )
            .values(**values)
        )
        await s.execute(stmt, params)

    @staticmethod
    def _insert_ignoring_duplicates(s: AsyncSession, model: type[Any]) -> Any:
        if s.get_bind().dialect.name == "postgresql":
            return pg_insert(model).on_conflict_do_nothing()
        return sqlite_insert(model).on_conflict_do_nothing()

    async def _apply_receipt(self, entry: LedgerEntry, receipt: SendReceipt) -> None:
        await self.apply(
            StatusUpdate(
                provider_sid=receipt.provider_sid,
                state=receipt.state,
                provider_status=receipt.provider_status,
                ledger_id=entry.id,
                attempt=entry.attempts,
                error_code=receipt.error_code,
                failure=receipt.failure,
            ),
            source="receipt",
        )

    def _failure(
        self, entry: LedgerEntry, throttle_retries: int, exc: BaseException, now: datetime
    ) -> tuple[str, dict[str, Any]]:
        """The outcome label and the row's new values after a send that raised ``exc``."""
        attempt = entry.attempts
        code = exc.code if isinstance(exc, SendError) else None
        if isinstance(exc, Rejected):
            self._log("sms rejected", entry, attempt, code)
            return "rejected", {"status": S.FAILED, "error_code": code, "error_message": str(exc)}
        if isinstance(exc, RetryLater):
            self._log("sms throttled", entry, attempt, code)
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
        self._log("sms send ambiguous, will reconcile", entry, attempt, code)
        if not isinstance(exc, Ambiguous):
            log.error("unexpected error from the SMS provider", exc_info=exc)
        return "ambiguous", {
            "status": S.UNKNOWN,
            "error_code": code,
            "error_message": f"{type(exc).__name__}: {exc}",
            "next_attempt_at": now + timedelta(seconds=self._s.reconcile_delay),
        }

    def _log(self, message: str, entry: LedgerEntry, attempt: int, code: int | None) -> None:
        log.warning(
            message,
            extra={
                "ledger_id": entry.id,
                "to": mask_phone(entry.recipient),
                "attempt": attempt,
                "code": code,
            },
        )

    async def _move(
        self, ledger_id: str, attempt: int, from_statuses: Sequence[LedgerStatus], **values: Any
    ) -> bool:
        async with self._sessions.begin() as s:
            return await self._move_in(s, ledger_id, attempt, from_statuses, self.clock(), **values)

    async def _move_in(
        self,
        s: AsyncSession,
        ledger_id: str,
        attempt: int,
        from_statuses: Sequence[LedgerStatus],
        now: datetime,
        **values: Any,
    ) -> bool:
        values.setdefault("updated_at", now)
        if values.get("status") in FINAL_STATUSES:
            values.setdefault("finished_at", now)
        if isinstance(values.get("error_message"), str):
            values["error_message"] = values["error_message"][:255]
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
                        "to": mask_phone(row.recipient),
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
        if entry.purpose == Purpose.BROADCAST:  # resent by a broadcast worker, under its campaign's state
            return await self.get(ledger_id)
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
        """One sweep: expired leases become ``unknown``; due ``pending`` rows are sent; due ``unknown`` rows
        are reconciled.  Safe in every worker.

        Pending *broadcast* rows are left to the broadcast workers (``sms_gateway.broadcast.engine``): they
        hold them while the campaign is paused or outside its sending window and count them against the
        bulk rate limit."""
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
                        .where(
                            SmsOutbound.status == S.PENDING,
                            SmsOutbound.next_attempt_at <= now,
                            SmsOutbound.purpose != Purpose.BROADCAST,
                        )
                        .order_by(SmsOutbound.next_attempt_at)
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
