"""Recipient lists from an XLSX/CSV upload (encoding and delimiter detection shared with the knowledge-base
import) or from saved groups: numbers normalised to E.164, invalid and duplicate numbers kept as
exclusions with their reason (never silently dropped).

The whole file is read and checked before anything is written: a file that cannot be used raises
``RecipientFileError`` with a Chinese message for staff, and the caller stores nothing."""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.phone import to_e164
from bot.core.spreadsheet import ImportFileError, read_rows
from sms_gateway.broadcast.models import Exclusion

PHONE_HEADERS = (
    "手机号",
    "手机号码",
    "手机",
    "电话",
    "电话号码",
    "联系电话",
    "联系方式",
    "号码",
    "phone",
    "mobile",
)
OPENID_HEADERS = ("openid", "用户openid", "微信openid", "OpenID")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
HEADER_SCAN_ROWS = 10
SUFFIXES = (".xlsx", ".xlsm", ".csv", ".tsv", ".txt")


class RecipientFileError(ValueError):
    """The upload cannot be used; nothing was imported."""


@dataclass(frozen=True)
class RecipientRow:
    source: str  # "upload:<row as Excel shows it>" or "group:<group id>"
    raw: str
    address: str | None
    variables: dict[str, str]
    excluded: Exclusion | None = None


@dataclass
class ParsedList:
    rows: list[RecipientRow] = field(default_factory=list)
    encoding: str = ""
    header_row: int = 0  # 1-based
    columns: list[str] = field(default_factory=list)
    phone_column: str = ""

    def counts(self) -> dict[str, int]:
        out = {"total": len(self.rows), "eligible": 0, **{str(e): 0 for e in Exclusion}}
        for r in self.rows:
            if r.excluded is None:
                out["eligible"] += 1
            else:
                out[str(r.excluded)] += 1
        return out


def header_key(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell or "")
    return "".join(ch for ch in text if not ch.isspace() and ch not in "*＊").lower()


_PHONE_KEYS = {header_key(h) for h in PHONE_HEADERS}
_OPENID_KEYS = {header_key(h) for h in OPENID_HEADERS}


def _find_header(rows: Sequence[Sequence[str]], keys: set[str] = _PHONE_KEYS) -> tuple[int, int] | None:
    for idx, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        for col, cell in enumerate(row):
            if header_key(cell) in keys:
                return idx, col
    return None


def address_of(raw: str, channel: str = "sms") -> str:
    """The address a recipient is sent to: an E.164 number (SMS) or an openid (WeChat); ValueError when
    ``raw`` is neither."""
    if channel == "wechat":
        if not _OPENID.match(raw.strip()):
            raise ValueError("not an openid")
        return raw.strip()
    return to_e164(raw)


def read_upload(filename: str, data: bytes) -> tuple[list[list[str]], str]:
    """Rows of an uploaded file (any supported encoding) and the detected encoding."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in SUFFIXES:
        raise RecipientFileError(f"不支持的文件类型：{suffix or '无扩展名'}（支持 .xlsx / .csv / .tsv）")
    if not data:
        raise RecipientFileError("文件为空")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            rows, encoding = read_rows(path)
        except ImportFileError as exc:
            raise RecipientFileError(str(exc)) from exc
        except UnicodeDecodeError as exc:  # bot.core.spreadsheet.decode_bytes lets a bad UTF-16 file through
            raise RecipientFileError("无法识别文件编码（UTF-16 文件内容不完整）") from exc
    if encoding != "xlsx" and any("\x00" in cell for row in rows[:HEADER_SCAN_ROWS] for cell in row):
        raise RecipientFileError(
            "无法识别文件编码（疑似无 BOM 的 UTF-16；请另存为 UTF-8 或 GBK 的 CSV，或 Excel）"
        )
    return rows, encoding


def parse_upload(
    filename: str,
    data: bytes,
    *,
    needed: Sequence[str],
    column_map: Mapping[str, str] | None = None,
    max_rows: int,
    channel: str = "sms",
) -> ParsedList:
    """Parse a recipient file.  ``needed`` are the template's variables; each is filled from the column named
    by ``column_map[var]`` (default: the column whose header is the variable's name)."""
    rows, encoding = read_upload(filename, data)
    found = _find_header(rows, _OPENID_KEYS if channel == "wechat" else _PHONE_KEYS)
    if found is None and channel == "wechat":
        raise RecipientFileError("找不到 openid 列：表头（前10行内）应有一列名为“openid”")
    if found is None:
        raise RecipientFileError(
            "找不到手机号列：表头（前10行内）应有一列名为“手机号”（或 手机/电话/联系电话/phone）"
        )
    header_idx, phone_col = found
    header = rows[header_idx]
    by_key = {header_key(c): i for i, c in reversed(list(enumerate(header))) if c.strip()}
    mapping = dict(column_map or {})
    var_cols: dict[str, int] = {}
    missing_cols: list[str] = []
    for var in needed:
        col_name = mapping.get(var, var)
        col = by_key.get(header_key(col_name))
        if col is None:
            missing_cols.append(f"{{{var}}}→“{col_name}”")
        else:
            var_cols[var] = col
    unknown = [v for v in mapping if v not in needed]
    if unknown:
        raise RecipientFileError(f"列对应关系中的变量不在模板里：{'、'.join(unknown)}")
    if missing_cols:
        raise RecipientFileError(
            f"缺少模板变量对应的列：{'、'.join(missing_cols)}"
            f"（文件表头：{'、'.join(c for c in header if c)}）"
        )
    data_rows = [
        (header_idx + 2 + i, row)
        for i, row in enumerate(rows[header_idx + 1 :])
        if any(cell.strip() for cell in row)
    ]
    if not data_rows:
        raise RecipientFileError("文件中没有收件人（表头下没有数据行）")
    if len(data_rows) > max_rows:
        raise RecipientFileError(
            f"收件人过多：文件有 {len(data_rows)} 行，单次群发上限 {max_rows} 行；请拆分后分批发送"
        )
    parsed = ParsedList(
        encoding=encoding,
        header_row=header_idx + 1,
        columns=[c for c in header if c],
        phone_column=header[phone_col],
    )
    entries: list[tuple[str, str, dict[str, str]]] = []
    for row_no, row in data_rows:
        cell = row[phone_col] if phone_col < len(row) else ""
        values = {var: (row[col].strip() if col < len(row) else "") for var, col in var_cols.items()}
        entries.append((f"upload:{row_no}", cell.strip(), values))
    parsed.rows = classify(entries, channel=channel)
    return parsed


def classify(
    entries: Iterable[tuple[str, str, dict[str, str]]], seen: set[str] | None = None, channel: str = "sms"
) -> list[RecipientRow]:
    """Normalise numbers (or openids); mark invalid ones and repeats (the first occurrence is kept)."""
    seen = set() if seen is None else seen
    out: list[RecipientRow] = []
    for source, raw, values in entries:
        try:
            address = address_of(raw, channel)
        except ValueError:
            out.append(RecipientRow(source, raw[:64], None, values, Exclusion.INVALID))
            continue
        if address in seen:
            out.append(RecipientRow(source, raw[:64], address, values, Exclusion.DUPLICATE))
            continue
        seen.add(address)
        out.append(RecipientRow(source, raw[:64], address, values))
    return out
