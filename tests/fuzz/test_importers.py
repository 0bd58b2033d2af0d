"""Fuzzing the spreadsheet importers: the broadcast recipient upload (``parse_upload``) and the knowledge-base
catalogue and alias import (``read_catalogue``, ``read_aliases``), both on ``bot.core.spreadsheet``.

Property: a file either parses or raises the module's own error — ``RecipientFileError`` for uploads,
``ImportFileError`` for the catalogue (which the pages and the API answer with a 400 and a message for
staff) — never another exception (a 500, or a background job that dies).  Inputs: random bytes under every
suffix; CSV text with random cells in UTF-8, UTF-8 with BOM, GBK/GB18030 and UTF-16, whole or truncated;
real XLSX workbooks with random cells, truncated, with flipped bytes, or with one part of the zip replaced by
garbage.  And a well-formed upload keeps every row: each valid mobile is read as its E.164 form.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import tempfile
import zipfile
from pathlib import Path

import openpyxl
from hypothesis import example, given
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from bot.core.phone import to_e164
from bot.core.spreadsheet import ImportFileError
from knowledge_base.importer import read_aliases, read_catalogue
from knowledge_base.schema import HEADERS
from sms_gateway.broadcast.recipients import PHONE_HEADERS, RecipientFileError, parse_upload
from tests.fuzz import fuzz_settings

SUFFIXES = [".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls", ".CSV", ""]
SUPPORTED = ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"]  # utf-16: with its BOM
ENCODINGS = [*SUPPORTED, "utf-16-le", "big5"]

# ---------------------------------------------------------------------------------------------- strategies

TRICKY = ["", " ", "13812345678", "+86 138-1234-5678", "０１３８", '"', '""', ",", "\n", "\r\n", "\x00",
          "=1+1", "手机号", "姓名", "事项编码", "36072200-XK-001", "\t", ";"]  # fmt: skip
cells = st.one_of(st.text(max_size=12), st.sampled_from(TRICKY))


def _sms_able(number: str) -> bool:
    try:
        return bool(to_e164(number))
    except ValueError:
        return False


mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True).filter(_sms_able)


@st.composite
def tables(draw: st.DrawFn, headers: list[str]) -> list[list[str]]:
    """Rows under a header row that names some of ``headers`` (and random columns), in random order."""
    header = draw(st.lists(st.one_of(st.sampled_from(headers), cells), min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(cells, max_size=len(header) + 1), max_size=8))
    preamble = draw(st.lists(st.lists(cells, max_size=3), max_size=2))
    return [*preamble, header, *rows]


def csv_bytes(rows: list[list[str]], encoding: str, delimiter: str) -> bytes | None:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    try:
        return out.getvalue().encode(encoding)
    except UnicodeEncodeError:
        return None


def xlsx_bytes(rows: list[list[str]]) -> bytes:
    """A real workbook, byte for byte the same for the same rows (hypothesis replays examples)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append([ILLEGAL_CHARACTERS_RE.sub("", c) for c in row])
    out = io.BytesIO()
    wb.save(out)
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as src:
        parts = {name: src.read(name) for name in src.namelist()}
    core = parts["docProps/core.xml"].decode()
    parts["docProps/core.xml"] = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "2026-01-01T00:00:00Z", core).encode()
    return zipped(parts)


def zipped(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, content in parts.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, content)
    return out.getvalue()


def with_part(rows: list[list[str]], name: str, content: bytes | None) -> bytes:
    """The workbook of ``rows`` with its part ``name`` replaced (None: left out)."""
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes(rows))) as src:
        parts = {n: src.read(n) for n in src.namelist()}
    if content is None:
        del parts[name]
    else:
        parts[name] = content
    return zipped(parts)


SHEET = "xl/worksheets/sheet1.xml"
# found: openpyxl's read-only mode parses a sheet only when its rows are read, so a damaged sheet raised
# ParseError there, and a workbook without its sheet IndexError: both escaped the importers as 500s
HALF_A_SHEET = with_part([["手机号", "事项编码"], ["13812345678", "x"]], SHEET, b"<worksheet><sheetData><row")
NO_SHEET = with_part([["手机号"], ["13812345678"]], SHEET, None)


@st.composite
def damaged_xlsx(draw: st.DrawFn, rows: list[list[str]]) -> bytes:
    """A real workbook, then damaged: truncated, bytes flipped, or one zip part replaced or dropped."""
    data = xlsx_bytes(rows)
    how = draw(st.sampled_from(["whole", "truncate", "flip", "part", "drop"]))
    if how == "whole":
        return data
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip":
        buf = bytearray(data)
        for pos in draw(st.lists(st.integers(0, len(buf) - 1), min_size=1, max_size=8)):
            buf[pos] ^= draw(st.integers(1, 255))
        return bytes(buf)
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        parts = {name: src.read(name) for name in src.namelist()}
    sheets = sorted(n for n in parts if n.startswith("xl/worksheets/") or n == "xl/workbook.xml")
    victim = draw(st.one_of(st.sampled_from(sheets), st.sampled_from(sorted(parts))))
    if how == "drop":
        del parts[victim]
    else:
        original = parts[victim]
        parts[victim] = draw(
            st.one_of(
                st.binary(max_size=200),
                st.just(original[: len(original) // 2]),
                st.just(b'<?xml version="1.0"?><worksheet/>'),
                st.just(original.replace(b"<c ", b'<c t="n" ', 3).replace(b"<v>", b"<v>x", 3)),
                st.just(original.replace(b't="s"', b't="e"')),
                st.just(original.replace(b"<v>0</v>", b"<v>99999</v>")),
            )
        )
    return zipped(parts)


@st.composite
def files(draw: st.DrawFn, headers: list[str]) -> tuple[str, bytes]:
    """(file name, content) of an upload: random bytes, CSV text, or an XLSX workbook (maybe damaged)."""
    kind = draw(st.sampled_from(["bytes", "csv", "csv", "xlsx", "xlsx"]))
    if kind == "bytes":
        return "upload" + draw(st.sampled_from(SUFFIXES)), draw(st.binary(max_size=300))
    rows = draw(tables(headers))
    if kind == "xlsx":
        return "upload" + draw(st.sampled_from([".xlsx", ".xlsm"])), draw(damaged_xlsx(rows))
    encoding = draw(st.sampled_from(ENCODINGS))
    data = csv_bytes(rows, encoding, draw(st.sampled_from([",", "\t", ";"])))
    if data is None:
        data = draw(st.binary(max_size=100))
    if draw(st.booleans()):  # cut anywhere (inside a multi-byte character too)
        data = data[: draw(st.integers(0, len(data)))]
    return "upload" + draw(st.sampled_from([".csv", ".tsv", ".txt"])), data


def on_disk(name: str, data: bytes) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="govbot-fuzz-"))
    path = directory / (name or "upload")
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------- properties


@fuzz_settings(300)
@given(upload=files(list(PHONE_HEADERS)), needed=st.lists(st.sampled_from(["姓名", "事项", "x"]), max_size=2))
@example(upload=("list.xlsx", HALF_A_SHEET), needed=[])
@example(upload=("list.xlsx", NO_SHEET), needed=[])
def test_recipient_upload_parses_or_says_why(upload, needed) -> None:
    name, data = upload
    try:
        parsed = parse_upload(name, data, needed=needed, max_rows=50)
    except RecipientFileError as exc:
        assert str(exc)  # a message for staff
        return
    assert parsed.rows and all(r.source.startswith("upload:") for r in parsed.rows)
    for row in parsed.rows:
        assert (row.address is None) == (row.excluded is not None and row.excluded.value == "invalid")


@fuzz_settings(60)
@given(
    phones=st.lists(mobiles, min_size=1, max_size=10),
    names=st.lists(
        st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=8), min_size=10, max_size=10
    ),
    encoding=st.sampled_from(SUPPORTED),
    kind=st.sampled_from(["csv", "xlsx"]),
)
def test_a_well_formed_upload_keeps_every_row(phones, names, encoding, kind) -> None:
    rows = [["手机号", "姓名"], *([p, n.strip() or "x"] for p, n in zip(phones, names, strict=False))]
    data = csv_bytes(rows, encoding, ",") if kind == "csv" else xlsx_bytes(rows)
    if data is None:
        return
    parsed = parse_upload(f"list.{kind}", data, needed=["姓名"], max_rows=50)
    assert [r.raw for r in parsed.rows] == phones
    seen: set[str] = set()
    for row, phone in zip(parsed.rows, phones, strict=True):
        assert row.address == to_e164(phone)
        assert (row.excluded is None) == (row.address not in seen)
        seen.add(row.address)


@fuzz_settings(250)
@given(upload=files([*HEADERS, "事项编码", "事项名称"]))
@example(upload=("catalogue.xlsx", HALF_A_SHEET))
@example(upload=("catalogue.xlsx", NO_SHEET))
def test_catalogue_import_parses_or_says_why(upload) -> None:
    name, data = upload
    try:
        parsed = read_catalogue(on_disk(name, data))
    except ImportFileError as exc:
        assert str(exc)
        return
    assert parsed.errors or parsed.items  # an empty file is reported, never taken for an empty catalogue


@fuzz_settings(100)
@given(
    lines=st.lists(st.tuples(cells, st.one_of(cells, st.just("36072200-XK-001"))), max_size=8),
    encoding=st.sampled_from(ENCODINGS),
    cut=st.booleans(),
)
def test_alias_import_parses_or_says_why(lines, encoding, cut) -> None:
    data = csv_bytes([list(line) for line in lines], encoding, "\t")
    if data is None:
        return
    if cut and data:
        data = data[: len(data) // 2]
    try:
        read_aliases(on_disk("aliases.tsv", data))
    except ImportFileError as exc:
        assert str(exc)


def test_boms_are_detected() -> None:
    """The encodings the strategies use really are what the importer sees (a sanity check of the fuzzing)."""
    data = csv_bytes([["手机号"], ["13812345678"]], "utf-8-sig", ",")
    assert data is not None and data.startswith(codecs.BOM_UTF8)
    assert parse_upload("a.csv", data, needed=[], max_rows=5).encoding == "utf-8-sig"
