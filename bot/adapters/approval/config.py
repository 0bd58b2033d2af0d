"""Settings of the approval adapter (read from the environment; see the variables below)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.adapters.approval.mapping import DEFAULT_MAPPING_FILE
from bot.core.config import VAR_DIR


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw not in (None, "") else default


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return int(raw) if raw not in (None, "") else default


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
    api_token: str = ""
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
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApprovalSettings:
        e = os.environ if env is None else env
        d = cls()
        return cls(
            api_base=(e.get("APPROVAL_API_BASE") or d.api_base).rstrip("/"),
            api_token=e.get("APPROVAL_API_TOKEN") or d.api_token,
            mapping_file=Path(e.get("APPROVAL_MAPPING_FILE") or d.mapping_file),
            timeout=_float(e, "APPROVAL_TIMEOUT", d.timeout),
            retries=max(0, _int(e, "APPROVAL_RETRIES", d.retries)),
            budget=_float(e, "APPROVAL_BUDGET", d.budget),
            cache_ttl=_float(e, "APPROVAL_CACHE_TTL", d.cache_ttl),
            breaker_failures=max(1, _int(e, "APPROVAL_BREAKER_FAILURES", d.breaker_failures)),
            breaker_window=_float(e, "APPROVAL_BREAKER_WINDOW", d.breaker_window),
            breaker_open=_float(e, "APPROVAL_BREAKER_OPEN", d.breaker_open),
            reference_port=_int(e, "APPROVAL_REFERENCE_PORT", d.reference_port),
            reference_db=Path(e.get("APPROVAL_REFERENCE_DB") or d.reference_db),
        )
