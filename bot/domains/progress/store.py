"""Persistence of the progress feature: bindings, the notification ledger, the feed cursor, the audit log,
and pending verifications (Redis)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.approval.model import Case
from bot.core.clock import utcnow
from bot.domains.progress.models import (
    ProgressAudit,
    ProgressBinding,
    ProgressFeedCursor,
    ProgressNotification,
)


class ProgressStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    # -- bindings ---------------------------------------------------------------------------------------

    async def binding(self, sender_id: str, ticket_no: str) -> ProgressBinding | None:
        async with self.sessions() as session:
            return await session.scalar(
                select(ProgressBinding).where(
                    ProgressBinding.sender_id == sender_id, ProgressBinding.ticket_no == ticket_no
                )
            )

    async def bindings_of(self, sender_id: str, limit: int = 5) -> list[ProgressBinding]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(ProgressBinding)
                .where(ProgressBinding.sender_id == sender_id)
                .order_by(ProgressBinding.updated_at.desc(), ProgressBinding.id.desc())
                .limit(limit)
            )
            return list(rows)

    async def bind(
        self, sender_id: str, case: Case, *, channel: str, address: str, verified_by: str
    ) -> ProgressBinding:
        """Record that ``sender_id`` may see ``case`` (idempotent; an earlier opt-out of notifications
        stays as it was)."""
        now = utcnow()
        for _ in range(2):
            try:
                async with self.sessions.begin() as session:
                    row = await session.scalar(
                        select(ProgressBinding).where(
                            ProgressBinding.sender_id == sender_id,
                            ProgressBinding.ticket_no == case.ticket_no,
                        )
                    )
                    if row is None:
                        row = ProgressBinding(
                            sender_id=sender_id,
                            ticket_no=case.ticket_no,
                            channel=channel,
                            address=address,
                            verified_by=verified_by,
                            notify=True,
                            created_at=now,
                        )
                        session.add(row)
                    row.item_code = case.item_code[:32]
                    row.item_name = case.item_name[:200]
                    row.window_phone = case.window_phone[:32]
                    row.updated_at = now
                return row
            except IntegrityError:
                continue  # a concurrent turn inserted it first: update that row
        raise RuntimeError("could not bind the case")

    async def touch(self, binding_id: int, case: Case) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(ProgressBinding)
                .where(ProgressBinding.id == binding_id)
                .values(
                    item_name=case.item_name[:200], window_phone=case.window_phone[:32], updated_at=utcnow()
                )
            )

    async def set_notify(self, sender_id: str, notify: bool, ticket_no: str | None = None) -> int:
        """Switch notifications on/off for one of the sender's cases or all of them; returns rows changed."""
        stmt = (
            update(ProgressBinding)
            .where(ProgressBinding.sender_id == sender_id, ProgressBinding.notify != notify)
            .values(notify=notify, updated_at=utcnow())
        )
        if ticket_no:
            stmt = stmt.where(ProgressBinding.ticket_no == ticket_no)
        async with self.sessions.begin() as session:
            result = await session.execute(stmt)
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def subscribers(self, ticket_nos: Sequence[str]) -> dict[str, list[ProgressBinding]]:
        if not ticket_nos:
            return {}
        async with self.sessions() as session:
            rows = await session.scalars(
                select(ProgressBinding)
                .where(ProgressBinding.ticket_no.in_(list(ticket_nos)), ProgressBinding.notify.is_(True))
                .order_by(ProgressBinding.id)
            )
            out: dict[str, list[ProgressBinding]] = {}
            for row in rows:
                out.setdefault(row.ticket_no, []).append(row)
            return out

    # -- notification ledger ----------------------------------------------------------------------------

    async def claim(
        self,
        ticket_no: str,
        status: str,
        status_round: int,
        sender_id: str,
        *,
        state: str,
        lease_until: datetime | None = None,
    ) -> int | None:
        """Insert the (ticket, status, round, subscriber) row; its id when this call created it, None when it
        already existed (another worker, an earlier run, or a lookup that showed this status)."""
        now = utcnow()
        try:
            async with self.sessions.begin() as session:
                row = ProgressNotification(
                    ticket_no=ticket_no,
                    status=status,
                    status_round=status_round,
                    sender_id=sender_id,
                    state=state,
                    attempts=0,
                    lease_until=lease_until,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                await session.flush()
                return row.id
        except IntegrityError:
            return None

    async def reclaim(self, row_id: int, expected_state: str, lease_until: datetime, now: datetime) -> bool:
        """Take over a due retry or an expired lease (compare-and-set, so one worker wins)."""
        cond = [ProgressNotification.id == row_id, ProgressNotification.state == expected_state]
        if expected_state == "sending":
            cond.append(ProgressNotification.lease_until < now)
        else:
            cond.append(ProgressNotification.next_attempt_at <= now)
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(ProgressNotification)
                .where(*cond)
                .values(state="sending", lease_until=lease_until, updated_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def due(self, now: datetime, limit: int = 50) -> list[ProgressNotification]:
        async with self.sessions() as session:
            retry = await session.scalars(
                select(ProgressNotification)
                .where(ProgressNotification.state == "retry", ProgressNotification.next_attempt_at <= now)
                .order_by(ProgressNotification.id)
                .limit(limit)
            )
            stale = await session.scalars(
                select(ProgressNotification)
                .where(ProgressNotification.state == "sending", ProgressNotification.lease_until < now)
                .order_by(ProgressNotification.id)
                .limit(limit)
            )
            return [*retry, *stale]

    async def finish(self, row_id: int, **values: object) -> None:
        values.setdefault("updated_at", utcnow())
        async with self.sessions.begin() as session:
            await session.execute(
                update(ProgressNotification).where(ProgressNotification.id == row_id).values(**values)
            )

    async def notification(self, row_id: int) -> ProgressNotification | None:
        async with self.sessions() as session:
            return await session.get(ProgressNotification, row_id)

    # -- feed cursor ------------------------------------------------------------------------------------

    async def cursor(self, name: str) -> str | None:
        async with self.sessions() as session:
            row = await session.get(ProgressFeedCursor, name)
            return row.cursor if row else None

    async def advance_cursor(self, name: str, old: str | None, new: str | None) -> bool:
        """Move the cursor from ``old`` to ``new`` unless another worker moved it meanwhile."""
        if new is None or new == old:
            return False
        now = utcnow()
        if old is None:
            try:
                async with self.sessions.begin() as session:
                    session.add(ProgressFeedCursor(name=name, cursor=new, updated_at=now))
                return True
            except IntegrityError:
                return False
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(ProgressFeedCursor)
                .where(ProgressFeedCursor.name == name, ProgressFeedCursor.cursor == old)
                .values(cursor=new, updated_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- audit ------------------------------------------------------------------------------------------

    async def audit(
        self,
        *,
        channel: str,
        sender_id: str,
        ticket_no: str | None,
        action: str,
        result: str,
        detail: str | None = None,
    ) -> None:
        async with self.sessions.begin() as session:
            session.add(
                ProgressAudit(
                    created_at=utcnow(),
                    channel=channel[:16],
                    sender_id=sender_id[:80],
                    ticket_no=ticket_no,
                    action=action,
                    result=result,
                    detail=detail[:120] if detail else None,
                )
            )


class PendingVerifications:
    """The ticket a citizen asked about while we wait for their phone digits (Redis, with a TTL)."""

    def __init__(self, redis: aioredis.Redis, ttl: float = 600.0, prefix: str = "progress:pending") -> None:
        self._redis = redis
        self._ttl_ms = max(1, int(ttl * 1000))
        self._prefix = prefix

    def _key(self, sender_id: str) -> str:
        return f"{self._prefix}:{hashlib.sha256(sender_id.encode()).hexdigest()[:32]}"

    async def put(self, sender_id: str, ticket_no: str) -> None:
        await self._redis.set(self._key(sender_id), json.dumps({"ticket_no": ticket_no}), px=self._ttl_ms)

    async def get(self, sender_id: str) -> str | None:
        raw = await self._redis.get(self._key(sender_id))
        if not raw:
            return None
        try:
            return str(json.loads(raw)["ticket_no"])
        except (ValueError, KeyError, TypeError):
            return None

    async def clear(self, sender_id: str) -> None:
        await self._redis.delete(self._key(sender_id))
