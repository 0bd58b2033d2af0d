"""并单: recognising a repeated complaint and handling it as one.

The conversational intake asks :meth:`Merger.find_duplicate` before filing: an open complaint by the same
citizen (account or phone) about the same respondent (compared by :func:`respondent_key`), or without a
respondent with a similar description (:func:`similarity`), is offered for 并单; when the citizen accepts,
:meth:`Merger.add_to_existing` adds the new text to it.  Staff merge two filed complaints with
:meth:`Merger.merge`.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from bot.core.phone import contact_phone
from bot.domains.complaints.errors import (
    MAX_DESCRIPTION,
    ConflictError,
    IllegalTransitionError,
    InvalidInputError,
    required,
)
from bot.domains.complaints.models import Complaint, ComplaintEvent
from bot.domains.complaints.states import FINAL, Action, Status, target
from bot.domains.complaints.store import Change, ComplaintStore, stored_key

_CN_DIGITS = str.maketrans("〇一二两三四五六七八九", "01223456789")


def respondent_key(respondent: str | None) -> str | None:
    """``"3号窗口"``, ``"三 号窗口"`` and ``"３号窗口 "`` compare equal."""
    if not respondent:
        return None
    text = unicodedata.normalize("NFKC", respondent).lower().translate(_CN_DIGITS)
    text = re.sub(r"[\s\W_]+", "", text)
    return text or None


def _bigrams(text: str) -> set[str]:
    t = re.sub(r"[\s\W_]+", "", unicodedata.normalize("NFKC", text))
    return {t[i : i + 2] for i in range(len(t) - 1)} or {t}


def similarity(a: str, b: str) -> float:
    """The Jaccard similarity of the two texts' character bigrams (0.0–1.0)."""
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / len(x | y) if x | y else 0.0


class Merger:
    def __init__(self, store: ComplaintStore) -> None:
        self.store = store

    async def find_duplicate(
        self,
        sender_id: str,
        respondent: str | None,
        description: str | None = None,
        phone: str | None = None,
    ) -> Complaint | None:
        """An open complaint by the same citizen (account or phone) about the same respondent within
        ``duplicate_hours`` (without a respondent: a similar description), newest first — offer 并单."""
        since = self.store.now() - timedelta(hours=self.store.settings.duplicate_hours)
        who = [Complaint.sender_id == sender_id]
        normalized = contact_phone(phone) if phone else None
        if normalized:
            who.append(Complaint.phone == normalized)
        async with self.store.sessions() as s:
            rows = (
                await s.execute(
                    select(Complaint)
                    .where(
                        or_(*who),
                        Complaint.received_at >= since,
                        Complaint.status.not_in([st.value for st in FINAL]),
                    )
                    .order_by(Complaint.received_at.desc())
                )
            ).scalars()
            key = (respondent_key(respondent) or "")[:200] or None
            for row in rows:
                if key and row.respondent_key == key:
                    return row
                if not key and not row.respondent_key and description:
                    if similarity(description, row.description) >= 0.5:
                        return row
        return None

    async def add_to_existing(
        self, number: str, sender_id: str, text: str, *, idempotency_key: str | None = None
    ) -> Complaint | None:
        """The citizen accepted 并单: ``text`` is added to their open complaint ``number``.  ``None`` when the
        number is unknown, not theirs, or already finished.  Idempotent per ``idempotency_key``."""
        key = stored_key(idempotency_key)
        if key:
            async with self.store.sessions() as s:
                done = (
                    await s.execute(
                        select(Complaint)
                        .join(ComplaintEvent, ComplaintEvent.complaint_id == Complaint.id)
                        .where(ComplaintEvent.idempotency_key == key)
                    )
                ).scalar_one_or_none()
            if done is not None:
                return done if done.sender_id == sender_id else None
        row = await self.store.get(number)
        if row is None or row.sender_id != sender_id or target(Action.SUPPLEMENT, Status(row.status)) is None:
            return None
        body = required(text, "补充内容", MAX_DESCRIPTION)
        for attempt in range(3):
            try:
                return await self.store.apply(
                    number, Action.SUPPLEMENT, "citizen", lambda r, n: Change(note=body), key=key
                )
            except IntegrityError:  # the same idempotency key, applied concurrently
                return await self.store.get(number)
            except ConflictError:  # staff changed it at the same moment: apply on the new version
                if attempt == 2:
                    raise
            except IllegalTransitionError:
                return None
        return None

    async def merge(self, number: str, into: str, actor: str) -> Complaint:
        """Staff 并单: ``number`` is closed as merged into the open complaint ``into``."""
        actor = required(actor, "经办人", 80)
        if number == into:
            raise InvalidInputError("不能把投诉合并到它自己。")
        now = self.store.now()
        async with self.store.sessions() as s:
            row = await self.store.load(s, number)
            dest = await self.store.load(s, into)
            current = Status(row.status)
            if target(Action.MERGE, current) is None:
                raise IllegalTransitionError(Action.MERGE, current)
            if Status(dest.status) in FINAL:
                raise InvalidInputError(f"目标投诉 {into} 已结束，不能并入。")
            merged = {
                "status": Status.MERGED.value,
                "merged_into_id": dest.id,
                "closed_at": now,
                "overdue": False,
                "status_note": f"已并入 {into} 一并办理",
            }
            for r, values in ((row, merged), (dest, {})):
                if not await self.store.write(s, r, {**values, "updated_at": now}):
                    raise ConflictError()
            s.add(
                self.store.event(
                    row,
                    row.version + 1,
                    now,
                    actor,
                    Action.MERGE,
                    Status.MERGED,
                    Change(note=f"并入 {into}", detail={"into": into}),
                )
            )
            s.add(
                self.store.event(
                    dest,
                    dest.version + 1,
                    now,
                    actor,
                    Action.SUPPLEMENT,
                    None,
                    Change(note=f"并入 {number}：{row.description}", detail={"merged": number}),
                )
            )
            await s.commit()
            return await self.store.load(s, number)
