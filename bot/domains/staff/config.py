"""Staff identity settings (README "Configuration" lists each variable).

STAFF_SESSION_IDLE_SECONDS      a browser session ends after this long without a request (default 1800)
STAFF_SESSION_MAX_SECONDS       and this long after sign-in at the latest (default 43200, 12 h)
STAFF_LOCKOUT_FAILURES          wrong passwords in a row that lock an account (default 5)
STAFF_LOCKOUT_SECONDS           the first lock; each further lock doubles it, up to a day (default 900)
STAFF_IP_MAX_FAILURES           failed sign-ins from one client address per 15 minutes (default 20)
STAFF_TOTP_REQUIRED             on: administrators and approvers must use a TOTP second factor
STAFF_TOKEN_MAX_DAYS            longest lifetime of a personal API token (default 365)
STAFF_AUDIT_RETENTION_DAYS      audit rows kept at least this long; never below 180 (网络安全法)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.env import Env

MIN_AUDIT_RETENTION_DAYS = 180


@dataclass(frozen=True)
class StaffSettings:
    session_idle: int = 30 * 60
    session_max: int = 12 * 3600
    lockout_failures: int = 5
    lockout_seconds: int = 15 * 60
    lockout_max_seconds: int = 24 * 3600
    ip_max_failures: int = 20
    ip_window: int = 15 * 60
    totp_required: bool = False
    token_max_days: int = 365
    token_default_days: int = 90
    tokens_per_account: int = 10
    audit_retention_days: int = MIN_AUDIT_RETENTION_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | Env | None = None) -> StaffSettings:
        e = Env.of(env)
        d = cls()
        return cls(
            session_idle=e.integer("STAFF_SESSION_IDLE_SECONDS", d.session_idle, 60),
            session_max=e.integer("STAFF_SESSION_MAX_SECONDS", d.session_max, 300),
            lockout_failures=e.integer("STAFF_LOCKOUT_FAILURES", d.lockout_failures, 1),
            lockout_seconds=e.integer("STAFF_LOCKOUT_SECONDS", d.lockout_seconds, 1),
            ip_max_failures=e.integer("STAFF_IP_MAX_FAILURES", d.ip_max_failures, 1),
            totp_required=e.flag("STAFF_TOTP_REQUIRED", d.totp_required),
            token_max_days=e.integer("STAFF_TOKEN_MAX_DAYS", d.token_max_days, 1),
            audit_retention_days=max(
                MIN_AUDIT_RETENTION_DAYS, e.integer("STAFF_AUDIT_RETENTION_DAYS", d.audit_retention_days)
            ),
        )
