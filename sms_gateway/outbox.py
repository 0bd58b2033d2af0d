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

``SmsOutbox`` (this module) is the class callers use: it writes rows, one message or a bulk batch at a
time, and hands them to its parts, each of which depends only on the ones listed before it:

* ``ledger.py``: ``LedgerEntry``, the reads, and the conditional UPDATE every state change goes through;
* ``status.py``: the provider's answers (send receipts and errors, callbacks, lookups) applied to rows;
* ``sending.py``: claiming rows and calling the provider;
* ``recovery.py``: the background sweep: due retries, expired leases, reconciling ``unknown`` rows.

* The row is committed before the provider is called, and the claim (pending → sending, attempts + 1) is
  committed before the HTTP request: a row still ``pending`` after a crash was certainly never sent and is
  sent by the recovery sweep; a row stuck in ``sending`` may have been sent and is reconciled first.
* Writes are idempotent per ``key`` (each part's ``dedup_key`` is ``<key>:<part>``): a writer that loses a
  race for a key gets the rows that won.
* The opt-out list is checked when a row is written and again right before each provider call; an
  opted-out number only ever gets the one ``opt_out_confirmation`` row, claimed atomically on the opt-out
  record.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.core.masking import mask_phone
from bot.core.metrics import Metrics
from bot.core.phone import to_e164
from sms_gateway.compose import Composer, SmsMessage, Templated
from sms_gateway.config import SmsSettings
from sms_gateway.ledger import Ledger, LedgerEntry, log, new_row
from sms_gateway.models import LedgerStatus, Purpose, SmsOptOut, SmsOutbound, Via
from sms_gateway.optout import OptOutStore
from sms_gateway.provider import SmsProvider, StatusUpdate
from sms_gateway.providers import composer_for
from sms_gateway.recovery import Recovery
from sms_gateway.sending import Sender
from sms_gateway.status import StatusUpdates

__all__ = ["BatchItem", "LedgerEntry", "SmsOutbox"]

S = LedgerStatus
SYNC_LEASE = timedelta(minutes=10)  # a synchronous (TwiML) answer not confirmed by then is reconciled


@dataclass(frozen=True)
class BatchItem:
    """One recipient of a bulk send: one composed message under an idempotency key."""

    to: str  # E.164
    message: SmsMessage
    key: str


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
        self._provider = provider
        self._optouts = optouts
        self._metrics = metrics
        self.composer = composer or composer_for(settings)
        self._ledger = Ledger(sessions, clock, lease=timedelta(seconds=2 * settings.send_timeout + 5))
        self._status = StatusUpdates(self._ledger, settings, optouts, metrics)
        self._sender = Sender(self._ledger, settings, provider, self._status, optouts, metrics)
        self._recovery = Recovery(self._ledger, settings, provider, self._status, self._sender)

    @property
    def clock(self) -> Callable[[], datetime]:
        """The clock that stamps the rows (replaceable: every part reads it through the ledger)."""
        return self._ledger.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self._ledger.clock = clock

    @property
    def provider(self) -> SmsProvider:
        return self._provider

    @property
    def throttle_backoff(self) -> float:
        """Seconds to hold traffic after the provider answered 429."""
        return self._s.throttle_backoff

    def status_url(self, ledger_id: str, attempt: int) -> str:
        return self._sender.status_url(ledger_id, attempt)

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
        templated: Templated | None = None,
    ) -> list[LedgerEntry]:
        """Send ``texts`` whole (no reply budget; broadcasts get the 回T退订 hint) to ``to``.

        ``key`` makes the call idempotent (the same key never sends twice); broadcasts default to
        ``broadcast:<campaign_id>:<phone>``.  With ``dispatch=False`` the rows are only written and the
        ledger's sweep sends them (broadcast rows: the broadcast workers).  ``templated``: the same message
        in a registered template's terms, for template-bound providers (Aliyun)."""
        phone = to_e164(to)
        if purpose is Purpose.BROADCAST:
            if not campaign_id:
                raise ValueError("a broadcast needs a campaign_id")
            key = key or f"broadcast:{campaign_id}:{phone}"
        items = [texts] if isinstance(texts, str) else list(texts)
        messages = self.composer.whole(items, opt_out_hint=purpose is Purpose.BROADCAST, templated=templated)
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
            existing = await self._ledger.by_keys(keys)
            if existing:
                return existing
        now = self.clock()
        ids = [uuid.uuid4().hex for _ in messages]
        pending_after = timedelta(0) if due_now else self._ledger.lease
        try:
            async with self._ledger.sessions.begin() as s:
                status = await self._first_status(s, phone, purpose, via, ids[0])
                for i, (msg, lid, dedup) in enumerate(zip(messages, ids, keys, strict=True), start=1):
                    values = new_row(
                        lid,
                        phone,
                        msg,
                        purpose,
                        status,
                        now,
                        provider=self._provider.name,
                        campaign_id=campaign_id,
                        dedup_key=dedup,
                        reply_to=reply_to,
                        part=i,
                        parts=len(messages),
                        via=via,
                        lease=SYNC_LEASE,
                        pending_after=pending_after,
                    )
                    s.add(SmsOutbound(**values))
        except IntegrityError:
            if key:  # a concurrent writer with the same key won
                return await self._ledger.by_keys(keys)
            raise
        result = "suppressed" if status is S.SUPPRESSED else "written"
        await self._metrics.inc(
            "govbot_sms_outbound_total", {"purpose": str(purpose), "result": result}, len(ids)
        )
        if status is S.SUPPRESSED:
            log.info("sms suppressed: opted out", extra={"to": mask_phone(phone), "purpose": str(purpose)})
        return await self._ledger.get_many(ids)

    async def _first_status(
        self, s: AsyncSession, phone: str, purpose: Purpose, via: Via, first_id: str
    ) -> LedgerStatus:
        """A new row's status: ``suppressed`` (opted out), ``sending`` (claimed: a TwiML answer) or
        ``pending``."""
        if not await self._may_send(s, phone, purpose, first_id):
            return S.SUPPRESSED
        return S.SENDING if via is Via.SYNC else S.PENDING

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

    # ------------------------------------------------------------------------------------------ bulk

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
        try:
            rows, existing = await self._write_claimed(items, purpose, campaign_id)
        except IntegrityError:  # a concurrent writer of the same keys (a reclaimed entry): one by one
            return await self._send_each(items, purpose=purpose, campaign_id=campaign_id)
        if existing:
            report["existing"] += existing
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
        report.update(await self._sender.send_claimed(claimed, check_opt_out=False))
        return report

    async def _write_claimed(
        self, items: Sequence[BatchItem], purpose: Purpose, campaign_id: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        """One transaction: a claimed (or ``suppressed``) row for every item whose key is new.  Returns the
        rows' values and how many keys were already in the ledger."""
        now = self.clock()
        keys = [f"{item.key}:1" for item in items]
        rows: list[dict[str, Any]] = []
        existing = 0
        async with self._ledger.sessions.begin() as s:
            taken = set(
                (
                    await s.execute(select(SmsOutbound.dedup_key).where(SmsOutbound.dedup_key.in_(keys)))
                ).scalars()
            )
            opted = await self._optouts.opted_out_among([item.to for item in items], session=s)
            for item, dedup in zip(items, keys, strict=True):
                if dedup in taken:
                    existing += 1
                    continue
                taken.add(dedup)
                status = S.SUPPRESSED if item.to in opted else S.SENDING
                rows.append(
                    new_row(
                        uuid.uuid4().hex,
                        item.to,
                        item.message,
                        purpose,
                        status,
                        now,
                        provider=self._provider.name,
                        campaign_id=campaign_id,
                        dedup_key=dedup,
                        lease=self._ledger.lease,
                    )
                )
            if rows:
                await s.execute(insert(SmsOutbound), rows)
        return rows, existing

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

    # ------------------------------------------------------------------------------------------ the parts

    async def dispatch(self, ledger_id: str, *, due_only: bool = False) -> LedgerEntry | None:
        """Claim a pending row and call the provider once (``Sender.dispatch``)."""
        return await self._sender.dispatch(ledger_id, due_only=due_only)

    async def get(self, ledger_id: str) -> LedgerEntry | None:
        return await self._ledger.get(ledger_id)

    async def get_many(self, ids: Sequence[str]) -> list[LedgerEntry]:
        return await self._ledger.get_many(ids)

    async def entries(
        self, *, recipient: str | None = None, campaign_id: str | None = None
    ) -> list[LedgerEntry]:
        return await self._ledger.entries(recipient=recipient, campaign_id=campaign_id)

    async def events(self, ledger_id: str) -> list[tuple[int, str, str | None, int | None, str]]:
        """(attempt, provider status, provider sid, error code, source) in arrival order."""
        return await self._ledger.events(ledger_id)

    async def campaign_counts(self, campaign_id: str) -> dict[str, int]:
        """Rows per status for one broadcast campaign."""
        return await self._ledger.campaign_counts(campaign_id)

    async def apply(self, update_: StatusUpdate, *, source: str = "callback") -> str:
        """Apply a status report (``StatusUpdates.apply``): ``applied``, ``duplicate``, ``stale``,
        ``ignored`` or ``unknown_ledger``."""
        return await self._status.apply(update_, source=source)

    async def reconcile(self, ledger_id: str) -> LedgerEntry | None:
        """Settle an ``unknown`` row: adopt the provider's message if it exists, else resend it."""
        return await self._recovery.reconcile(ledger_id)

    async def run_due(self, limit: int = 100) -> int:
        """One recovery sweep (``Recovery.run_due``).  Safe in every worker."""
        return await self._recovery.run_due(limit)

    def start(self) -> None:
        """Start the background sweep (recovery after a restart, retries, reconciliation)."""
        self._recovery.start()

    async def stop(self) -> None:
        await self._recovery.stop()
