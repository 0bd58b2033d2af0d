"""The 办事指南 catalogue format: the 17 columns, their attribute names, and parsers for the structured cells.

The export of the provincial government-service platform has one row per service item (事项).  Materials are
numbered and separated by "；", process steps are joined by "→", and the FAQ cell holds pairs "问：…答：…"
separated by "|".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# (Chinese header, attribute name) in file order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("事项编码", "code"),
    ("事项名称", "name"),
    ("事项类型", "item_type"),
    ("实施部门", "department"),
    ("办理窗口", "window"),
    ("受理条件", "conditions"),
    ("申请材料", "materials"),
    ("办理流程", "process"),
    ("法定办结时限", "legal_time_limit"),
    ("承诺办结时限", "promised_time_limit"),
    ("收费标准", "fee"),
    ("设定依据", "legal_basis"),
    ("咨询电话", "phone"),
    ("办理地点", "location"),
    ("办公时间", "office_hours"),
    ("网上办理", "online"),
    ("常见问题", "faq"),
)
HEADERS: tuple[str, ...] = tuple(h for h, _ in COLUMNS)
FIELDS: tuple[str, ...] = tuple(f for _, f in COLUMNS)
HEADER_TO_FIELD: dict[str, str] = dict(COLUMNS)
FIELD_TO_HEADER: dict[str, str] = {f: h for h, f in COLUMNS}

# Columns that must be present in the header and non-empty in every row.
REQUIRED_NON_EMPTY: tuple[str, ...] = ("事项编码", "事项名称", "申请材料", "承诺办结时限")

SHEET_NAME = "办事指南"

# 事项编码: 8-digit region code, a two-letter item-type code, a 3-digit sequence number.
CODE_RE = re.compile(r"^\d{8}-[A-Z]{2}-\d{3}$")

_MATERIAL_SPLIT = re.compile(r"[；;]\s*(?=\d{1,2}[.．、])")
_MATERIAL_NUM = re.compile(r"^\s*\d{1,2}[.．、]\s*")
_FAQ_RE = re.compile(r"^\s*问[:：](?P<q>.*?)答[:：](?P<a>.*)$", re.S)


@dataclass(frozen=True)
class FaqEntry:
    question: str
    answer: str


@dataclass(frozen=True)
class GuideItem:
    """One catalogue row (all 17 columns as text) plus the parsed structure the bot answers from."""

    code: str
    name: str
    item_type: str = ""
    department: str = ""
    window: str = ""
    conditions: str = ""
    materials: str = ""
    process: str = ""
    legal_time_limit: str = ""
    promised_time_limit: str = ""
    fee: str = ""
    legal_basis: str = ""
    phone: str = ""
    location: str = ""
    office_hours: str = ""
    online: str = ""
    faq: str = ""
    materials_list: tuple[str, ...] = field(default=(), compare=False)
    process_steps: tuple[str, ...] = field(default=(), compare=False)
    faq_list: tuple[FaqEntry, ...] = field(default=(), compare=False)

    @classmethod
    def from_row(cls, row: dict[str, str]) -> GuideItem:
        values = {f: (row.get(f) or "") for f in FIELDS}
        return cls(
            **values,
            materials_list=tuple(parse_materials(values["materials"])),
            process_steps=tuple(parse_process(values["process"])),
            faq_list=tuple(parse_faq(values["faq"])),
        )

    def row(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in FIELDS}

    @property
    def online_available(self) -> bool:
        return is_online(self.online)


def parse_materials(text: str) -> list[str]:
    """Split the numbered materials cell into items, without the leading numbers."""
    text = (text or "").strip()
    if not text:
        return []
    parts = _MATERIAL_SPLIT.split(text)
    items = [_MATERIAL_NUM.sub("", p).strip().rstrip("；;") for p in parts]
    return [i for i in items if i]


def parse_process(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"\s*(?:→|->|＞)\s*", text or "") if s.strip()]


def parse_faq(text: str) -> list[FaqEntry]:
    out: list[FaqEntry] = []
    for chunk in (text or "").split("|"):
        m = _FAQ_RE.match(chunk)
        if m and m.group("q").strip() and m.group("a").strip():
            out.append(FaqEntry(m.group("q").strip(), m.group("a").strip()))
    return out


def is_online(text: str) -> bool:
    t = (text or "").strip()
    return bool(t) and t[0] in "是可√Yy"
