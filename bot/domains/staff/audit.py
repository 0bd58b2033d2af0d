"""The staff audit log: who (account and the roles they held), did what, to which object, with what
outcome, when, from where (address, user agent, request id), and a before/after summary.

Rows are appended only (ORM guard and database triggers, see the models and migration 0007).  The purge
removes rows older than ``STAFF_AUDIT_RETENTION_DAYS`` and never any younger than 180 days, the minimum
网络安全法 asks for network logs.  Exports (CSV, XLSX) escape cells that a spreadsheet would run as a
formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.actor import Actor
from bot.core.clock import as_utc, utcnow
from bot.core.spreadsheet import safe_cell
from bot.domains.staff.config import MIN_AUDIT_RETENTION_DAYS
from bot.domains.staff.models import StaffAudit

COLUMNS = ("时间", "账号", "角色", "操作", "对象类型", "对象", "结果", "摘要", "地址", "客户端", "请求号")


@dataclass(frozen=True)
class RequestInfo:
    """Where a staff action came from."""

    client_ip: str = ""
    user_agent: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None
    until: datetime | None = None
    account_id: int | None = None
    action: str | None = None
    object_id: str | None = None
    outcome: str | None = None
    limit: int = 100
    offset: int = 0


class AuditLog:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    async def record(
        self,
        action: str,
        *,
        actor: Actor | None = None,
        username: str = "",
        object_type: str = "",
        object_id: str | int = "",
        outcome: str = "ok",
        summary: Mapping[str, Any] | None = None,
        request: RequestInfo | None = None,
    ) -> None:
        info = request or RequestInfo()
        row = StaffAudit(
            at=self._clock(),
            account_id=actor.account_id if actor else None,
            username=(actor.username if actor else username)[:64],
            roles=",".join(sorted(actor.roles))[:255] if actor else "",
            action=action[:64],
            object_type=object_type[:32],
            object_id=str(object_id)[:64],
            outcome=outcome[:16],
            summary=json.dumps(dict(summary or {}), ensure_ascii=False, default=str),
            client_ip=info.client_ip[:64],
            user_agent=info.user_agent[:255],
            request_id=info.request_id[:64],
        )
        async with self._sessions() as session, session.begin():
            session.add(row)

    async def query(self, f: AuditFilter) -> list[StaffAudit]:
        q = select(StaffAudit).order_by(StaffAudit.id.desc())
        if f.since is not None:
            q = q.where(StaffAudit.at >= f.since)
        if f.until is not None:
            q = q.where(StaffAudit.at < f.until)
        if f.account_id is not None:
            q = q.where(StaffAudit.account_id == f.account_id)
        if f.action:
            q = q.where(StaffAudit.action == f.action)
        if f.object_id:
            q = q.where(StaffAudit.object_id == f.object_id)
        if f.outcome:
            q = q.where(StaffAudit.outcome == f.outcome)
        async with self._sessions() as session:
            return list(await session.scalars(q.limit(max(1, min(f.limit, 10_000))).offset(max(0, f.offset))))

    async def purge(self, retention_days: int) -> int:
        """Remove rows older than ``retention_days`` (at least 180); the number removed."""
        cutoff = self._clock() - timedelta(days=max(retention_days, MIN_AUDIT_RETENTION_DAYS))
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(StaffAudit).where(StaffAudit.at < cutoff).execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)


def rows_for_export(rows: Sequence[StaffAudit]) -> list[list[str]]:
    out = []
    for r in rows:
        at = as_utc(r.at)
        out.append(
            [
                safe_cell(x)
                for x in (
                    at.isoformat(timespec="seconds"),
                    r.username,
                    r.roles,
                    r.action,
                    r.object_type,
                    r.object_id,
                    r.outcome,
                    r.summary,
                    r.client_ip,
                    r.user_agent,
                    r.request_id,
                )
            ]
        )
    return out


def export_csv(rows: Sequence[StaffAudit]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows_for_export(rows))
    return buffer.getvalue().encode("utf-8-sig")


def export_xlsx(rows: Sequence[StaffAudit]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("审计日志")
    ws.append(list(COLUMNS))
    for row in rows_for_export(rows):
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
