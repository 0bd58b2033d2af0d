"""Sending: claim a ``pending`` row and call the provider for it (``dispatch``), or call it for rows a bulk
writer wrote already claimed (``send_claimed``); ``status.py`` records the answers, one transaction a batch.

* The claim (pending → sending, attempts + 1, leased) is committed before the HTTP request: a row still
  ``pending`` after a crash was certainly never sent; a ``sending`` row whose lease expired may have been
  and is reconciled (``recovery.py``), never resent blind.
* The opt-out list is checked again right before each provider call: a number that opted out since its row
  was written gets nothing (``suppressed``), except the one opt-out confirmation.
* The status-callback URL carries the ledger id and the attempt number (``?lid=...&n=...``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import update

from bot.core.metrics import Metrics
from sms_gateway.config import SmsSettings
from sms_gateway.ledger import Ledger, LedgerEntry
from sms_gateway.models import LedgerStatus, Purpose, SmsOutbound
from sms_gateway.optout import OptOutStore
from sms_gateway.provider import BatchSender, OutboundRequest, SendReceipt, SmsProvider
from sms_gateway.status import StatusUpdates

S = LedgerStatus


class Sender:
    def __init__(
        self,
        ledger: Ledger,
        settings: SmsSettings,
        provider: SmsProvider,
        status: StatusUpdates,
        optouts: OptOutStore,
        metrics: Metrics,
    ) -> None:
        self._ledger = ledger
        self._s = settings
        self._provider = provider
        self._status = status
        self._optouts = optouts
        self._metrics = metrics

    def status_url(self, ledger_id: str, attempt: int) -> str:
        return f"{self._s.public_base_url}/sms/{self._provider.name}/status?lid={ledger_id}&n={attempt}"

    async def dispatch(self, ledger_id: str, *, due_only: bool = False) -> LedgerEntry | None:
        """Claim a pending row and call the provider once.  A row someone else claimed is left alone."""
        now = self._ledger.clock()
        conditions = [SmsOutbound.id == ledger_id, SmsOutbound.status == S.PENDING]
        if due_only:
            conditions.append(SmsOutbound.next_attempt_at <= now)
        async with self._ledger.sessions.begin() as s:
            claimed = await s.execute(
                update(SmsOutbound)
                .where(*conditions)
                .values(
                    status=S.SENDING,
                    attempts=SmsOutbound.attempts + 1,
                    lease_until=now + self._ledger.lease,
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
        await self.send_claimed([(entry, throttle_retries)], check_opt_out=True)
        return await self._ledger.get(ledger_id)

    def _request(self, entry: LedgerEntry) -> OutboundRequest:
        return OutboundRequest(
            entry.id, entry.attempts, entry.recipient, entry.body, self.status_url(entry.id, entry.attempts),
            campaign_id=entry.campaign_id,
        )  # fmt: skip

    async def send_claimed(
        self, claimed: Sequence[tuple[LedgerEntry, int]], *, check_opt_out: bool
    ) -> Counter[str]:
        """Call the provider for rows this caller claimed (``sending``; with their throttle-retry counts),
        all at once, and record every outcome in one transaction.  Returns the count per outcome."""
        report: Counter[str] = Counter()
        if check_opt_out:
            claimed = await self._suppress_opted_out(claimed, report)
        if not claimed:
            return report
        results: Sequence[SendReceipt | BaseException]
        if len(claimed) > 1 and isinstance(self._provider, BatchSender):
            results = await self._provider.send_batch([self._request(entry) for entry, _ in claimed])
        else:
            results = await asyncio.gather(
                *(self._provider.send(self._request(entry)) for entry, _ in claimed), return_exceptions=True
            )
        for result in results:  # cancelled, or dying: the rows stay "sending" and are reconciled later
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
        report.update(await self._status.record_sends(claimed, results))
        return report

    async def _suppress_opted_out(
        self, claimed: Sequence[tuple[LedgerEntry, int]], report: Counter[str]
    ) -> list[tuple[LedgerEntry, int]]:
        """Claimed rows to numbers that opted out since they were written become ``suppressed`` (counted in
        ``report``); returns the others.  The opt-out confirmation itself is always sent."""
        opted = await self._optouts.opted_out_among(
            e.recipient for e, _ in claimed if e.purpose != Purpose.OPT_OUT_CONFIRMATION
        )
        keep: list[tuple[LedgerEntry, int]] = []
        for entry, throttle_retries in claimed:
            if entry.recipient not in opted or entry.purpose == Purpose.OPT_OUT_CONFIRMATION:
                keep.append((entry, throttle_retries))
                continue
            await self._ledger.move(
                entry.id, entry.attempts, (S.SENDING,), status=S.SUPPRESSED, error_message="opted_out"
            )
            await self._metrics.inc(
                "govbot_sms_outbound_total", {"purpose": entry.purpose, "result": "suppressed"}
            )
            report["suppressed"] += 1
        return keep
