"""Reading uploaded tables: XLSX workbooks and CSV/TSV text in UTF-8, UTF-8/UTF-16 with BOM or GB18030
(a superset of GBK), every cell as text.  Used by the catalogue importer and the recipient uploads.  And
writing them safely: :func:`safe_cell` for every text cell of an export."""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

# A cell starting with one of these is a formula to Excel and LibreOffice (=HYPERLINK(...), =cmd|...).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Control characters XML 1.0 (so an XLSX cell) cannot hold; openpyxl refuses them with an exception.
NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: a leading ``= + - @`` (or tab, CR) gets a quote in front, and a
    control character no workbook can hold (text people typed: a username, a recipient's row) becomes
    U+FFFD."""
    text = NOT_IN_XML.sub("\ufffd", "" if value is None else str(value))
    return "'" + text if text.startswith(FORMULA_START) else text


class ImportFileError(Exception):
    """The file cannot be read at all (missing, unknown format, undecodable)."""


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode a text file: BOM (UTF-8 / UTF-16) first, then strict UTF-8, then GB18030 (a superset of GBK)."""
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16"), "utf-16"
    except UnicodeDecodeError as exc:  # a BOM, then bytes that do not fit it (truncated, mislabelled)
        raise ImportFileError(f"无法识别文件编码：文件开头的 BOM 与内容不符（{exc.reason}）") from exc
    for enc in ("utf-8", "gb18030"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise ImportFileError("无法识别文件编码（支持 UTF-8、UTF-8 BOM、GBK/GB18030）")


def sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_rows(path: str | Path, sheet: str | None = None) -> tuple[list[list[str]], str]:
    """All rows of the file as lists of strings, and the detected encoding ("xlsx" for workbooks).

    For a workbook, the sheet named ``sheet`` when it exists, else the first sheet."""
    p = Path(path)
    if not p.is_file():
        raise ImportFileError(f"文件不存在：{p}")
    suffix = p.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged file
            raise ImportFileError(f"无法读取 Excel 文件：{exc}") from exc
        try:
            if not wb.worksheets:
                raise ImportFileError("Excel 文件中没有工作表")
            ws = wb[sheet] if sheet and sheet in wb.sheetnames else wb.worksheets[0]
            rows = [[cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
        except ImportFileError:
            raise
        except Exception as exc:  # read_only: a damaged sheet is only parsed here, row by row
            raise ImportFileError(f"无法读取 Excel 文件：{exc}") from exc
        finally:
            wb.close()
        return rows, "xlsx"
    if suffix in (".csv", ".tsv", ".txt"):
        text, encoding = decode_bytes(p.read_bytes())
        delimiter = sniff_delimiter(text, suffix)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            return [list(r) for r in reader], encoding
        except csv.Error as exc:  # a cell over 128 KB, a NUL byte …: the file, not the server, is at fault
            raise ImportFileError(f"无法读取 CSV 文件（第 {reader.line_num} 行）：{exc}") from exc
    raise ImportFileError(f"不支持的文件类型：{p.suffix}（支持 .xlsx / .csv / .tsv）")
