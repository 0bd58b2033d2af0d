"""督办单: a note from the center's supervisors to a department, optionally about one case.

It reaches the department in the console: the department's staff see their open 督办单 (on their home page
and on 督办单), sign for it (签收) and answer it (反馈); the supervisor sees who signed and what was answered.
Each step is one conditional UPDATE, so two people clicking at once cannot both sign or both answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.domains.progress.models import SupervisionUrge

OPEN, SIGNED, ANSWERED = "open", "signed", "answered"
LABELS = {OPEN: "待签收", SIGNED: "已签收", ANSWERED: "已反馈"}
NOTE_MAX = 500


class UrgeError(ValueError):
    """A 督办单 that is not there for this department, or not in the state the step needs."""


@dataclass(frozen=True)
class UrgePage:
    rows: Sequence[SupervisionUrge]
    total: int


class UrgeBook:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(self, *, department: str, ticket_no: str, note: str, by: str) -> SupervisionUrge:
        row = SupervisionUrge(
            department=department.strip()[:100],
            ticket_no=ticket_no.strip()[:15],
            note=note.strip()[:NOTE_MAX],
            created_by=by[:64],
            created_at=utcnow(),
            status=OPEN,
        )
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def get(self, urge_id: int, department: str | None = None) -> SupervisionUrge | None:
        """The 督办单, when ``department`` is None (every department) or it was sent to ``department``."""
        async with self.sessions() as session:
            row = await session.get(SupervisionUrge, urge_id)
        if row is None or (department is not None and row.department != department):
            return None
        return row

    async def search(
        self, *, department: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> UrgePage:
        query = select(SupervisionUrge)
        if department is not None:
            query = query.where(SupervisionUrge.department == department)
        if status:
            query = query.where(SupervisionUrge.status == status)
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = await session.scalars(
                query.order_by(SupervisionUrge.created_at.desc(), SupervisionUrge.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return UrgePage(list(rows), total)

    async def open_count(self, department: str) -> int:
        async with self.sessions() as session:
            return (
                await session.scalar(
                    select(func.count())
                    .select_from(SupervisionUrge)
                    .where(SupervisionUrge.department == department, SupervisionUrge.status != ANSWERED)
                )
                or 0
            )

    async def sign(self, urge_id: int, *, department: str | None, by: str) -> None:
        await self._step(urge_id, department, (OPEN,), status=SIGNED, signed_by=by[:64], signed_at=utcnow())

    async def answer(self, urge_id: int, *, department: str | None, by: str, text: str) -> None:
        """Answer (反馈); an unsigned 督办单 is signed by the same person at the same time."""
        text = text.strip()
        if not text or len(text) > NOTE_MAX:
            raise UrgeError(f"请填写反馈（{NOTE_MAX} 字以内）")
        row = await self.get(urge_id, department)
        if row is None:
            raise UrgeError("没有这张督办单")
        now = utcnow()
        values: dict[str, object] = {
            "status": ANSWERED,
            "answer": text,
            "answered_by": by[:64],
            "answered_at": now,
        }
        if row.status == OPEN:
            values |= {"signed_by": by[:64], "signed_at": now}
        await self._step(urge_id, department, (row.status,) if row.status != ANSWERED else (), **values)

    async def _step(
        self, urge_id: int, department: str | None, allowed: tuple[str, ...], **values: object
    ) -> None:
        where = [SupervisionUrge.id == urge_id, SupervisionUrge.status.in_(allowed)]
        if department is not None:
            where.append(SupervisionUrge.department == department)
        async with self.sessions.begin() as session:
            result = await session.execute(update(SupervisionUrge).where(*where).values(**values))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise UrgeError("这张督办单已被他人处理或不属于本部门，请刷新后再看")
