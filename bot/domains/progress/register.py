"""The case register of 电子监察: every case of the approval backend's change feed.

The notifier reads the feed to push news to subscribers and skips cases nobody subscribed to; the register
reads the same feed with a cursor of its own (``supervision``) and keeps one row per case in
``supervision_cases``: the current status, when the case was first seen, accepted and completed (from the
changes' own times), and — fetched once per case — its item, window and, when the backend states them, the
promised time limit and date.

Recording is a merge (earliest first-seen, accepted and completed times; latest status; rows locked while
merged), so a batch read twice — by two gateway workers, or again after a crash before the cursor moved —
changes nothing.  A case whose details cannot be fetched is registered without them and filled in by a
later round; only when no detail comes back at all (the backend is down) does the cursor stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.approval.backend import ApprovalBackend, ApprovalUnavailable
from bot.adapters.approval.model import Case, CaseStatus, StatusChange
from bot.core.clock import as_utc
from bot.domains.progress.models import SupervisionCase
from bot.domains.progress.store import ProgressStore

log = logging.getLogger(__name__)

CURSOR_NAME = "supervision"
TICKET_MAX = 15  # the column's width (ticket numbers are 15 digits)
COMPLETED = frozenset({CaseStatus.COMPLETED, CaseStatus.COLLECTED})


@dataclass
class RegisterReport:
    changes: int = 0
    added: int = 0
    has_more: bool = False
    error: str | None = None


@dataclass
class _Seen:
    """What one batch says about one case."""

    status: CaseStatus
    status_at: datetime
    first: datetime
    accepted: datetime | None = None
    completed: datetime | None = None

    def add(self, change: StatusChange, at: datetime) -> None:
        if at >= self.status_at:
            self.status, self.status_at = change.status, at
        self.first = min(self.first, at)
        if change.status is CaseStatus.ACCEPTED:
            self.accepted = at if self.accepted is None else min(self.accepted, at)
        if change.status in COMPLETED:
            self.completed = at if self.completed is None else min(self.completed, at)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(as_utc(a), as_utc(b))


def _apply_details(row: SupervisionCase, case: Case) -> None:
    row.item_code = case.item_code[:32]
    row.item_name = case.item_name[:200]
    row.window = case.window[:100]
    row.time_limit_days = case.time_limit_days
    row.promised_on = case.promised_on
    row.accepted_at = _earliest(row.accepted_at, case.accepted_at)
    row.details = True


class CaseRegister:
    def __init__(
        self,
        backend: ApprovalBackend,
        sessions: async_sessionmaker[AsyncSession],
        *,
        batch: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cursor_name: str = CURSOR_NAME,
    ) -> None:
        self.backend = backend
        self.sessions = sessions
        self.store = ProgressStore(sessions)
        self.batch = batch
        self.clock = clock
        self.cursor_name = cursor_name

    async def run_once(self) -> RegisterReport:
        report = RegisterReport()
        cursor = await self.store.cursor(self.cursor_name)
        try:
            batch = await self.backend.changes_since(cursor, self.batch)
            report.changes = len(batch.changes)
            report.added = await self.record(batch.changes)
        except ApprovalUnavailable as exc:
            log.warning("case register: backend unavailable", extra={"reason": exc.reason})
            report.error = exc.reason
            return report
        report.has_more = batch.has_more
        await self.store.advance_cursor(self.cursor_name, cursor, batch.next_cursor)
        await self.fill_details()
        return report

    async def fill_details(self, limit: int = 20) -> int:
        """Fetch the item and window of cases registered without them (their fetch failed); returns how
        many were filled.  Failures wait for the next round."""
        async with self.sessions() as session:
            tickets = list(
                await session.scalars(
                    select(SupervisionCase.ticket_no)
                    .where(SupervisionCase.details.is_(False))
                    .order_by(SupervisionCase.updated_at)
                    .limit(limit)
                )
            )
        filled = 0
        for ticket in tickets:
            try:
                case = await self.backend.get_case(ticket)
            except ApprovalUnavailable:
                break  # the backend is struggling: try again next round
            async with self.sessions.begin() as session:
                row = await session.get(SupervisionCase, ticket, with_for_update=True)
                if row is None or row.details:
                    continue
                if case is not None:
                    _apply_details(row, case)
                    filled += 1
                row.updated_at = self.clock().astimezone(UTC)
        return filled

    async def record(self, changes: Sequence[StatusChange]) -> int:
        """Merge ``changes`` into the register; returns how many cases were new.  Raises
        :class:`ApprovalUnavailable` (having written nothing) when a new case's details cannot be fetched."""
        now = self.clock().astimezone(UTC)
        seen: dict[str, _Seen] = {}
        for change in changes:
            if not change.ticket_no or len(change.ticket_no) > TICKET_MAX:
                log.warning("case register: ticket number of an unexpected length skipped")
                continue
            at = as_utc(change.changed_at) if change.changed_at is not None else now
            entry = seen.get(change.ticket_no)
            if entry is None:
                seen[change.ticket_no] = entry = _Seen(change.status, at, at)
            entry.add(change, at)
        if not seen:
            return 0
        async with self.sessions() as session:
            known = {
                r.ticket_no: r.details
                for r in await session.scalars(
                    select(SupervisionCase).where(SupervisionCase.ticket_no.in_(list(seen)))
                )
            }
        details: dict[str, Case | None] = {}
        wanted = [t for t in seen if not known.get(t, False)]
        failed: ApprovalUnavailable | None = None
        for ticket in wanted:
            try:
                details[ticket] = await self.backend.get_case(ticket)
            except ApprovalUnavailable as exc:  # this case only (a bad body …): registered without details
                failed = exc
        if failed is not None and wanted and not details:
            raise failed  # nothing came back at all: the backend is down; keep the cursor, read again
        for attempt in range(2):
            try:
                return await self._merge(seen, details, now)
            except IntegrityError:  # another worker inserted one of these cases meanwhile: merge again
                if attempt:
                    raise
        return 0

    async def _merge(self, seen: dict[str, _Seen], details: dict[str, Case | None], now: datetime) -> int:
        added = 0
        async with self.sessions.begin() as session:
            rows = {  # locked (PostgreSQL): a slower worker's older batch cannot roll a status back
                r.ticket_no: r
                for r in await session.scalars(
                    select(SupervisionCase).where(SupervisionCase.ticket_no.in_(list(seen))).with_for_update()
                )
            }
            for ticket, entry in seen.items():
                row = rows.get(ticket)
                if row is None:
                    row = SupervisionCase(
                        ticket_no=ticket,
                        item_code="",
                        item_name="",
                        window="",
                        status=entry.status.value,
                        status_at=entry.status_at,
                        first_seen_at=entry.first,
                        details=False,
                    )
                    session.add(row)
                    added += 1
                elif entry.status_at >= as_utc(row.status_at):
                    row.status, row.status_at = entry.status.value, entry.status_at
                row.first_seen_at = min(as_utc(row.first_seen_at), entry.first)
                row.accepted_at = _earliest(row.accepted_at, entry.accepted)
                row.completed_at = _earliest(row.completed_at, entry.completed)
                case = details.get(ticket)
                if case is not None and not row.details:
                    _apply_details(row, case)
                row.updated_at = now
        return added
