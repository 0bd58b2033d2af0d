"""The XLSX export of a campaign's results (``govbot broadcast export``, ``GET /api/broadcasts/<id>/export``):
one sheet, a header row, then one row per recipient (``BroadcastService.results``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.core.spreadsheet import safe_cell

# (key in the result row, column header, column width)
_COLUMNS = (
    ("seq", "序号", 8),
    ("source", "来源", 14),
    ("raw", "原始号码", 18),
    ("phone", "号码(E.164)", 18),
    ("result", "结果", 14),
    ("status", "状态", 12),
    ("error_code", "错误码", 10),
    ("provider_sid", "短信ID", 38),
    ("segments", "条段数", 8),
    ("sent_at", "发送时间", 28),
    ("delivered_at", "送达时间", 28),
)
# a WeChat campaign's openid list: the state of the mass-send job that carried each openid
_WECHAT_COLUMNS = (
    ("seq", "序号", 8),
    ("source", "来源", 14),
    ("raw", "原始内容", 30),
    ("openid", "openid", 34),
    ("result", "结果", 24),
    ("msg_id", "微信任务号", 16),
    ("job_status", "微信完成状态", 18),
)


def _cell(key: str, value: Any) -> Any:
    """Numbers stay numbers; text is never a live formula (a raw cell "=HYPERLINK(…)" from an upload)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value if key == "phone" and value[1:].isdigit() else safe_cell(value)  # E.164 stays
    return value


def write_xlsx(
    rows: Sequence[Mapping[str, Any]], path: str | Path, tick: Callable[[int], None] | None = None
) -> int:
    """Write ``rows`` to ``path``; returns how many recipients it wrote (``tick(n)`` every 500 rows)."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "发送结果"
    columns = _WECHAT_COLUMNS if rows and "openid" in rows[0] else _COLUMNS
    ws.append([header for _, header, _ in columns])
    for n, r in enumerate(rows, 1):
        ws.append([_cell(key, r[key]) for key, _, _ in columns])
        if tick is not None and n % 500 == 0:
            tick(n)
    for col, (_, _, width) in zip("ABCDEFGHIJK", columns, strict=False):
        ws.column_dimensions[col].width = width
    wb.save(str(path))
    return len(rows)
