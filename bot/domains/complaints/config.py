"""Complaint settings, from the environment.

COMPLAINT_ANSWER_DAYS        working days to answer, per kind: ``complaint=5,report=5,suggestion=5,help=5``
COMPLAINT_ACCEPT_DAYS        working days to decide acceptance (default 1)
COMPLAINT_MAX_EXTENSION_DAYS total extension allowed (default 10)
COMPLAINT_RECTIFY_DAYS       working days to rectify after a 差评 (default 5)
COMPLAINT_DUPLICATE_HOURS    same citizen + same respondent within this many hours → offer 并单 (default 72)
COMPLAINT_ESCALATE_EVERY     working days overdue per further 督办 level (default 2; levels 1–3)
OPEN311_API_KEYS             comma-separated API keys accepted by Open311 POST /requests
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domains.complaints.states import Kind


def _answer_days(raw: str) -> dict[Kind, int]:
    days = {kind: 5 for kind in Kind}
    for part in raw.split(","):
        name, sep, value = part.partition("=")
        if sep:
            days[Kind(name.strip())] = int(value)
    return days


@dataclass(frozen=True)
class ComplaintSettings:
    answer_days: Mapping[Kind, int] = field(default_factory=lambda: {kind: 5 for kind in Kind})
    accept_days: int = 1
    max_extension_days: int = 10
    rectify_days: int = 5
    duplicate_hours: int = 72
    escalate_every: int = 2
    max_supervision_level: int = 3
    max_reopens: int = 1
    notice_max_attempts: int = 5
    open311_api_keys: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ComplaintSettings:
        e = os.environ if env is None else env
        return cls(
            answer_days=_answer_days(e.get("COMPLAINT_ANSWER_DAYS", "")),
            accept_days=int(e.get("COMPLAINT_ACCEPT_DAYS", "1")),
            max_extension_days=int(e.get("COMPLAINT_MAX_EXTENSION_DAYS", "10")),
            rectify_days=int(e.get("COMPLAINT_RECTIFY_DAYS", "5")),
            duplicate_hours=int(e.get("COMPLAINT_DUPLICATE_HOURS", "72")),
            escalate_every=int(e.get("COMPLAINT_ESCALATE_EVERY", "2")),
            open311_api_keys=frozenset(
                k.strip() for k in e.get("OPEN311_API_KEYS", "").split(",") if k.strip()
            ),
        )
