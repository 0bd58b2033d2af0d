"""The citizen's side of a complaint: the read-back before filing, "查询投诉 TS…", and 好差评.

A complaint is only shown to the account that filed it; an unknown number and someone else's get the same
answer, so numbers cannot be probed.  A rating (1–5, or the words of :data:`~.states.RATING_LABELS`) is
accepted while the complaint is answered and not yet rated; 差评 (1–2) reopens it for rectification once.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.core.clock import as_utc
from bot.core.masking import mask_phone, mask_sender
from bot.domains.complaints import numbers
from bot.domains.complaints.errors import ConflictError, IllegalTransitionError
from bot.domains.complaints.intake import NewComplaint, kind_and_category
from bot.domains.complaints.models import Complaint
from bot.domains.complaints.states import (
    AWAITING_ACCEPTANCE,
    BAD_RATINGS,
    IN_HANDLING,
    KIND_LABELS,
    RATING_LABELS,
    STATUS_LABELS,
    Action,
    Kind,
    Status,
)
from bot.domains.complaints.store import Change, ComplaintStore, cn_date

log = logging.getLogger(__name__)

UNKNOWN_OR_NOT_YOURS = "未查到该编号的投诉。请核对编号；投诉只能用提交时的微信或手机号查询。"
ASK_FOR_NUMBER = "请发送投诉编号，例如：查询投诉 TS2345678ABC。"
RATING_PROMPT = "请对办理结果评价，回复数字：5非常满意 4满意 3基本满意 2不满意 1非常不满意。"
NOT_RATABLE = "投诉 {number} 目前不在评价阶段，感谢您的关注。"

_RATING_WORDS = sorted(((label, score) for score, label in RATING_LABELS.items()), key=lambda p: -len(p[0]))


@dataclass(frozen=True)
class RateResult:
    ok: bool
    text: str
    reopened: bool = False


def parse_rating(text: str) -> int | None:
    """``"5"``, ``"５分"``, ``"非常满意"`` → 5; ``"不满意"`` → 2; anything else → ``None``."""
    t = re.sub(r"[\s。！!.,，]+", "", unicodedata.normalize("NFKC", text or ""))
    match = re.fullmatch(r"([1-5])分?", t)
    if match:
        return int(match.group(1))
    for label, score in _RATING_WORDS:
        if t == label:
            return score
    return None


def confirmation_text(new: NewComplaint) -> str:
    """The read-back before submitting (the phone masked)."""
    kind = kind_and_category(new)[0] if new.description.strip() else Kind.COMPLAINT
    lines = [f"请确认您的{KIND_LABELS[kind]}：", f"内容：{new.description.strip()}"]
    if new.respondent:
        lines.append(f"涉及窗口/部门/人员：{new.respondent.strip()}")
    if new.occurred:
        lines.append(f"发生时间：{new.occurred.strip()}")
    if new.phone:
        lines.append(f"联系电话：{mask_phone(new.phone)}")
    lines.append(f"是否保密：{'是' if new.confidential else '否'}")
    lines.append("回复“确认”提交，回复“取消”放弃。")
    return "\n".join(lines)


class CitizenDesk:
    def __init__(self, store: ComplaintStore) -> None:
        self.store = store

    async def _owned(self, number: str, sender_id: str) -> Complaint | None:
        row = await self.store.get(number)
        if row is None or row.sender_id != sender_id:
            return None
        return row

    async def lookup(self, text: str, sender_id: str) -> str:
        """The reply to "查询投诉 TS…": the same sentence for an unknown number and someone else's."""
        number = numbers.parse(text)
        if number is None:
            return ASK_FOR_NUMBER
        row = await self._owned(number, sender_id)
        log.info("complaint lookup %s by %s: %s", number, mask_sender(sender_id), "ok" if row else "refused")
        if row is None:
            return UNKNOWN_OR_NOT_YOURS
        status = Status(row.status)
        local = as_utc(row.received_at)
        assert local is not None
        lines = [
            f"投诉编号：{row.number}",
            f"类型：{KIND_LABELS[Kind(row.kind)]}",
            f"登记时间：{local.astimezone(self.store.calendar.tz):%Y-%m-%d %H:%M}",
            f"当前状态：{STATUS_LABELS[status]}",
        ]
        if status in AWAITING_ACCEPTANCE:
            lines.append(f"受理期限：{cn_date(row.accept_due)}前")
        elif status in IN_HANDLING and row.due:
            lines.append(f"预计答复：{cn_date(row.due)}前")
        elif status == Status.REJECTED and row.decision_reason:
            lines.append(f"说明：{row.decision_reason}")
        elif status == Status.MERGED:
            lines.append("说明：已与您的其他同类投诉合并办理。")
        if row.reply_text and status in (Status.REPLIED, Status.CALLED_BACK, Status.CLOSED):
            lines.append(f"答复：{row.reply_text}")
        if status == Status.REPLIED:
            lines.append(RATING_PROMPT)
        return "\n".join(lines)

    async def awaiting_rating(self, sender_id: str) -> Complaint | None:
        """The citizen's latest answered, not yet rated complaint (so a bare "1"–"5" can be a rating)."""
        async with self.store.sessions() as s:
            return (
                await s.execute(
                    select(Complaint)
                    .where(Complaint.sender_id == sender_id, Complaint.status == Status.REPLIED.value)
                    .order_by(Complaint.replied_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()

    async def rate(self, number: str, sender_id: str, score: int, comment: str | None = None) -> RateResult:
        """好差评: 1–5 from the citizen who filed it.  1–2 (差评) reopens the complaint for rectification with
        a deadline (once; a later 差评 is recorded for 申诉复核 and callback)."""
        row = await self._owned(number, sender_id)
        if row is None:
            return RateResult(False, UNKNOWN_OR_NOT_YOURS)
        if score not in RATING_LABELS:
            return RateResult(False, RATING_PROMPT)
        if Status(row.status) != Status.REPLIED:
            return RateResult(False, NOT_RATABLE.format(number=number))
        comment = (comment or "").strip()[:500] or None
        bad = score in BAD_RATINGS
        label = RATING_LABELS[score]
        try:
            if bad and row.reopen_count < self.store.settings.max_reopens:
                return await self._reopen(number, score, comment)
            await self.store.apply(
                number,
                Action.RATE,
                "citizen",
                lambda r, now: Change(
                    values={
                        "rating": score,
                        "rated_at": now,
                        "rating_comment": comment,
                        "bad_review": bad,
                        "status_note": f"已评价：{label}",
                    },
                    note=comment,
                    detail={"rating": score, "label": label},
                ),
            )
        except (IllegalTransitionError, ConflictError):
            return RateResult(False, NOT_RATABLE.format(number=number))
        if bad:
            return RateResult(True, f"已记录您的评价（{label}）。工作人员将回访核实，感谢您的监督。")
        return RateResult(True, f"感谢您的评价（{label}）！")

    async def _reopen(self, number: str, score: int, comment: str | None) -> RateResult:
        """差评 the first time(s): back to the department for rectification with a new deadline."""
        label = RATING_LABELS[score]

        def build(r: Complaint, now: datetime) -> Change:
            due = self.store.calendar.add(self.store.today(now), self.store.settings.rectify_days)
            return Change(
                values={
                    "rating": score,
                    "rated_at": now,
                    "rating_comment": comment,
                    "bad_review": True,
                    "reopen_count": r.reopen_count + 1,
                    "due": due,
                    "overdue": False,
                    "supervision_level": 0,
                    "status_note": "差评整改中",
                },
                note=comment,
                department=r.owner_department,
                detail={"rating": score, "label": label, "due": due.isoformat()},
            )

        fresh = await self.store.apply(number, Action.REOPEN, "citizen", build)
        assert fresh.due is not None
        return RateResult(
            True,
            f"很抱歉让您不满意（{label}）。投诉 {number} 已重新交办整改，"
            f"将于{cn_date(fresh.due)}前把整改结果告诉您。",
            reopened=True,
        )
