"""The dashboard's figures: SQL aggregates over a period of local days (the center's time zone), each a
:class:`Table` (the HTML table under a chart, its XLSX export and the chart's data are the same rows).

Days are bucketed in SQL: ``date(at, '+8 hours')`` on SQLite, ``date(timezone(tz, at))`` on PostgreSQL.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.spreadsheet import safe_cell
from bot.domains.complaints.models import Complaint
from bot.gateway.models import ConversationTurn
from knowledge_base.models import KbItem, KbUnanswered
from sms_gateway.models import SmsOptOut, SmsOutbound

CHANNELS = {"wechat": "微信", "sms": "短信"}
OUTCOMES = {"kb": "知识库解答", "fallback": "兜底回复", "handoff": "转人工/留言", "other": "其他"}
RATING_LABELS = {1: "1 很不满意", 2: "2 不满意", 3: "3 基本满意", 4: "4 满意", 5: "5 非常满意"}
MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    start: date  # first local day
    end: date  # last local day (inclusive)
    tz: ZoneInfo
    today: date

    @classmethod
    def parse(cls, raw_from: str, raw_to: str, tz: ZoneInfo, today: date) -> tuple[Period, dict[str, str]]:
        """The period asked for (default: the last 30 days), and errors by field (in Chinese)."""
        errors: dict[str, str] = {}
        end = _date(raw_to, today, "to", errors)
        start = _date(raw_from, end - timedelta(days=29), "from", errors)
        if not errors and start > end:
            errors["from"] = "开始日期不能晚于结束日期"
        if not errors and (end - start).days >= MAX_DAYS:
            errors["from"] = f"时间段最长 {MAX_DAYS} 天"
        if errors:
            end, start = today, today - timedelta(days=29)
        return cls(start, end, tz, today), errors

    # In UTC: SQLite keeps the UTC wall time of each timestamp, so bounds must be UTC too.
    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), self.tz).astimezone(UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), self.tz).astimezone(UTC)

    def days(self) -> list[str]:
        return [(self.start + timedelta(days=n)).isoformat() for n in range((self.end - self.start).days + 1)]

    def contains(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.since, column < self.until)


def _date(raw: str, default: date, name: str, errors: dict[str, str]) -> date:
    raw = (raw or "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "请输入日期，格式如 2026-01-31"
        return default


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    chart: str = "line"  # line | bar | pie | none


def local_day(column: Any, dialect: str, tz: ZoneInfo) -> Any:
    """The local date of a timestamp column, in SQL."""
    if dialect == "postgresql":
        return func.date(func.timezone(tz.key, column))
    offset = datetime.now(tz).utcoffset() or timedelta()
    hours = int(offset.total_seconds() // 3600)
    return func.date(column, f"{hours:+d} hours")


def _key(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def rate(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f}%" if whole else "—"


class Reports:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _rows(self, build: Any) -> Sequence[Any]:
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            return (await session.execute(build(dialect))).all()

    async def dashboard(self, period: Period) -> dict[str, Table]:
        tables = [
            await self.messages(period),
            await self.outcomes(period),
            await self.top_items(period),
            await self.unanswered(period),
            await self.complaints(period),
            await self.ratings(period),
            await self.sms(period),
        ]
        return {t.name: t for t in tables}

    async def _per_day(self, period: Period, column: Any, key: Any, where: Any, model: Any) -> Any:
        def build(dialect: str) -> Any:
            day = local_day(column, dialect, period.tz)
            return (
                select(day, key, func.count())
                .select_from(model)
                .where(period.contains(column), where)
                .group_by(day, key)
            )

        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for day, k, n in await self._rows(build):
            counts[_key(day)][str(k)] = int(n)
        return counts

    async def messages(self, period: Period) -> Table:
        counts = await self._per_day(
            period, ConversationTurn.at, ConversationTurn.channel, True, ConversationTurn
        )
        table = Table("messages", "每日消息量（按渠道）", ["日期", *CHANNELS.values(), "合计"])
        for day in period.days():
            row = [counts[day].get(c, 0) for c in CHANNELS]
            table.rows.append([day, *row, sum(counts[day].values())])
        return table

    async def outcomes(self, period: Period) -> Table:
        counts = await self._per_day(
            period, ConversationTurn.at, ConversationTurn.outcome, True, ConversationTurn
        )
        table = Table("outcomes", "每日答复方式", ["日期", *OUTCOMES.values()], chart="bar")
        for day in period.days():
            table.rows.append([day, *(counts[day].get(o, 0) for o in OUTCOMES)])
        return table

    async def top_items(self, period: Period) -> Table:
        n = func.count().label("n")

        def build(_dialect: str) -> Any:
            return (
                select(ConversationTurn.item_code, KbItem.name, KbItem.department, n)
                .select_from(ConversationTurn)
                .outerjoin(KbItem, KbItem.code == ConversationTurn.item_code)
                .where(
                    period.contains(ConversationTurn.at),
                    ConversationTurn.outcome == "kb",
                    ConversationTurn.item_code.is_not(None),
                )
                .group_by(ConversationTurn.item_code, KbItem.name, KbItem.department)
                .order_by(n.desc(), ConversationTurn.item_code)
                .limit(20)
            )

        table = Table(
            "top_items", "咨询最多的 20 个事项", ["事项编码", "事项名称", "部门", "次数"], chart="bar"
        )
        for code, name, department, count in await self._rows(build):
            table.rows.append([code, name or "（已删除的事项）", department or "", int(count)])
        return table

    async def unanswered(self, period: Period) -> Table:
        counts = await self._per_day(period, KbUnanswered.created_at, KbUnanswered.kind, True, KbUnanswered)
        table = Table("unanswered", "每日未答问题", ["日期", "未找到", "需选择", "合计"])
        for day in period.days():
            c = counts[day]
            table.rows.append([day, c.get("not_found", 0), c.get("choices", 0), sum(c.values())])
        return table

    async def complaints(self, period: Period) -> Table:
        """Per day: received, answered (replied), closed, and overdue (due that day and not answered by
        then); the last row sums the period and gives the on-time rate of answers."""
        table = Table("complaints", "每日投诉工单", ["日期", "收到", "答复", "办结", "超期"])
        received = await self._count_per_day(period, Complaint.received_at)
        replied = await self._count_per_day(period, Complaint.replied_at)
        closed = await self._count_per_day(period, Complaint.closed_at)
        overdue = await self._overdue_per_day(period)
        for day in period.days():
            table.rows.append([day, received[day], replied[day], closed[day], overdue[day]])
        return table

    async def _count_per_day(self, period: Period, column: Any) -> dict[str, int]:
        def build(dialect: str) -> Any:
            day = local_day(column, dialect, period.tz)
            return select(day, func.count()).where(period.contains(column)).group_by(day)

        counts: dict[str, int] = defaultdict(int)
        for day, n in await self._rows(build):
            counts[_key(day)] = int(n)
        return counts

    async def _overdue_per_day(self, period: Period) -> dict[str, int]:
        def build(dialect: str) -> Any:
            replied_day = local_day(Complaint.replied_at, dialect, period.tz)
            late = (Complaint.replied_at.is_(None)) | (replied_day > Complaint.due)
            return (
                select(Complaint.due, func.count())
                .where(Complaint.due >= period.start, Complaint.due <= period.end, late)
                .where(Complaint.due < period.today)
                .group_by(Complaint.due)
            )

        counts: dict[str, int] = defaultdict(int)
        for day, n in await self._rows(build):
            counts[_key(day)] = int(n)
        return counts

    async def on_time(self, period: Period, department: str | None = None) -> tuple[int, int]:
        """Complaints answered in the period: (answered by their due date, answered with a due date)."""

        def build(dialect: str) -> Any:
            replied_day = local_day(Complaint.replied_at, dialect, period.tz)
            q = select(
                func.count(), func.coalesce(func.sum(case((replied_day <= Complaint.due, 1), else_=0)), 0)
            ).where(period.contains(Complaint.replied_at), Complaint.due.is_not(None))
            if department is not None:
                q = q.where(Complaint.owner_department == department)
            return q

        ((answered, in_time),) = await self._rows(build)
        return int(in_time), int(answered)

    async def ratings(self, period: Period) -> Table:
        def build(_dialect: str) -> Any:
            return (
                select(Complaint.rating, func.count())
                .where(period.contains(Complaint.rated_at), Complaint.rating.is_not(None))
                .group_by(Complaint.rating)
            )

        counts = {int(r): int(n) for r, n in await self._rows(build)}
        table = Table("ratings", "好差评分布", ["评价", "件数"], chart="pie")
        for stars, label in RATING_LABELS.items():
            table.rows.append([label, counts.get(stars, 0)])
        return table

    async def sms(self, period: Period) -> Table:
        def build(dialect: str) -> Any:
            day = local_day(SmsOutbound.created_at, dialect, period.tz)
            return (
                select(day, SmsOutbound.status, func.count())
                .where(period.contains(SmsOutbound.created_at), SmsOutbound.purpose == "broadcast")
                .group_by(day, SmsOutbound.status)
            )

        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for day, status, n in await self._rows(build):
            counts[_key(day)][str(status)] = int(n)
        opt_outs = await self._per_day(
            period, SmsOptOut.changed_at, SmsOptOut.source, SmsOptOut.opted_out.is_(True), SmsOptOut
        )
        table = Table("sms", "群发短信", ["日期", "发送", "送达", "失败", "退订"])
        for day in period.days():
            c = counts[day]
            sent = sum(n for s, n in c.items() if s != "suppressed")
            table.rows.append(
                [day, sent, c.get("delivered", 0), c.get("failed", 0), sum(opt_outs[day].values())]
            )
        return table


def satisfaction(ratings: Table) -> tuple[int, int]:
    """(ratings of 4 or 5, all ratings) from the ratings table."""
    counts = [int(r[1]) for r in ratings.rows]
    return sum(counts[3:]), sum(counts)


def xlsx(sheets: Sequence[Table]) -> bytes:
    """A workbook with one sheet per table; every cell is text-safe (no formulas)."""
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    for table in sheets:
        ws = wb.create_sheet(table.title[:31])
        ws.append([safe_cell(c) for c in table.columns])
        for row in table.rows:
            ws.append([v if isinstance(v, int | float) else safe_cell(v) for v in row])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


@dataclass
class RespondentRatings:
    respondent: str
    rated: int
    satisfied: int
    average: float


async def ratings_by_respondent(
    sessions: async_sessionmaker[AsyncSession], period: Period
) -> list[RespondentRatings]:
    """好差评 per window or person complained about (``respondent``), rated in the period."""
    satisfied = func.sum(case((Complaint.rating >= 4, 1), else_=0))
    q = (
        select(Complaint.respondent, func.count(), satisfied, func.avg(Complaint.rating))
        .where(period.contains(Complaint.rated_at), Complaint.rating.is_not(None))
        .group_by(Complaint.respondent)
        .order_by(func.count().desc(), Complaint.respondent)
    )
    async with sessions() as session:
        rows = (await session.execute(q)).all()
    return [
        RespondentRatings(r or "（未指明）", int(n), int(s or 0), round(float(a or 0), 2))
        for r, n, s, a in rows
    ]


@dataclass
class DepartmentComplaints:
    department: str
    received: int = 0
    answered: int = 0
    answered_on_time: int = 0
    rated: int = 0
    satisfied: int = 0


async def complaints_by_department(
    sessions: async_sessionmaker[AsyncSession], period: Period
) -> dict[str, DepartmentComplaints]:
    """Per owner department: complaints received, answered (on time: by their due date), rated, satisfied."""
    out: dict[str, DepartmentComplaints] = {}

    def of(name: str | None) -> DepartmentComplaints:
        key = name or "（未分派）"
        return out.setdefault(key, DepartmentComplaints(key))

    async with sessions() as session:
        dialect = session.get_bind().dialect.name
        replied_day = local_day(Complaint.replied_at, dialect, period.tz)
        for dept, n in await session.execute(
            select(Complaint.owner_department, func.count())
            .where(period.contains(Complaint.received_at))
            .group_by(Complaint.owner_department)
        ):
            of(dept).received = int(n)
        for dept, n, ok in await session.execute(
            select(
                Complaint.owner_department,
                func.count(),
                func.sum(case((and_(Complaint.due.is_not(None), replied_day <= Complaint.due), 1), else_=0)),
            )
            .where(period.contains(Complaint.replied_at))
            .group_by(Complaint.owner_department)
        ):
            of(dept).answered, of(dept).answered_on_time = int(n), int(ok or 0)
        for dept, n, ok in await session.execute(
            select(
                Complaint.owner_department, func.count(), func.sum(case((Complaint.rating >= 4, 1), else_=0))
            )
            .where(period.contains(Complaint.rated_at), Complaint.rating.is_not(None))
            .group_by(Complaint.owner_department)
        ):
            of(dept).rated, of(dept).satisfied = int(n), int(ok or 0)
    return out
