"""Settings of the progress feature (read from the environment; see the variables below)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.adapters.wechat.templates import field_map

# Role → the WeChat template's field key.  The default keys fit a 政务服务 "办件进度提醒" template with the
# fields 事项名称 (thing), 受理号 (character_string), 办理状态 (phrase), 更新时间 (time), 温馨提示 (thing).
DEFAULT_TEMPLATE_FIELDS: dict[str, str] = {
    "item": "thing1",
    "ticket": "character_string2",
    "status": "phrase3",
    "time": "time4",
    "remark": "thing5",
}


def _num(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class ProgressSettings:
    """``PROGRESS_MAX_FAILURES`` failed lookups per citizen within ``PROGRESS_FAILURE_WINDOW`` s start a
    cool-down of ``PROGRESS_COOLDOWN`` s; ``PROGRESS_TICKET_MAX_FAILURES`` failed verifications of one
    ticket (from anyone) lock that ticket's verification for the same cool-down; a pending verification
    waits ``PROGRESS_PENDING_TTL`` s for the phone digits.  Notifications: ``PROGRESS_TEMPLATE_ID`` (the
    WeChat template; empty = SMS only), ``PROGRESS_TEMPLATE_FIELDS`` (JSON role → key, see
    DEFAULT_TEMPLATE_FIELDS), ``PROGRESS_POLL_INTERVAL`` s between change-feed polls,
    ``PROGRESS_NOTIFY_MAX_ATTEMPTS`` / ``PROGRESS_NOTIFY_RETRY_DELAY`` s for transient failures."""

    max_failures: int = 5
    failure_window: float = 3600.0
    cooldown: float = 3600.0
    ticket_max_failures: int = 5
    pending_ttl: float = 600.0
    template_id: str = ""
    template_fields: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TEMPLATE_FIELDS))
    poll_interval: float = 15.0
    notify_batch: int = 100
    notify_max_attempts: int = 5
    notify_retry_delay: float = 60.0
    notify_lease: float = 120.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProgressSettings:
        e = os.environ if env is None else env
        d = cls()
        var = "PROGRESS_TEMPLATE_FIELDS"
        fields = field_map(e.get(var), DEFAULT_TEMPLATE_FIELDS, var)
        return cls(
            max_failures=max(1, int(_num(e, "PROGRESS_MAX_FAILURES", d.max_failures))),
            failure_window=_num(e, "PROGRESS_FAILURE_WINDOW", d.failure_window),
            cooldown=_num(e, "PROGRESS_COOLDOWN", d.cooldown),
            ticket_max_failures=max(1, int(_num(e, "PROGRESS_TICKET_MAX_FAILURES", d.ticket_max_failures))),
            pending_ttl=_num(e, "PROGRESS_PENDING_TTL", d.pending_ttl),
            template_id=e.get("PROGRESS_TEMPLATE_ID") or d.template_id,
            template_fields=fields,
            poll_interval=_num(e, "PROGRESS_POLL_INTERVAL", d.poll_interval),
            notify_max_attempts=max(1, int(_num(e, "PROGRESS_NOTIFY_MAX_ATTEMPTS", d.notify_max_attempts))),
            notify_retry_delay=_num(e, "PROGRESS_NOTIFY_RETRY_DELAY", d.notify_retry_delay),
        )
