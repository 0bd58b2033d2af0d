"""Import and export of the 办事指南 catalogue and its alias table.

- :func:`read_catalogue` reads an XLSX (sheet 办事指南, else the first sheet) or a CSV/TSV file, detects the
  encoding (UTF-8, UTF-8 with BOM, UTF-16 with BOM, GB18030 ⊇ GBK) and the header row, and validates
  every row.
- :func:`import_catalogue` upserts the rows by 事项编码 in ONE transaction: items missing from the file are
  removed, and any invalid row means nothing changes (every problem is reported with its row number and
  column).  ``dry_run`` reports what would be added / updated / removed without writing.
- :func:`import_aliases` does the same for the alias TSV (``colloquial name<TAB>事项编码``, no header).
- :func:`export_catalogue` writes the catalogue back as XLSX in the source format (same sheet name, header,
  column order, column widths, all cells as text), so export → import is a no-op and the cells are identical.

Every change inserts a row into ``kb_versions``; processes compare ``max(version)`` with the version of their
in-memory index (see ``service.KnowledgeBase``).  When a Redis client is passed, the new version is also
written to :data:`VERSION_KEY` so that processes sharing that Redis pick it up on their next question.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.core.spreadsheet import ImportFileError, decode_bytes, read_rows
from knowledge_base.models import KbAlias, KbItem, KbVersion
from knowledge_base.schema import (
    CODE_RE,
    FIELD_TO_HEADER,
    FIELDS,
    HEADER_TO_FIELD,
    HEADERS,
    REQUIRED_NON_EMPTY,
    SHEET_NAME,
    GuideItem,
)

VERSION_KEY = "govbot:kb:version"
DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLE_CATALOGUE = DATA_DIR / "service_guides.xlsx"
SAMPLE_ALIASES = DATA_DIR / "service_guide_aliases.tsv"

# Column widths of the platform export (used by export_catalogue).
COLUMN_WIDTHS: tuple[float, ...] = (18, 28, 10, 24, 22, 40, 60, 30, 14, 18, 30, 40, 14, 30, 30, 20, 60)
# Maximum lengths of the String columns of kb_items (Text columns are unbounded).
MAX_LENGTHS: dict[str, int] = {
    "code": 32,
    "name": 200,
    "item_type": 50,
    "department": 200,
    "window": 200,
    "phone": 100,
}
HEADER_SCAN_ROWS = 10
ALIAS_MAX_LENGTH = 200


@dataclass(frozen=True)
class ImportIssue:
    row: int  # 1-based row number as shown by Excel (the header row counts); 0 = the file as a whole
    column: str  # Chinese column header, or "" when the problem is not about one column
    message: str

    def __str__(self) -> str:
        where = f"第{self.row}行" if self.row else "文件"
        col = f"【{self.column}】" if self.column else ""
        return f"{where}{col}：{self.message}"


@dataclass
class ImportReport:
    kind: str  # catalogue | aliases
    source: str
    encoding: str = ""
    header_row: int = 0
    rows: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    reordered: int = 0  # unchanged items that moved to another row (kept for the export order)
    errors: list[ImportIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    applied: bool = False
    version: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.reordered)

    def summary(self) -> str:
        what = "事项" if self.kind == "catalogue" else "别名"
        lines = [
            f"文件：{self.source}（编码 {self.encoding or '-'}，"
            f"表头第{self.header_row}行，数据{self.rows}行）"
        ]
        if self.errors:
            lines.append(f"发现 {len(self.errors)} 个问题，未做任何修改：")
            lines += [f"  - {e}" for e in self.errors]
            return "\n".join(lines)
        verb = "将" if self.dry_run else "已"
        lines.append(
            f"{verb}新增{what} {len(self.added)} 个，更新 {len(self.updated)} 个，"
            f"删除 {len(self.removed)} 个，"
            f"未变化 {self.unchanged} 个。"
        )
        if self.reordered:
            lines.append(f"  另有 {self.reordered} 个{what}仅顺序变化。")
        for label, codes in (("新增", self.added), ("更新", self.updated), ("删除", self.removed)):
            if codes:
                shown = "、".join(codes[:20]) + (f" 等{len(codes)}个" if len(codes) > 20 else "")
                lines.append(f"  {label}：{shown}")
        lines += [f"  注意：{w}" for w in self.warnings]
        if self.dry_run:
            lines.append("（试运行，未写入数据库）")
        elif self.applied and self.changed:
            lines.append(f"目录版本已更新为 {self.version}。")
        else:
            lines.append("内容与数据库一致，无需更新。")
        return "\n".join(lines)


@dataclass
class ParsedCatalogue:
    items: list[GuideItem]
    errors: list[ImportIssue]
    warnings: list[str]
    encoding: str
    header_row: int
    source: str


# --------------------------------------------------------------------------------------------- reading


def _header_key(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell or "")
    return "".join(ch for ch in text if not ch.isspace() and ch not in "*＊")


def find_header(rows: Sequence[Sequence[str]]) -> tuple[int, dict[str, int]] | None:
    """Index of the header row (within the first rows) and a map header → column index."""
    best: tuple[int, dict[str, int]] | None = None
    for idx, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        mapping: dict[str, int] = {}
        for col, cell in enumerate(row):
            key = _header_key(cell)
            if key in HEADER_TO_FIELD and key not in mapping:
                mapping[key] = col
        if len(mapping) >= 3 and (best is None or len(mapping) > len(best[1])):
            best = (idx, mapping)
            if len(mapping) == len(HEADERS):
                break
    return best


def row_problems(values: Mapping[str, str]) -> list[tuple[str, str]]:
    """What is wrong with one catalogue row on its own, as (Chinese column header, message): required
    cells, the 事项编码 format, the lengths of the String columns.  The importer and the console's item
    editor both use it (the importer adds the checks across rows, such as duplicate codes)."""
    problems: list[tuple[str, str]] = []
    for header in REQUIRED_NON_EMPTY:
        if not (values.get(HEADER_TO_FIELD[header]) or "").strip():
            problems.append((header, "不能为空"))
    code = values.get("code") or ""
    if code and not CODE_RE.match(code):
        problems.append(("事项编码", f"格式不正确：“{code}”（应为如 36072200-XK-001 的格式）"))
    for fname, limit in MAX_LENGTHS.items():
        length = len(values.get(fname) or "")
        if length > limit:
            problems.append((FIELD_TO_HEADER[fname], f"过长（{length}字，最多{limit}字）"))
    return problems


def parse_catalogue(
    rows: Sequence[Sequence[str]], *, encoding: str = "", source: str = ""
) -> ParsedCatalogue:
    """Validate raw rows; return the items (only meaningful when there are no errors) and every problem."""
    errors: list[ImportIssue] = []
    warnings: list[str] = []
    found = find_header(rows)
    if found is None:
        errors.append(
            ImportIssue(0, "", f"未找到表头行（前{HEADER_SCAN_ROWS}行中没有“事项编码”“事项名称”等列名）")
        )
        return ParsedCatalogue([], errors, warnings, encoding, 0, source)
    header_idx, mapping = found
    header_row = header_idx + 1
    missing = [h for h in HEADERS if h not in mapping]
    for h in missing:
        errors.append(ImportIssue(header_row, h, "缺少必需的列"))
    known_cols = set(mapping.values())
    extra = [c for c in rows[header_idx] if c.strip() and _header_key(c) not in HEADER_TO_FIELD]
    if extra:
        warnings.append("忽略未知列：" + "、".join(extra))
    if missing:
        return ParsedCatalogue([], errors, warnings, encoding, header_row, source)

    items: list[GuideItem] = []
    seen: dict[str, int] = {}
    for idx in range(header_idx + 1, len(rows)):
        raw = rows[idx]
        if not any((c or "").strip() for c in raw):
            continue
        if not any((raw[c] if c < len(raw) else "").strip() for c in known_cols):
            continue
        rownum = idx + 1
        values: dict[str, str] = {}
        for header, col in mapping.items():
            values[HEADER_TO_FIELD[header]] = (raw[col] if col < len(raw) else "").strip()
        row_errors = [ImportIssue(rownum, header, message) for header, message in row_problems(values)]
        code = values["code"]
        if code and CODE_RE.match(code) and code in seen:
            row_errors.append(ImportIssue(rownum, "事项编码", f"与第{seen[code]}行重复：{code}"))
        if code and code not in seen:
            seen[code] = rownum
        if row_errors:
            errors.extend(row_errors)
            continue
        items.append(GuideItem.from_row(values))
    if not items and not errors:
        errors.append(ImportIssue(0, "", "文件中没有任何事项数据"))
    return ParsedCatalogue(items, errors, warnings, encoding, header_row, source)


def read_catalogue(path: str | Path) -> ParsedCatalogue:
    rows, encoding = read_rows(path, sheet=SHEET_NAME)
    return parse_catalogue(rows, encoding=encoding, source=str(path))


@dataclass
class ParsedAliases:
    aliases: list[tuple[str, str]]  # (alias, code) in file order
    lines: list[int]  # file line of each alias
    errors: list[ImportIssue]
    encoding: str
    header_row: int


def read_aliases(path: str | Path) -> ParsedAliases:
    p = Path(path)
    if not p.is_file():
        raise ImportFileError(f"文件不存在：{p}")
    text, encoding = decode_bytes(p.read_bytes())
    errors: list[ImportIssue] = []
    out: list[tuple[str, str]] = []
    lines: list[int] = []
    seen: dict[str, int] = {}
    header_row = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [x.strip() for x in line.split("\t")]
        if len(parts) != 2:
            if not out and not errors and not header_row and "编码" in line:
                header_row = lineno
                continue
            errors.append(ImportIssue(lineno, "", "应为两列：别名<Tab>事项编码"))
            continue
        alias, code = parts
        if not out and not errors and not header_row and not CODE_RE.match(code) and "编码" in code:
            header_row = lineno
            continue
        if not alias:
            errors.append(ImportIssue(lineno, "别名", "不能为空"))
        elif len(alias) > ALIAS_MAX_LENGTH:
            errors.append(ImportIssue(lineno, "别名", f"过长（最多{ALIAS_MAX_LENGTH}字）"))
        elif alias in seen:
            errors.append(ImportIssue(lineno, "别名", f"与第{seen[alias]}行重复：{alias}"))
        if not code:
            errors.append(ImportIssue(lineno, "事项编码", "不能为空"))
        elif not CODE_RE.match(code):
            errors.append(ImportIssue(lineno, "事项编码", f"格式不正确：“{code}”"))
        if alias and alias not in seen:
            seen[alias] = lineno
        out.append((alias, code))
        lines.append(lineno)
    return ParsedAliases(out, lines, errors, encoding, header_row)


# --------------------------------------------------------------------------------------------- database


async def current_version(session: AsyncSession) -> int:
    value = await session.scalar(select(func.max(KbVersion.version)))
    return int(value or 0)


async def _publish_version(redis: Any, version: int | None) -> None:
    if redis is None or version is None:
        return
    try:
        await redis.set(VERSION_KEY, str(version))
    except Exception:  # Redis is only a fast path; the DB version is the truth
        return


def _item_values(item: GuideItem, position: int) -> dict[str, Any]:
    values: dict[str, Any] = item.row()
    values.update(
        materials_list=list(item.materials_list),
        process_steps=list(item.process_steps),
        faq_list=[{"q": f.question, "a": f.answer} for f in item.faq_list],
        online_available=item.online_available,
        position=position,
    )
    return values


P = TypeVar("P", ParsedCatalogue, ParsedAliases)


def _read_into(report: ImportReport, read: Callable[[str | Path], P], path: str | Path) -> P | None:
    """Parse ``path`` and note its encoding, header row, errors and warnings in ``report``; None when the
    file cannot be imported (nothing is written then)."""
    try:
        parsed = read(path)
    except ImportFileError as exc:
        report.errors.append(ImportIssue(0, "", str(exc)))
        return None
    report.encoding, report.header_row = parsed.encoding, parsed.header_row
    report.errors.extend(parsed.errors)
    if isinstance(parsed, ParsedCatalogue):
        report.rows = len(parsed.items)
        report.warnings.extend(parsed.warnings)
    else:
        report.rows = len(parsed.aliases)
    return None if report.errors else parsed


async def import_catalogue(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: str | Path,
    *,
    dry_run: bool = False,
    redis: Any = None,
) -> ImportReport:
    """Validate ``path`` and synchronise ``kb_items`` with it in one transaction (see module docstring)."""
    report = ImportReport(kind="catalogue", source=str(path), dry_run=dry_run)
    parsed = _read_into(report, read_catalogue, path)
    if parsed is None:
        return report

    async with sessionmaker() as session, session.begin():
        existing = {it.code: it for it in (await session.scalars(select(KbItem))).all()}
        incoming_codes = set()
        now = utcnow()
        for position, item in enumerate(parsed.items, start=1):
            incoming_codes.add(item.code)
            values = _item_values(item, position)
            old = existing.get(item.code)
            if old is None:
                report.added.append(item.code)
                if not dry_run:
                    session.add(KbItem(**values, created_at=now, updated_at=now))
            elif any(getattr(old, f) != values[f] for f in FIELDS):
                report.updated.append(item.code)
                if not dry_run:
                    for key, value in values.items():
                        setattr(old, key, value)
                    old.updated_at = now
            else:
                report.unchanged += 1
                if old.position != position:  # same content, new place in the file (export order)
                    report.reordered += 1
                    if not dry_run:
                        old.position = position
        report.removed = sorted(code for code in existing if code not in incoming_codes)
        if report.removed:
            orphans = await session.scalar(
                select(func.count()).select_from(KbAlias).where(KbAlias.item_code.in_(report.removed))
            )
            if orphans:
                report.warnings.append(f"{orphans} 个别名指向被删除的事项，将被忽略，直到该事项重新导入")
            if not dry_run:
                await session.execute(delete(KbItem).where(KbItem.code.in_(report.removed)))
        if dry_run:
            await session.rollback()
            return report
        if report.changed:
            report.version = await _bump_version(session, report)
        report.applied = True
    if report.changed:
        await _publish_version(redis, report.version)
    return report


async def _bump_version(session: AsyncSession, report: ImportReport) -> int:
    row = KbVersion(
        kind=report.kind,
        source=report.source[-500:],
        added=len(report.added),
        updated=len(report.updated),
        removed=len(report.removed),
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return int(row.version)


async def import_aliases(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: str | Path,
    *,
    dry_run: bool = False,
    redis: Any = None,
) -> ImportReport:
    """Validate the alias TSV and synchronise ``kb_aliases`` with it in one transaction."""
    report = ImportReport(kind="aliases", source=str(path), dry_run=dry_run)
    parsed = _read_into(report, read_aliases, path)
    if parsed is None:
        return report

    async with sessionmaker() as session, session.begin():
        codes = set((await session.scalars(select(KbItem.code))).all())
        for lineno, (_alias, code) in zip(parsed.lines, parsed.aliases, strict=True):
            if code not in codes:
                report.errors.append(ImportIssue(lineno, "事项编码", f"目录中没有该事项：{code}"))
        if report.errors:
            return report
        existing = {a.alias: a for a in (await session.scalars(select(KbAlias))).all()}
        now = utcnow()
        incoming = set()
        for position, (alias, code) in enumerate(parsed.aliases, start=1):
            incoming.add(alias)
            old = existing.get(alias)
            if old is None:
                report.added.append(alias)
                if not dry_run:
                    session.add(KbAlias(alias=alias, item_code=code, position=position, created_at=now))
            elif old.item_code != code:
                report.updated.append(alias)
                if not dry_run:
                    old.item_code, old.position = code, position
            else:
                report.unchanged += 1
                if old.position != position:
                    report.reordered += 1
                    if not dry_run:
                        old.position = position
        report.removed = sorted(a for a in existing if a not in incoming)
        if dry_run:
            await session.rollback()
            return report
        if report.removed:
            await session.execute(delete(KbAlias).where(KbAlias.alias.in_(report.removed)))
        if report.changed:
            report.version = await _bump_version(session, report)
        report.applied = True
    if report.changed:
        await _publish_version(redis, report.version)
    return report


async def load_items(session: AsyncSession) -> list[GuideItem]:
    rows = (await session.scalars(select(KbItem).order_by(KbItem.position, KbItem.code))).all()
    return [GuideItem.from_row({f: getattr(r, f) for f in FIELDS}) for r in rows]


async def load_item(session: AsyncSession, code: str) -> GuideItem | None:
    row = await session.scalar(select(KbItem).where(KbItem.code == code))
    return GuideItem.from_row({f: getattr(row, f) for f in FIELDS}) if row is not None else None


async def load_aliases(session: AsyncSession) -> list[tuple[str, str]]:
    rows = (await session.execute(select(KbAlias.alias, KbAlias.item_code).order_by(KbAlias.position))).all()
    return [(a, c) for a, c in rows]


async def export_catalogue(sessionmaker: async_sessionmaker[AsyncSession], path: str | Path) -> int:
    """Write the catalogue as XLSX in the platform's format; returns the number of items written."""
    async with sessionmaker() as session:
        items = await load_items(session)
    write_xlsx(items, path)
    return len(items)


def write_xlsx(items: Sequence[GuideItem], path: str | Path) -> None:
    import openpyxl
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEET_NAME
    ws.append(list(HEADERS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for item in items:
        ws.append([getattr(item, f) for f in FIELDS])
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.data_type = "s"  # keep codes/phones as text even if they look numeric
    for idx, width in enumerate(COLUMN_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(idx)].width = width
    ws.freeze_panes = "A2"
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)


async def ensure_sample_loaded(sessionmaker: async_sessionmaker[AsyncSession], redis: Any = None) -> bool:
    """Load the shipped sample catalogue and aliases when the catalogue is empty; True if it loaded them."""
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(KbItem))
    if count:
        return False
    report = await import_catalogue(sessionmaker, SAMPLE_CATALOGUE, redis=redis)
    if not report.ok:
        raise RuntimeError("示例目录导入失败：\n" + report.summary())
    aliases = await import_aliases(sessionmaker, SAMPLE_ALIASES, redis=redis)
    if not aliases.ok:
        raise RuntimeError("示例别名导入失败：\n" + aliases.summary())
    return True
