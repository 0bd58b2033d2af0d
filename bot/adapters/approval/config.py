"""Settings of the approval adapter (read from the environment; see the variables below)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.adapters.approval.mapping import DEFAULT_MAPPING_FILE
from bot.core.config import VAR_DIR
from bot.core.env import Env, Secret


@dataclass(frozen=True)
class ApprovalSettings:
    """``APPROVAL_API_BASE`` (default: the reference backend ``make run`` starts on 127.0.0.1:8183),
    ``APPROVAL_API_TOKEN``, ``APPROVAL_MAPPING_FILE``, ``APPROVAL_TIMEOUT`` (per call, s),
    ``APPROVAL_RETRIES`` (extra attempts of a GET), ``APPROVAL_BUDGET`` (s for one lookup, retries
    included: it must fit the WeChat reply deadline), ``APPROVAL_CACHE_TTL`` (s),
    ``APPROVAL_BREAKER_FAILURES`` / ``APPROVAL_BREAKER_WINDOW`` / ``APPROVAL_BREAKER_OPEN`` (failures within
    the window that open the breaker, and for how many seconds), ``APPROVAL_REFERENCE_PORT`` and
    ``APPROVAL_REFERENCE_DB`` (the demo backend's port and SQLite file)."""

    api_base: str = "http://127.0.0.1:8183"
    api_token: Secret = field(default_factory=Secret)
    mapping_file: Path = DEFAULT_MAPPING_FILE
    timeout: float = 1.5
    retries: int = 2
    budget: float = 2.5
    retry_backoff: float = 0.1
    cache_ttl: float = 30.0
    breaker_failures: int = 5
    breaker_window: float = 30.0
    breaker_open: float = 30.0
    reference_port: int = 8183
    reference_db: Path = VAR_DIR / "approval.db"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | Env | None = None) -> ApprovalSettings:
        e = Env.of(env)
        d = cls()
        return cls(
            api_base=e.text("APPROVAL_API_BASE", d.api_base).rstrip("/"),
            api_token=e.secret("APPROVAL_API_TOKEN"),
            mapping_file=Path(e.text("APPROVAL_MAPPING_FILE", str(d.mapping_file))),
            timeout=e.number("APPROVAL_TIMEOUT", d.timeout, 0.01),
            retries=max(0, e.integer("APPROVAL_RETRIES", d.retries)),
            budget=e.number("APPROVAL_BUDGET", d.budget, 0.01),
            cache_ttl=e.number("APPROVAL_CACHE_TTL", d.cache_ttl, 0.0),
            breaker_failures=max(1, e.integer("APPROVAL_BREAKER_FAILURES", d.breaker_failures)),
            breaker_window=e.number("APPROVAL_BREAKER_WINDOW", d.breaker_window, 0.0),
            breaker_open=e.number("APPROVAL_BREAKER_OPEN", d.breaker_open, 0.0),
            reference_port=e.integer("APPROVAL_REFERENCE_PORT", d.reference_port, 1),
            reference_db=Path(e.text("APPROVAL_REFERENCE_DB", str(d.reference_db))),
        )
