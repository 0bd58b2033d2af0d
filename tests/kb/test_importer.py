"""Catalogue and alias import/export: formats, validation, one-transaction upsert, versions, round trip."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.core.spreadsheet import decode_bytes
from knowledge_base.importer import (
    current_version,
    ensure_sample_loaded,
    export_catalogue,
    import_aliases,
    import_catalogue,
    load_aliases,
    load_items,
    read_catalogue,
)
from knowledge_base.models import KbAlias, KbItem
from tests.support.kb import (
    SAMPLE_ALIASES,
    SAMPLE_CATALOGUE,
    SAMPLE_CSV,
    SAMPLE_GBK,
    load_sample,
    sample_rows,
    write_csv,
)


def test_three_sample_files_parse_identically() -> None:
    parsed = [read_catalogue(p) for p in (SAMPLE_CATALOGUE, SAMPLE_CSV, SAMPLE_GBK)]
    assert [p.encoding for p in parsed] == ["xlsx", "utf-8-sig", "gb18030"]
    for p in parsed:
        assert not p.errors and p.header_row == 1 and len(p.items) == 110
    rows = [[it.row() for it in p.items] for p in parsed]
    assert rows[0] == rows[1] == rows[2]
    first = parsed[0].items[0]
    assert first.code == "36072200-XK-001" and len(first.materials_list) == 6
    assert first.process_steps[0] == "申请" and len(first.faq_list) == 3


async def test_import_from_each_file_gives_same_database(kb_sessions, tmp_path: Path) -> None:
    report = await import_catalogue(kb_sessions, SAMPLE_GBK)
    assert report.ok and len(report.added) == 110 and report.version == 1
    async with kb_sessions() as s:
        from_gbk = [it.row() for it in await load_items(s)]
    for path in (SAMPLE_CSV, SAMPLE_CATALOGUE):
        again = await import_catalogue(kb_sessions, path)
        assert again.ok and not again.changed and again.unchanged == 110, again.summary()
    async with kb_sessions() as s:
        assert [it.row() for it in await load_items(s)] == from_gbk
        assert await current_version(s) == 1  # no change → no new version


async def test_dry_run_writes_nothing(kb_sessions) -> None:
    report = await import_catalogue(kb_sessions, SAMPLE_CATALOGUE, dry_run=True)
    assert report.ok and report.dry_run and len(report.added) == 110 and not report.applied
    assert "试运行" in report.summary()
    async with kb_sessions() as s:
        assert await s.scalar(select(func.count()).select_from(KbItem)) == 0
        assert await current_version(s) == 0


async def test_update_and_remove_with_dry_run_report(kb_sessions, tmp_path: Path) -> None:
    await load_sample(kb_sessions)
    rows = sample_rows()
    rows[1][10] = "不收费（测试修改）"  # fee of XK-001
    removed = rows.pop(8)[0]  # 36072200-XK-008, which has the alias 执照丢了
    path = write_csv(tmp_path / "changed.csv", rows)
    dry = await import_catalogue(kb_sessions, path, dry_run=True)
    assert removed == "36072200-XK-008"
    assert dry.updated == ["36072200-XK-001"] and dry.removed == [removed] and not dry.added
    assert dry.reordered == 110 - 8
    assert any("别名" in w for w in dry.warnings)
    async with kb_sessions() as s:
        before = await current_version(s)
        assert (await s.get(KbItem, "36072200-XK-001")).fee == "不收费"
    applied = await import_catalogue(kb_sessions, path)
    assert applied.applied and applied.version == before + 1
    async with kb_sessions() as s:
        assert (await s.get(KbItem, "36072200-XK-001")).fee == "不收费（测试修改）"
        assert await s.get(KbItem, removed) is None
        assert await s.scalar(select(func.count()).select_from(KbItem)) == 109


async def test_bad_rows_change_nothing_and_every_error_is_reported(kb_sessions, tmp_path: Path) -> None:
    await load_sample(kb_sessions)
    rows = sample_rows()
    rows[2][1] = ""  # row 3: empty name
    rows[3][0] = "36072200-XK-01"  # row 4: malformed code
    rows[4][0] = rows[1][0]  # row 5: duplicate of row 2
    rows[6][6] = "  "  # row 7: empty materials
    rows[8][9] = ""  # row 9: empty promised time
    rows[10][1] = "新名称"  # a valid change that must not be applied either
    path = write_csv(tmp_path / "bad.csv", rows)
    report = await import_catalogue(kb_sessions, path)
    assert not report.ok and not report.applied
    found = {(e.row, e.column) for e in report.errors}
    assert found == {(3, "事项名称"), (4, "事项编码"), (5, "事项编码"), (7, "申请材料"), (9, "承诺办结时限")}
    text = report.summary()
    assert "第5行【事项编码】：与第2行重复" in text and "未做任何修改" in text
    async with kb_sessions() as s:
        assert await current_version(s) == 2
        assert (await s.get(KbItem, rows[10][0])).name != "新名称"


async def test_missing_column_and_header_detection(kb_sessions, tmp_path: Path) -> None:
    rows = sample_rows()
    titled = [["信丰县行政服务中心办事指南目录"], ["导出时间：2026-01-01"], *rows]
    report = await import_catalogue(kb_sessions, write_csv(tmp_path / "titled.csv", titled, "utf-8"))
    assert report.ok and report.header_row == 3 and report.encoding == "utf-8" and len(report.added) == 110

    no_fee = [[c for i, c in enumerate(r) if i != 10] for r in rows]
    report = await import_catalogue(kb_sessions, write_csv(tmp_path / "nofee.csv", no_fee))
    assert [(e.column, e.message) for e in report.errors] == [("收费标准", "缺少必需的列")]

    report = await import_catalogue(kb_sessions, tmp_path / "missing.xlsx")
    assert not report.ok and "文件不存在" in report.errors[0].message


def test_encoding_detection() -> None:
    text = "事项编码,事项名称"
    assert decode_bytes(text.encode("utf-8-sig")) == (text, "utf-8-sig")
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8")
    assert decode_bytes(text.encode("gbk")) == (text, "gb18030")
    assert decode_bytes("䶮".encode("gb18030")) == ("䶮", "gb18030")  # outside GBK, inside GB18030


async def test_export_round_trip(kb_sessions, tmp_path: Path) -> None:
    await load_sample(kb_sessions)
    out = tmp_path / "export.xlsx"
    assert await export_catalogue(kb_sessions, out) == 110

    def cells(path: Path) -> list[list[str]]:
        wb = openpyxl.load_workbook(path)
        ws = wb["办事指南"]
        return [["" if c.value is None else str(c.value) for c in row] for row in ws.iter_rows()]

    assert cells(out) == cells(SAMPLE_CATALOGUE)
    ws = openpyxl.load_workbook(out)["办事指南"]
    assert ws.freeze_panes == "A2" and ws["A1"].font.b and ws.column_dimensions["G"].width == 60
    again = await import_catalogue(kb_sessions, out)
    assert again.ok and not again.changed


async def test_alias_import(kb_sessions, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    await load_sample(kb_sessions)
    bad.write_text(
        "身份证丢了\t36072200-QR-035\n没有制表符的一行\n新别名\t36072200-QR-999\n坏编码\tQR-35\n"
        "身份证丢了\t36072200-QR-034\n\t36072200-QR-035\n",
        encoding="utf-8",
    )
    report = await import_aliases(kb_sessions, bad)
    assert {(e.row, e.column) for e in report.errors} == {(2, ""), (4, "事项编码"), (5, "别名"), (6, "别名")}
    assert not report.applied
    unknown = tmp_path / "unknown.tsv"
    unknown.write_text("新别名\t36072200-QR-999\n", encoding="gbk")
    report = await import_aliases(kb_sessions, unknown)
    assert [(e.row, e.column) for e in report.errors] == [(1, "事项编码")] and report.encoding == "gb18030"
    async with kb_sessions() as s:
        assert len(await load_aliases(s)) == 80
        assert await current_version(s) == 2
    again = await import_aliases(kb_sessions, SAMPLE_ALIASES)
    assert again.ok and not again.changed and again.unchanged == 80
    fewer = tmp_path / "fewer.tsv"
    fewer.write_text("别名\t事项编码\n补身份证\t36072200-QR-035\n", encoding="utf-8")  # with a header line
    report = await import_aliases(kb_sessions, fewer)
    assert report.ok and report.header_row == 1 and len(report.removed) == 79 and report.version == 3
    async with kb_sessions() as s:
        assert await s.scalar(select(func.count()).select_from(KbAlias)) == 1


async def test_ensure_sample_loaded(kb_sessions) -> None:
    assert await ensure_sample_loaded(kb_sessions) is True
    assert await ensure_sample_loaded(kb_sessions) is False
    async with kb_sessions() as s:
        assert len(await load_items(s)) == 110 and len(await load_aliases(s)) == 80


def test_a_truncated_utf16_file_is_a_clear_error() -> None:
    import codecs

    from knowledge_base.importer import ImportFileError

    with pytest.raises(ImportFileError, match="BOM"):
        decode_bytes(codecs.BOM_UTF16_LE + "事项编码".encode("utf-16-le")[:-1])
