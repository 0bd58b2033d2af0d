"""Our model of a case (办件) in the electronic approval system, independent of any backend's JSON.

The applicant's phone is kept for verification and SMS notifications only and is never shown unmasked: the
``repr`` of :class:`Applicant` masks it, so a stray log line cannot leak it.  ID numbers are not part of the
model at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from bot.core.masking import mask_name, mask_phone


class CaseStatus(StrEnum):
    APPLIED = "applied"  # 申请: submitted, not yet accepted
    ACCEPTED = "accepted"  # 受理
    CORRECTION = "correction"  # 补正: waiting for missing materials
    REVIEW = "review"  # 审核
    APPROVAL = "approval"  # 审批 (decision)
    COMPLETED = "completed"  # 办结: result ready
    REJECTED = "rejected"  # 不予受理
    RETURNED = "returned"  # 退回
    COLLECTED = "collected"  # 已取件

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @classmethod
    def from_label(cls, label: str) -> CaseStatus | None:
        return _BY_LABEL.get(label.strip())


_LABELS = {
    CaseStatus.APPLIED: "申请",
    CaseStatus.ACCEPTED: "受理",
    CaseStatus.CORRECTION: "补正",
    CaseStatus.REVIEW: "审核",
    CaseStatus.APPROVAL: "审批",
    CaseStatus.COMPLETED: "办结",
    CaseStatus.REJECTED: "不予受理",
    CaseStatus.RETURNED: "退回",
    CaseStatus.COLLECTED: "已取件",
}
_BY_LABEL = {v: k for k, v in _LABELS.items()}
FINAL_STATUSES = frozenset(
    {CaseStatus.COMPLETED, CaseStatus.REJECTED, CaseStatus.RETURNED, CaseStatus.COLLECTED}
)


def mask_ticket(ticket: str) -> str:
    """For logs: ``202602130000126`` → ``20260213****126``."""
    if len(ticket) < 11:
        return "*" * len(ticket)
    return f"{ticket[:8]}****{ticket[-3:]}"


@dataclass(frozen=True)
class Applicant:
    name: str
    phone: str  # national digits, e.g. 13812345678

    def __repr__(self) -> str:
        return f"Applicant(name={mask_name(self.name)!r}, phone={mask_phone(self.phone)!r})"


@dataclass(frozen=True)
class Step:
    status: CaseStatus
    at: datetime
    raw_status: str = ""


@dataclass(frozen=True)
class Collection:
    """Where and how the applicant collects the result of a finished case."""

    place: str = ""
    method: str = ""
    hours: str = ""
    bring: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    ticket_no: str
    item_code: str
    item_name: str
    applicant: Applicant
    status: CaseStatus
    raw_status: str = ""
    window: str = ""
    window_phone: str = ""
    accepted_at: datetime | None = None
    time_limit_days: int | None = None  # promised time limit in working days (0 = 即办)
    promised_on: date | None = None  # only when the backend states the date itself
    updated_at: datetime | None = None
    history: tuple[Step, ...] = ()
    missing_materials: tuple[str, ...] = ()
    collection: Collection | None = None

    def status_round(self) -> int:
        """How many times the case has entered its current status (consecutive repeats count once).

        A second 补正 round is a new event for the applicant; the same status saved twice is not."""
        runs = 0
        previous: CaseStatus | None = None
        for step in sorted(self.history, key=lambda s: s.at):
            if step.status is not previous and step.status is self.status:
                runs += 1
            previous = step.status
        if previous is not self.status:
            runs += 1  # the history lags behind the current status
        return max(runs, 1)

    # -- cache (de)serialisation -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "ticket_no": self.ticket_no,
            "item_code": self.item_code,
            "item_name": self.item_name,
            "applicant": {"name": self.applicant.name, "phone": self.applicant.phone},
            "status": self.status.value,
            "raw_status": self.raw_status,
            "window": self.window,
            "window_phone": self.window_phone,
            "accepted_at": self.accepted_at.isoformat() if self.accepted_at else None,
            "time_limit_days": self.time_limit_days,
            "promised_on": self.promised_on.isoformat() if self.promised_on else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "history": [
                {"status": s.status.value, "at": s.at.isoformat(), "raw_status": s.raw_status}
                for s in self.history
            ],
            "missing_materials": list(self.missing_materials),
            "collection": None
            if self.collection is None
            else {
                "place": self.collection.place,
                "method": self.collection.method,
                "hours": self.collection.hours,
                "bring": list(self.collection.bring),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        coll = data.get("collection")
        return cls(
            ticket_no=data["ticket_no"],
            item_code=data["item_code"],
            item_name=data["item_name"],
            applicant=Applicant(data["applicant"]["name"], data["applicant"]["phone"]),
            status=CaseStatus(data["status"]),
            raw_status=data.get("raw_status", ""),
            window=data.get("window", ""),
            window_phone=data.get("window_phone", ""),
            accepted_at=datetime.fromisoformat(data["accepted_at"]) if data.get("accepted_at") else None,
            time_limit_days=data.get("time_limit_days"),
            promised_on=date.fromisoformat(data["promised_on"]) if data.get("promised_on") else None,
            updated_at=datetime.fromisoformat(data["updated_at"]) if data.get("updated_at") else None,
            history=tuple(
                Step(CaseStatus(s["status"]), datetime.fromisoformat(s["at"]), s.get("raw_status", ""))
                for s in data.get("history", [])
            ),
            missing_materials=tuple(data.get("missing_materials", [])),
            collection=None
            if coll is None
            else Collection(coll["place"], coll["method"], coll["hours"], tuple(coll["bring"])),
        )


@dataclass(frozen=True)
class StatusChange:
    """One entry of the backend's change feed."""

    ticket_no: str
    status: CaseStatus
    changed_at: datetime | None
    raw_status: str = ""


@dataclass(frozen=True)
class ChangeBatch:
    changes: tuple[StatusChange, ...]
    next_cursor: str | None  # pass it to the next ``changes_since`` call; None = no progress
    has_more: bool = False
