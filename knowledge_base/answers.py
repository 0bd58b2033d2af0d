"""Reply texts: the aspect asked about first, precisely from the catalogue; channel-aware and plain text.

- A direct answer's first line names the item (【事项名称】) so the citizen knows what it is about.
- Materials: the FULL list, every item (一次性告知), split across messages when a channel needs it.
- No aspect: a short overview (window, number of materials, promised time, fee, online) + what else to ask.
- The FAQ answer is included when the question matches one of the item's FAQ questions.
- WeChat: each message ≤ 2048 UTF-8 bytes; SMS: shorter texts, each part ≤ 500 characters.  Messages are
  split at line boundaries (a single over-long line is split after a sentence mark, or hard as last resort).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from knowledge_base.aspects import (
    ASPECTS,
    CONDITIONS,
    FEE,
    LEGAL_BASIS,
    LOCATION,
    MATERIALS,
    OFFICE_HOURS,
    ONLINE,
    PHONE,
    PROCESS,
    TIME_LIMIT,
)
from knowledge_base.schema import FaqEntry, GuideItem
from knowledge_base.textproc import normalize_text

WECHAT = "wechat"
SMS = "sms"
WECHAT_MAX_BYTES = 2048
SMS_MAX_CHARS = 500
MAX_ASPECTS_PER_ANSWER = 3
FAQ_MIN_SIMILARITY = 0.5

DEFAULT_PHONE = "0797-3322110"
DEFAULT_HOURS = "周一至周五 上午8:30-12:00，下午14:30-17:30（法定节假日除外）"

_HINTS = "您还可以问：要带什么材料、收不收费、多久办好、在哪办、能否网上办、办理流程。"


@dataclass(frozen=True)
class ChannelFormat:
    name: str
    max_bytes: int | None
    max_chars: int | None
    short: bool


CHANNELS: dict[str, ChannelFormat] = {
    WECHAT: ChannelFormat(WECHAT, WECHAT_MAX_BYTES, None, short=False),
    SMS: ChannelFormat(SMS, None, SMS_MAX_CHARS, short=True),
}


def channel_format(channel: str) -> ChannelFormat:
    return CHANNELS.get(channel, CHANNELS[WECHAT])


# --------------------------------------------------------------------------------------------- splitting


def _fits(text: str, fmt: ChannelFormat) -> bool:
    if fmt.max_bytes is not None and len(text.encode("utf-8")) > fmt.max_bytes:
        return False
    return not (fmt.max_chars is not None and len(text) > fmt.max_chars)


def _largest_prefix(text: str, fmt: ChannelFormat) -> int:
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(text[:mid], fmt):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _split_line(line: str, fmt: ChannelFormat) -> list[str]:
    """Split one over-long line after sentence marks (。；;，), or hard at the limit when there are none."""
    pieces = re.findall(r"[^。；;，,]*[。；;，,]?", line)
    out: list[str] = []
    cur = ""
    for piece in (p for p in pieces if p):
        if _fits(cur + piece, fmt):
            cur += piece
            continue
        if cur:
            out.append(cur)
            cur = ""
        while not _fits(piece, fmt):  # a single sentence longer than a message: hard split
            cut = _largest_prefix(piece, fmt)
            out.append(piece[:cut])
            piece = piece[cut:]
        cur = piece
    if cur:
        out.append(cur)
    return out


def split_message(text: str, channel: str = WECHAT) -> list[str]:
    """Split ``text`` into messages within the channel's limit, at line boundaries."""
    fmt = channel_format(channel)
    text = text.strip()
    if _fits(text, fmt):
        return [text]
    parts: list[str] = []
    cur: list[str] = []
    for line in text.split("\n"):
        lines = [line] if _fits(line, fmt) else _split_line(line, fmt)
        for ln in lines:
            candidate = "\n".join([*cur, ln])
            if cur and not _fits(candidate, fmt):
                parts.append("\n".join(cur).strip("\n"))
                cur = [ln]
            else:
                cur.append(ln)
    if cur:
        parts.append("\n".join(cur).strip("\n"))
    return [p for p in parts if p.strip()]


# --------------------------------------------------------------------------------------------- FAQ


def _bigrams(text: str) -> set[str]:
    t = normalize_text(text).replace(" ", "")
    return {t[i : i + 2] for i in range(len(t) - 1)}


def match_faq(item: GuideItem, question: str) -> FaqEntry | None:
    """The FAQ entry whose question is closest to ``question`` (Dice on character bigrams), if close."""
    q = _bigrams(question)
    if len(q) < 2:
        return None
    best: tuple[float, FaqEntry] | None = None
    for entry in item.faq_list:
        f = _bigrams(entry.question)
        if not f:
            continue
        sim = 2 * len(q & f) / (len(q) + len(f))
        if best is None or sim > best[0]:
            best = (sim, entry)
    if best and best[0] >= FAQ_MIN_SIMILARITY:
        return best[1]
    return None


# --------------------------------------------------------------------------------------------- texts


def _title(item: GuideItem) -> str:
    return f"【{item.name}】"


def _first_clause(text: str, limit: int = 60) -> str:
    clause = re.split(r"[；;]", text, maxsplit=1)[0].strip()
    if len(clause) > limit:
        clause = clause[:limit] + "…"
    return clause + ("（详情可问“收费标准”）" if clause != text.strip() else "")


def _where(item: GuideItem) -> str:
    loc = item.location or item.window
    if item.window and item.window not in loc:
        num = re.match(r"[^（(]*", item.window)
        if not num or num.group(0) not in loc:
            loc = f"{loc}（{item.window}）"
    return loc


def online_text(item: GuideItem) -> str:
    raw = item.online.strip()
    if item.online_available:
        m = re.search(r"[（(](.+)[）)]", raw)
        via = f"，可通过{m.group(1).replace('/', '、')}办理" if m else ""
        return f"支持网上办理{via}；也可到{item.window or '窗口'}现场办理。"
    if raw and raw not in ("否", "不支持"):
        return f"{raw}。"
    return f"暂不支持网上办理，请到{_where(item)}现场办理。"


def aspect_lines(item: GuideItem, aspect: str, fmt: ChannelFormat) -> list[str]:
    """The lines answering one aspect of ``item`` (without the title line)."""
    if aspect == MATERIALS:
        mats = item.materials_list or [item.materials]
        lines = [f"申请材料（共{len(mats)}项）："]
        lines += [f"{i}. {m}" for i, m in enumerate(mats, start=1)]
        return lines
    if aspect == FEE:
        return [f"收费标准：{item.fee or '请咨询窗口'}"]
    if aspect == TIME_LIMIT:
        lines = [f"承诺办结时限：{item.promised_time_limit}"]
        if item.legal_time_limit and not fmt.short:
            lines.append(f"法定办结时限：{item.legal_time_limit}")
        return lines
    if aspect == LOCATION:
        lines = [f"办理地点：{_where(item)}"]
        if item.department and not fmt.short:
            lines.append(f"实施部门：{item.department}")
        return lines
    if aspect == OFFICE_HOURS:
        return [f"办公时间：{item.office_hours or '请咨询窗口'}"]
    if aspect == ONLINE:
        return [f"网上办理：{online_text(item)}"]
    if aspect == CONDITIONS:
        return [f"受理条件：{item.conditions or '请咨询窗口'}"]
    if aspect == PROCESS:
        steps = item.process_steps or ([item.process] if item.process else [])
        if fmt.short:
            lines = ["办理流程：" + "→".join(steps)]
        else:
            lines = ["办理流程："] + [f"{i}. {s}" for i, s in enumerate(steps, start=1)]
        # "开个小卖部咋办" asks how to get it done: the steps, and what else one must know to go
        lines.append(f"办理窗口：{item.window}")
        if not fmt.short:
            fee = _first_clause(item.fee) if item.fee else "请咨询窗口"
            lines.append(f"承诺时限：{item.promised_time_limit or '请咨询窗口'}；收费：{fee}")
        if item.online_available and not fmt.short:
            lines.append("网上办理：" + online_text(item))
        n = len(item.materials_list)
        if n:
            lines.append(f"需准备材料{n}项，回复“材料”可查看完整清单。")
        return lines
    if aspect == LEGAL_BASIS:
        return [f"设定依据：{item.legal_basis or '请咨询窗口'}"]
    if aspect == PHONE:
        return [f"咨询电话：{item.phone or DEFAULT_PHONE}"]
    raise ValueError(f"unknown aspect {aspect!r}")


def overview_lines(item: GuideItem, fmt: ChannelFormat) -> list[str]:
    n = len(item.materials_list)
    lines = [f"办理窗口：{item.window}"]
    if not fmt.short and item.department:
        lines.append(f"实施部门：{item.department}")
    lines.append(f"申请材料：共{n}项" + ("（回复“材料”查看清单）" if n else ""))
    lines.append(f"承诺时限：{item.promised_time_limit}")
    lines.append(f"收费：{_first_clause(item.fee) if item.fee else '请咨询窗口'}")
    lines.append("网上办理：" + ("支持" if item.online_available else "暂不支持"))
    if not fmt.short:
        lines.append(_HINTS)
    return lines


def faq_lines(entry: FaqEntry) -> list[str]:
    return [f"问：{entry.question}", f"答：{entry.answer}"]


def render_answer(
    item: GuideItem,
    aspects: Sequence[str],
    *,
    channel: str = WECHAT,
    question: str = "",
) -> list[str]:
    """Messages answering ``aspects`` of ``item`` (overview when empty), with a matching FAQ answer."""
    fmt = channel_format(channel)
    wanted = [a for a in aspects if a in ASPECTS][:MAX_ASPECTS_PER_ANSWER]
    faq = match_faq(item, question) if question else None
    lines = [_title(item)]
    if not wanted and faq is not None:
        lines += faq_lines(faq)
        if not fmt.short:
            lines.append(f"办理窗口：{item.window}；承诺时限：{item.promised_time_limit}。")
            lines.append(_HINTS)
    elif not wanted:
        lines += overview_lines(item, fmt)
    else:
        for aspect in wanted:
            lines += aspect_lines(item, aspect, fmt)
            if aspect == MATERIALS and not fmt.short:
                lines.append("以上为全部申请材料，请一次备齐。")
        if faq is not None and not _faq_redundant(faq, lines):
            lines.append("相关问答：")
            lines += faq_lines(faq)
    return split_message("\n".join(lines), channel)


def _faq_redundant(entry: FaqEntry, lines: Sequence[str]) -> bool:
    body = "\n".join(lines)
    return entry.answer in body


SHORT_LIMIT = 35  # a template variable's length on Alibaba Cloud SMS


def _clip(text: str, limit: int = SHORT_LIMIT) -> str:
    """``text`` in at most ``limit`` characters: its first sentence or clause that fits, else cut with 等."""
    text = re.sub(r"\s+", " ", text).strip().rstrip("。；;")
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    for breaks in ("。；;", "，,、"):
        pos = max(head.rfind(ch) for ch in breaks)
        if pos >= limit // 3:
            return head[:pos] + "等"
    return head + "等"


def short_answer(item: GuideItem, aspects: Sequence[str]) -> dict[str, str]:
    """The answer in a few words, for one SMS template (``guide_short``: the item, the first asked aspect
    in at most 35 characters, the window and its phone): what a citizen needs to come prepared or call."""
    aspect = next((a for a in aspects if a in ASPECTS), None)
    mats = item.materials_list or ([item.materials] if item.materials else [])
    if aspect == MATERIALS:
        names = (re.split(r"[，,；;]", re.sub(r"[（(][^）)]*[）)]", "", m), maxsplit=1)[0] for m in mats)
        answer = f"需材料{len(mats)}项：" + "、".join(names)
    elif aspect == FEE:
        fee = item.fee or "请咨询窗口"
        answer = fee if re.match(r"(不收费|免费|收费|按|每)", fee) else f"收费{fee}"
    elif aspect == TIME_LIMIT:
        answer = f"承诺{item.promised_time_limit}办结" if item.promised_time_limit else "时限请咨询窗口"
    elif aspect == LOCATION:
        answer = f"在{_where(item)}办理"
    elif aspect == OFFICE_HOURS:
        answer = f"办公时间{item.office_hours or '请咨询窗口'}"
    elif aspect == ONLINE:
        answer = "支持网上办理" if item.online_available else "暂不支持网上办理，请到窗口办理"
    elif aspect == CONDITIONS:
        answer = f"条件：{item.conditions or '请咨询窗口'}"
    elif aspect == PROCESS:
        answer = "流程：" + "→".join(item.process_steps or [item.process or "请咨询窗口"])
    elif aspect == LEGAL_BASIS:
        answer = f"依据{item.legal_basis or '请咨询窗口'}"
    else:  # no aspect, or the phone: the overview
        answer = f"需材料{len(mats)}项，承诺{item.promised_time_limit or '时限见窗口'}"
    return {
        "item": _clip(item.name),
        "answer": _clip(answer),
        "window": _clip(item.window or item.location or "综合窗口", 20),
        "phone": (item.phone or DEFAULT_PHONE).split("、")[0].split("，")[0].strip()[:20],
    }


def render_choices(items: Sequence[GuideItem], *, channel: str = WECHAT) -> list[str]:
    lines = ["您想咨询的是："]
    lines += [f"{i}. {it.name}" for i, it in enumerate(items, start=1)]
    lines.append("回复数字即可。")
    return split_message("\n".join(lines), channel)


def render_not_found(
    *, channel: str = WECHAT, phone: str = DEFAULT_PHONE, hours: str = DEFAULT_HOURS
) -> list[str]:
    fmt = channel_format(channel)
    if fmt.short:
        text = f"抱歉，未找到相关办事指南。可换个说法再问，或致电{phone}，办公时间：{hours}。"
    else:
        text = (
            "抱歉，暂未找到与您问题相关的办事指南。\n"
            "您可以换个说法，说出要办的事项，例如“身份证丢了怎么补办”“新生儿落户要带什么”。\n"
            f"也可拨打咨询电话 {phone}，办公时间：{hours}。"
        )
    return split_message(text, channel)


def render_elsewhere(where: str, *, channel: str = WECHAT, phone: str = DEFAULT_PHONE) -> list[str]:
    """Another office's service: where to go, and the center's phone."""
    if channel_format(channel).short:
        return split_message(f"该业务不在本中心办理，请到{where}咨询办理。咨询电话{phone}。", channel)
    return split_message(
        f"这项业务不在县行政服务中心办理，请到{where}咨询办理。\n如需帮助，可拨打咨询电话 {phone}。", channel
    )


def render_ask_item(*, channel: str = WECHAT, phone: str = DEFAULT_PHONE) -> list[str]:
    """The question has an aspect but no item and there is no previous item to refer to (or it is about
    something the catalogue has no words for: "朋友借钱不还怎么办" — hence the phone)."""
    return split_message(
        f"请问您要办理哪个事项？请说出事项名称，例如“护照要多少钱”“结婚登记在哪办”。其他问题请拨打{phone}。",
        channel,
    )


def render_choice_out_of_range(count: int, *, channel: str = WECHAT) -> list[str]:
    return split_message(f"请回复 1 到 {count} 之间的数字。", channel)
