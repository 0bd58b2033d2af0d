"""Complaint settings, from the environment.

COMPLAINT_ANSWER_DAYS        working days to answer, per kind: ``complaint=5,report=5,suggestion=5,help=5``
COMPLAINT_ACCEPT_DAYS        working days to decide acceptance (default 1)
COMPLAINT_MAX_EXTENSION_DAYS total extension allowed (default 10)
COMPLAINT_RECTIFY_DAYS       working days to rectify after a 差评 (default 5)
COMPLAINT_DUPLICATE_HOURS    same citizen + same respondent within this many hours → offer 并单 (default 72)
COMPLAINT_ESCALATE_EVERY     working days overdue per further 督办 level (default 2; levels 1–3)
COMPLAINT_SWEEP_INTERVAL     seconds between sweeps (督办 escalation, notice retries; default 300)
WECHAT_COMPLAINT_TEMPLATE_ID      WeChat template telling the citizen a complaint was answered
WECHAT_COMPLAINT_TEMPLATE_FIELDS  JSON mapping roles (number, status, result, time) to the template's keys
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.adapters.wechat.templates import field_map
from bot.core.env import ConfigError, Env
from bot.domains.complaints.states import Kind

# Role → the WeChat template's field key.  The defaults fit a 政务服务 "投诉处理结果通知" template with the
# fields 投诉编号 (character_string), 处理状态 (phrase), 处理结果 (thing), 答复时间 (time).
DEFAULT_TEMPLATE_FIELDS: dict[str, str] = {
    "number": "character_string1",
    "status": "phrase2",
    "result": "thing3",
    "time": "time4",
}


def _answer_days(raw: str) -> dict[Kind, int]:
    days = {kind: 5 for kind in Kind}
    for part in raw.split(","):
        name, sep, value = part.partition("=")
        if sep:
            try:
                days[Kind(name.strip())] = int(value)
            except ValueError:
                raise ConfigError(f"COMPLAINT_ANSWER_DAYS: {part.strip()!r} is not kind=days") from None
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
    sweep_interval: float = 300.0
    open311_posts_per_minute: int = 60  # per integration key; 0: no limit
    template_id: str = ""  # WECHAT_COMPLAINT_TEMPLATE_ID; empty: no template notices
    template_fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TEMPLATE_FIELDS))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | Env | None = None) -> ComplaintSettings:
        e = Env.of(env)
        d = cls()
        var = "WECHAT_COMPLAINT_TEMPLATE_FIELDS"
        return cls(
            answer_days=_answer_days(e.text("COMPLAINT_ANSWER_DAYS")),
            accept_days=e.integer("COMPLAINT_ACCEPT_DAYS", d.accept_days, 0),
            max_extension_days=e.integer("COMPLAINT_MAX_EXTENSION_DAYS", d.max_extension_days, 0),
            rectify_days=e.integer("COMPLAINT_RECTIFY_DAYS", d.rectify_days, 1),
            duplicate_hours=e.integer("COMPLAINT_DUPLICATE_HOURS", d.duplicate_hours, 0),
            escalate_every=e.integer("COMPLAINT_ESCALATE_EVERY", d.escalate_every, 1),
            sweep_interval=e.number("COMPLAINT_SWEEP_INTERVAL", d.sweep_interval, 1.0),
            open311_posts_per_minute=e.integer("OPEN311_POSTS_PER_MINUTE", d.open311_posts_per_minute, 0),
            template_id=e.text("WECHAT_COMPLAINT_TEMPLATE_ID"),
            template_fields=field_map(e.raw(var), DEFAULT_TEMPLATE_FIELDS, var),
        )
