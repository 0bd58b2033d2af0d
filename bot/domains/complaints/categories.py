"""Complaint categories (Open311 ``service_code``s) and the kind each one files as."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domains.complaints.states import Kind


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    description: str
    kind: Kind
    keywords: tuple[str, ...]
    group: str


CATEGORIES: tuple[Category, ...] = (
    Category(
        "attitude",
        "服务态度",
        "窗口工作人员态度生硬、不耐烦、刁难群众",
        Kind.COMPLAINT,
        ("态度", "刁难"),
        "投诉",
    ),
    Category(
        "efficiency",
        "办事效率",
        "推诿扯皮、拖延办理、未一次性告知、让群众多跑路",
        Kind.COMPLAINT,
        ("推诿", "拖延", "多跑"),
        "投诉",
    ),
    Category("fees", "违规收费", "乱收费、多收费、指定中介", Kind.REPORT, ("收费", "中介"), "举报"),
    Category("integrity", "廉政纪律", "吃拿卡要、索要好处、脱岗离岗", Kind.REPORT, ("好处", "脱岗"), "举报"),
    Category(
        "facility",
        "大厅环境与设施",
        "大厅秩序、叫号、自助设备、系统故障",
        Kind.COMPLAINT,
        ("叫号", "设备"),
        "投诉",
    ),
    Category("suggestion", "意见建议", "对政务服务的意见和建议", Kind.SUGGESTION, ("建议",), "建议"),
    Category("help", "求助", "办事遇到困难需要帮助", Kind.HELP, ("求助", "帮助"), "求助"),
    Category("other", "其他", "其他投诉", Kind.COMPLAINT, (), "投诉"),
)
BY_CODE: dict[str, Category] = {c.code: c for c in CATEGORIES}


def category(code: str) -> Category | None:
    return BY_CODE.get(code)
