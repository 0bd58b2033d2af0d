"""The opt-out list: numbers that must not receive anything but the one opt-out confirmation."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.core.masking import mask_phone
from sms_gateway.models import SmsOptOut

log = logging.getLogger(__name__)


class OptOutStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def is_opted_out(self, phone: str, session: AsyncSession | None = None) -> bool:
        stmt = select(SmsOptOut.opted_out).where(SmsOptOut.phone == phone)
        if session is not None:
            return bool((await session.execute(stmt)).scalar_one_or_none())
        async with self._sessions() as s:
            return bool((await s.execute(stmt)).scalar_one_or_none())

    async def opted_out_among(self, phones: Iterable[str], session: AsyncSession | None = None) -> set[str]:
        """The numbers of ``phones`` that are opted out (queried 500 at a time)."""
        items = sorted(set(phones))
        out: set[str] = set()
        async with contextlib.AsyncExitStack() as stack:
            s = session if session is not None else await stack.enter_async_context(self._sessions())
            for i in range(0, len(items), 500):
                stmt = select(SmsOptOut.phone).where(
                    SmsOptOut.phone.in_(items[i : i + 500]), SmsOptOut.opted_out.is_(True)
                )
                out |= set((await s.execute(stmt)).scalars())
        return out

    async def opt_out(
        self,
        phone: str,
        *,
        source: str,
        keyword: str | None = None,
        error_code: int | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Mark ``phone`` opted out.  True when it was not opted out before (a new opt-out)."""
        now = now or utcnow()
        values = {
            "opted_out": True,
            "source": source,
            "keyword": keyword,
            "error_code": error_code,
            "confirmation_ledger_id": None,
            "changed_at": now,
        }
        changed = await self._set(phone, values, only_if_opted_out=False)
        if changed:
            log.info("sms opt-out", extra={"phone": mask_phone(phone), "source": source, "code": error_code})
        return changed

    async def opt_in(self, phone: str, *, source: str = "keyword", now: datetime | None = None) -> bool:
        """Clear an opt-out.  True when the number was opted out."""
        values = {
            "opted_out": False,
            "source": source,
            "keyword": None,
            "error_code": None,
            "confirmation_ledger_id": None,
            "changed_at": now or utcnow(),
        }
        changed = await self._set(phone, values, only_if_opted_out=True)
        if changed:
            log.info("sms opt-in", extra={"phone": mask_phone(phone), "source": source})
        return changed

    async def _set(self, phone: str, values: dict[str, object], *, only_if_opted_out: bool) -> bool:
        target = bool(values["opted_out"])
        for _ in range(3):
            async with self._sessions.begin() as s:
                result = await s.execute(
                    update(SmsOptOut)
                    .where(SmsOptOut.phone == phone, SmsOptOut.opted_out != target)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    return True
                exists = (
                    await s.execute(select(SmsOptOut.phone).where(SmsOptOut.phone == phone))
                ).scalar_one_or_none()
                if exists is not None or only_if_opted_out:
                    return False
            try:
                async with self._sessions.begin() as s:
                    s.add(SmsOptOut(phone=phone, **values))
                return True
            except IntegrityError:  # a concurrent writer created the row: decide again on it
                continue
        return False
