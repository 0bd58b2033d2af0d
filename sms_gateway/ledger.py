"""The outbound ledger's rows (``sms_outbound``) as the outbox's parts share them: ``LedgerEntry`` (what a
caller sees of a row), the column values of a new row, the reads, and the one kind of write every state
change goes through.

* Every state change is one conditional UPDATE (``WHERE status IN (...) AND attempts = n``, as
  ``move_in``), so callbacks that arrive before the send call returns, repeated callbacks, late callbacks
  of an earlier attempt and several gateway workers sweeping at once cannot move a row backwards or send it
  twice.
* ``Ledger`` holds what the parts share: the session factory, the clock (tests replace it through
  ``SmsOutbox.clock``) and the lease of a claim (``sending`` until ``lease_until``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.masking import mask_phone
from bot.core.phone import to_e164
from sms_gateway.compose import SmsMessage
from sms_gateway.models import FINAL_STATUSES, LedgerStatus, Purpose, SmsDeliveryEvent, SmsOutbound, Via

# One logger for the whole outbox (writing, status updates, recovery), named as before the split.
log = logging.getLogger("sms_gateway.outbox")

S = LedgerStatus


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
        fields: dict[str, Any] = {name: values.get(name) for name in _ENTRY_FIELDS}
        return cls(**fields)

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


_ENTRY_FIELDS = tuple(LedgerEntry.__dataclass_fields__)


def new_row(
    lid: str,
    phone: str,
    msg: SmsMessage,
    purpose: Purpose,
    status: LedgerStatus,
    now: datetime,
    *,
    provider: str,
    campaign_id: str | None,
    dedup_key: str | None,
    reply_to: str | None = None,
    part: int = 1,
    parts: int = 1,
    via: Via = Via.API,
    lease: timedelta,
    pending_after: timedelta = timedelta(0),
) -> dict[str, Any]:
    """The column values of a new ledger row: ``sending`` rows are claimed (attempt 1, leased for ``lease``),
    ``pending`` rows are due for the sweep after ``pending_after``."""
    return {
        "id": lid,
        "provider": provider,
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
        "next_attempt_at": now + pending_after if status is S.PENDING else None,
        "lease_until": now + lease if status is S.SENDING else None,
        "error_message": "opted_out" if status is S.SUPPRESSED else None,
        "created_at": now,
        "updated_at": now,
        "finished_at": now if status is S.SUPPRESSED else None,
    }


def log_attempt(message: str, entry: LedgerEntry, attempt: int, code: int | None) -> None:
    log.warning(
        message,
        extra={"ledger_id": entry.id, "to": mask_phone(entry.recipient), "attempt": attempt, "code": code},
    )


async def move_in(
    s: AsyncSession,
    ledger_id: str,
    attempt: int,
    from_statuses: Sequence[LedgerStatus],
    now: datetime,
    **values: Any,
) -> bool:
    """Change one attempt of one row if it is still in one of ``from_statuses`` (in the caller's
    transaction); False when it is not (someone else moved it first)."""
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


class Ledger:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime], lease: timedelta
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.lease = lease

    async def move(
        self, ledger_id: str, attempt: int, from_statuses: Sequence[LedgerStatus], **values: Any
    ) -> bool:
        """``move_in`` in a transaction of its own."""
        async with self.sessions.begin() as s:
            return await move_in(s, ledger_id, attempt, from_statuses, self.clock(), **values)

    async def get(self, ledger_id: str) -> LedgerEntry | None:
        async with self.sessions() as s:
            row = await s.get(SmsOutbound, ledger_id)
            return LedgerEntry.of(row) if row else None

    async def get_many(self, ids: Sequence[str]) -> list[LedgerEntry]:
        async with self.sessions() as s:
            rows = (await s.execute(select(SmsOutbound).where(SmsOutbound.id.in_(ids)))).scalars().all()
        order = {lid: i for i, lid in enumerate(ids)}
        return [LedgerEntry.of(r) for r in sorted(rows, key=lambda r: order[r.id])]

    async def by_keys(self, keys: Sequence[str | None]) -> list[LedgerEntry]:
        async with self.sessions() as s:
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

    async def entries(
        self, *, recipient: str | None = None, campaign_id: str | None = None
    ) -> list[LedgerEntry]:
        stmt = select(SmsOutbound).order_by(SmsOutbound.created_at, SmsOutbound.part)
        if recipient:
            stmt = stmt.where(SmsOutbound.recipient == to_e164(recipient))
        if campaign_id:
            stmt = stmt.where(SmsOutbound.campaign_id == campaign_id)
        async with self.sessions() as s:
            return [LedgerEntry.of(r) for r in (await s.execute(stmt)).scalars().all()]

    async def events(self, ledger_id: str) -> list[tuple[int, str, str | None, int | None, str]]:
        """(attempt, provider status, provider sid, error code, source) in arrival order."""
        async with self.sessions() as s:
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
