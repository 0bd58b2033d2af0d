"""Settings of the progress feature (read from the environment; see the variables below)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.adapters.wechat.templates import field_map
from bot.core.env import Env

# Role → the WeChat template's field key.  The default keys fit a 政务服务 "办件进度提醒" template with the
# fields 事项名称 (thing), 受理号 (character_string), 办理状态 (phrase), 更新时间 (time), 温馨提示 (thing).
DEFAULT_TEMPLATE_FIELDS: dict[str, str] = {
    "item": "thing1",
    "ticket": "character_string2",
    "status": "phrase3",
    "time": "time4",
    "remark": "thing5",
}


@dataclass(frozen=True)
class ProgressSettings:
    """``PROGRESS_MAX_FAILURES`` failed lookups per citizen within ``PROGRESS_FAILURE_WINDOW`` s start a
    cool-down of ``PROGRESS_COOLDOWN`` s; ``PROGRESS_TICKET_MAX_FAILURES`` failed verifications of one
    ticket (from anyone) lock that ticket's verification for the same cool-down; a pending verification
    waits ``PROGRESS_PENDING_TTL`` s for the phone digits.  Notifications: ``PROGRESS_TEMPLATE_ID`` (the
    WeChat template; empty = SMS only), ``PROGRESS_TEMPLATE_FIELDS`` (JSON role → key, see
    DEFAULT_TEMPLATE_FIELDS), ``PROGRESS_POLL_INTERVAL`` s between change-feed polls,
    ``PROGRESS_NOTIFY_MAX_ATTEMPTS`` / ``PROGRESS_NOTIFY_RETRY_DELAY`` s for transient failures;
    ``PROGRESS_NOTIFIER=off`` stops a gateway worker from polling for status changes."""

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
    notifier_enabled: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | Env | None = None) -> ProgressSettings:
        e = Env.of(env)
        d = cls()
        var = "PROGRESS_TEMPLATE_FIELDS"
        return cls(
            max_failures=max(1, int(e.number("PROGRESS_MAX_FAILURES", d.max_failures))),
            failure_window=e.number("PROGRESS_FAILURE_WINDOW", d.failure_window, 0.0),
            cooldown=e.number("PROGRESS_COOLDOWN", d.cooldown, 0.0),
            ticket_max_failures=max(1, int(e.number("PROGRESS_TICKET_MAX_FAILURES", d.ticket_max_failures))),
            pending_ttl=e.number("PROGRESS_PENDING_TTL", d.pending_ttl, 1.0),
            template_id=e.text("PROGRESS_TEMPLATE_ID", d.template_id),
            template_fields=field_map(e.raw(var), DEFAULT_TEMPLATE_FIELDS, var),
            poll_interval=e.number("PROGRESS_POLL_INTERVAL", d.poll_interval, 0.01),
            notify_max_attempts=max(1, int(e.number("PROGRESS_NOTIFY_MAX_ATTEMPTS", d.notify_max_attempts))),
            notify_retry_delay=e.number("PROGRESS_NOTIFY_RETRY_DELAY", d.notify_retry_delay, 0.0),
            notifier_enabled=e.flag("PROGRESS_NOTIFIER", d.notifier_enabled),
        )
