"""Staff edits of the catalogue one item or alias at a time (the web console), with the importer's rules.

Every change is ONE transaction that also inserts a ``kb_versions`` row, and the new version is published
to Redis (:data:`~knowledge_base.importer.VERSION_KEY`) after the commit: every ``KnowledgeBase`` answers
from the edited catalogue on its next question, exactly as after an import.

- :func:`update_item` validates a row (:func:`~knowledge_base.importer.row_problems`), refuses a stale
  form (the item changed since it was shown), stores the text columns and their parsed forms, and returns
  the changed fields before and after (for the audit log).
- :func:`add_alias` / :func:`remove_alias`: one colloquial name → item code.
- :func:`find_items`, :func:`aliases`, :func:`unanswered_queue`: paginated lists for the console.
- :func:`preview_import`: the importer's dry run, with names and the columns each changed item changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import as_utc, utcnow
from knowledge_base.importer import (
    ALIAS_MAX_LENGTH,
    ImportReport,
    _item_values,
    _publish_version,
    import_catalogue,
    read_catalogue,
    row_problems,
)
from knowledge_base.models import KbAlias, KbItem, KbUnanswered, KbVersion
from knowledge_base.schema import FIELD_TO_HEADER, FIELDS, GuideItem

EDITABLE: tuple[str, ...] = tuple(f for f in FIELDS if f != "code")  # the code is the item's identity
MAX_PAGE = 100


class EditError(ValueError):
    """A change that cannot be made; ``problems`` maps a field (or "") to a Chinese message."""

    def __init__(self, problems: Mapping[str, str], status: int = 400) -> None:
        super().__init__("；".join(problems.values()))
        self.problems = dict(problems)
        self.status = status


@dataclass(frozen=True)
class ItemChange:
    code: str
    before: dict[str, str]
    after: dict[str, str]
    version: int | None

    @property
    def changed(self) -> bool:
        return bool(self.after)


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    per_page: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def stamp_of(item: KbItem) -> str:
    """The version of one item a form was built from (its last change time)."""
    return as_utc(item.updated_at).isoformat()


def item_problems(values: Mapping[str, str]) -> dict[str, str]:
    """Field → message for a row that may not be stored (the importer's rules for one row)."""
    header_to_field = {h: f for f, h in FIELD_TO_HEADER.items()}
    out: dict[str, str] = {}
    for header, message in row_problems(values):
        out.setdefault(header_to_field.get(header, ""), f"{header}{message}")
    return out


async def _new_version(session: AsyncSession, kind: str, source: str, **counts: int) -> int:
    row = KbVersion(kind=kind, source=source[-500:], created_at=utcnow(), **counts)
    session.add(row)
    await session.flush()
    return int(row.version)


async def get_item(sessionmaker: async_sessionmaker[AsyncSession], code: str) -> KbItem | None:
    async with sessionmaker() as session:
        return await session.get(KbItem, code)


async def update_item(
    sessionmaker: async_sessionmaker[AsyncSession],
    code: str,
    values: Mapping[str, str],
    *,
    stamp: str | None = None,
    source: str = "",
    redis: Any = None,
) -> ItemChange:
    """Store new text for the editable columns of item ``code`` (missing keys keep their value)."""
    async with sessionmaker() as session, session.begin():
        item = await session.get(KbItem, code)
        if item is None:
            raise EditError({"": f"没有该事项：{code}"}, status=404)
        if stamp is not None and stamp != stamp_of(item):
            raise EditError({"": "该事项在您打开后已被修改，请刷新页面后重新编辑"}, status=409)
        row = {f: getattr(item, f) for f in FIELDS}
        row.update({f: str(values[f]).strip() for f in EDITABLE if f in values})
        problems = item_problems(row)
        if problems:
            raise EditError(problems)
        before = {f: getattr(item, f) for f in EDITABLE if getattr(item, f) != row[f]}
        after = {f: row[f] for f in before}
        if not after:
            return ItemChange(code, {}, {}, None)
        for key, value in _item_values(GuideItem.from_row(row), item.position).items():
            setattr(item, key, value)
        item.updated_at = utcnow()
        version = await _new_version(session, "catalogue", source or f"console:{code}", updated=1)
    await _publish_version(redis, version)
    return ItemChange(code, before, after, version)


async def add_alias(
    sessionmaker: async_sessionmaker[AsyncSession],
    alias: str,
    code: str,
    *,
    source: str = "",
    redis: Any = None,
) -> int:
    """Add ``alias`` → ``code``; the new catalogue version."""
    alias, code = alias.strip(), code.strip()
    problems: dict[str, str] = {}
    if not alias:
        problems["alias"] = "别名不能为空"
    elif len(alias) > ALIAS_MAX_LENGTH:
        problems["alias"] = f"别名过长（{len(alias)}字，最多{ALIAS_MAX_LENGTH}字）"
    if not code:
        problems["code"] = "请选择事项"
    async with sessionmaker() as session, session.begin():
        if code and await session.get(KbItem, code) is None:
            problems["code"] = f"目录中没有该事项：{code}"
        if "alias" not in problems:
            taken = await session.scalar(select(KbAlias).where(KbAlias.alias == alias))
            if taken is not None:
                problems["alias"] = f"别名“{alias}”已指向事项 {taken.item_code}"
        if problems:
            raise EditError(problems)
        position = int(await session.scalar(select(func.max(KbAlias.position))) or 0) + 1
        session.add(KbAlias(alias=alias, item_code=code, position=position, created_at=utcnow()))
        version = await _new_version(session, "aliases", source or f"console:{alias}", added=1)
    await _publish_version(redis, version)
    return version


async def remove_alias(
    sessionmaker: async_sessionmaker[AsyncSession], alias_id: int, *, source: str = "", redis: Any = None
) -> tuple[str, str]:
    """Remove one alias; its (alias, item code)."""
    async with sessionmaker() as session, session.begin():
        row = await session.get(KbAlias, alias_id)
        if row is None:
            raise EditError({"": "该别名不存在或已被删除"}, status=404)
        removed = (row.alias, row.item_code)
        await session.delete(row)
        version = await _new_version(session, "aliases", source or f"console:{row.alias}", removed=1)
    await _publish_version(redis, version)
    return removed


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _bounded(page: int, per_page: int) -> tuple[int, int]:
    return max(1, page), max(1, min(MAX_PAGE, per_page))


async def find_items(
    sessionmaker: async_sessionmaker[AsyncSession], query: str = "", page: int = 1, per_page: int = 20
) -> Page:
    """Items in catalogue order whose code, name or department contains ``query``."""
    page, per_page = _bounded(page, per_page)
    where: list[ColumnElement[bool]] = []
    if query.strip():
        pattern = _like(query.strip())
        where.append(
            or_(
                KbItem.code.like(pattern, escape="\\"),
                KbItem.name.like(pattern, escape="\\"),
                KbItem.department.like(pattern, escape="\\"),
            )
        )
    async with sessionmaker() as session:
        total = int(await session.scalar(select(func.count()).select_from(KbItem).where(*where)) or 0)
        rows = (
            await session.scalars(
                select(KbItem)
                .where(*where)
                .order_by(KbItem.position, KbItem.code)
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        ).all()
    return Page(list(rows), total, page, per_page)


async def item_names(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """(code, name) of every item in catalogue order (for choosing an item)."""
    async with sessionmaker() as session:
        rows = await session.execute(select(KbItem.code, KbItem.name).order_by(KbItem.position, KbItem.code))
        return [(c, n) for c, n in rows.all()]


@dataclass(frozen=True)
class AliasRow:
    id: int
    alias: str
    item_code: str
    item_name: str | None  # None: the item is no longer in the catalogue


async def aliases(
    sessionmaker: async_sessionmaker[AsyncSession],
    query: str = "",
    page: int = 1,
    per_page: int = 50,
    *,
    code: str | None = None,
) -> Page:
    """Aliases (newest position last) whose text or item code contains ``query``, or those of ``code``."""
    page, per_page = _bounded(page, per_page)
    where: list[ColumnElement[bool]] = []
    if code is not None:
        where.append(KbAlias.item_code == code)
    if query.strip():
        pattern = _like(query.strip())
        where.append(
            or_(KbAlias.alias.like(pattern, escape="\\"), KbAlias.item_code.like(pattern, escape="\\"))
        )
    async with sessionmaker() as session:
        total = int(await session.scalar(select(func.count()).select_from(KbAlias).where(*where)) or 0)
        rows = (
            await session.execute(
                select(KbAlias.id, KbAlias.alias, KbAlias.item_code, KbItem.name)
                .outerjoin(KbItem, KbItem.code == KbAlias.item_code)
                .where(*where)
                .order_by(KbAlias.position, KbAlias.id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        ).all()
    return Page([AliasRow(int(i), a, c, n) for i, a, c, n in rows], total, page, per_page)


@dataclass(frozen=True)
class QueuedQuestion:
    question: str
    times: int
    last_asked: datetime
    channel: str
    best_code: str | None
    best_name: str | None
    score: float


async def unanswered_queue(
    sessionmaker: async_sessionmaker[AsyncSession], page: int = 1, per_page: int = 20
) -> Page:
    """Questions the bot could not answer confidently, one row per distinct question (most recently asked
    first), leaving out those already added as an alias."""
    page, per_page = _bounded(page, per_page)
    open_rows = KbUnanswered.question.notin_(select(KbAlias.alias))
    last = func.max(KbUnanswered.id).label("last_id")
    grouped = (
        select(KbUnanswered.question, func.count().label("times"), last)
        .where(open_rows)
        .group_by(KbUnanswered.question)
        .subquery()
    )
    async with sessionmaker() as session:
        total = int(await session.scalar(select(func.count()).select_from(grouped)) or 0)
        rows = (
            await session.execute(
                select(grouped.c.times, KbUnanswered)
                .join(KbUnanswered, KbUnanswered.id == grouped.c.last_id)
                .order_by(grouped.c.last_id.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        ).all()
    out = [
        QueuedQuestion(
            r.question, int(times), as_utc(r.created_at), r.channel, r.best_code, r.best_name, float(r.score)
        )
        for times, r in rows
    ]
    return Page(out, total, page, per_page)


@dataclass
class ImportPreview:
    """What importing a file would do, item by item: (code, name) added or removed, and for each changed
    item the Chinese headers of the columns whose text differs."""

    report: ImportReport
    added: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, list[str]]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)


async def preview_import(sessionmaker: async_sessionmaker[AsyncSession], path: str | Path) -> ImportPreview:
    """A dry run of :func:`~knowledge_base.importer.import_catalogue` with names and changed columns."""
    report = await import_catalogue(sessionmaker, path, dry_run=True)
    preview = ImportPreview(report)
    if not report.ok:
        return preview
    incoming = {it.code: it for it in read_catalogue(path).items}
    wanted = set(report.updated) | set(report.removed)
    async with sessionmaker() as session:
        stored = {r.code: r for r in (await session.scalars(select(KbItem).where(KbItem.code.in_(wanted))))}
    preview.added = [(c, incoming[c].name) for c in report.added]
    for code in report.updated:
        new, old = incoming[code], stored[code]
        headers = [FIELD_TO_HEADER[f] for f in FIELDS if getattr(old, f) != getattr(new, f)]
        preview.changed.append((code, new.name, headers))
    preview.removed = [(c, stored[c].name) for c in report.removed]
    return preview
