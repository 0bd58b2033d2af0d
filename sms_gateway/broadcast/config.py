"""Broadcast settings from the environment (``BroadcastSettings.from_env(os.environ)``).

| Variable | Default | Meaning |
| --- | --- | --- |
| ``BROADCAST_APPROVAL`` | ``on`` | second approver; ``off``: the author may approve (one-person site) |
| ``BROADCAST_RATE`` | ``10`` | segments per second for bulk traffic, shared by all workers |
| ``BROADCAST_BURST`` | ``10`` | bucket size in segments (at least the longest message) |
| ``BROADCAST_WINDOW`` | ``08:00-21:00`` | default local sending window of new campaigns |
| ``BROADCAST_TIMEZONE`` | ``Asia/Shanghai`` | the window's time zone |
| ``BROADCAST_CONCURRENCY`` | ``200`` | most sends in flight per worker process |
| ``BROADCAST_BATCH`` | ``50`` | most recipients one sender takes from the queue at once |
| ``BROADCAST_CLAIM_IDLE`` | ``60`` | seconds before another worker reclaims unacknowledged queue entries |
| ``BROADCAST_MAX_RECIPIENTS`` | ``50000`` | largest list per campaign (larger uploads are rejected whole) |
| ``BROADCAST_MAX_UPLOAD_MB`` | ``20`` | largest upload |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_window(raw: str) -> tuple[int, int]:
    """``"08:00-21:00"`` → minutes after midnight (480, 1260).  ``00:00-24:00`` is all day."""
    m = _WINDOW.match(raw or "")
    if not m:
        raise ValueError(f"发送时段格式应为 HH:MM-HH:MM，而不是 {raw!r}")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (0 <= start < 24 * 60 and 0 < end <= 24 * 60 and m1 < 60 and m2 < 60 and start < end):
        raise ValueError(f"发送时段无效：{raw!r}（开始须早于结束）")
    return start, end


def format_window(start: int, end: int) -> str:
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def _on(raw: str | None, default: bool) -> bool:
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"expected on/off, got {raw!r}")


@dataclass(frozen=True)
class BroadcastSettings:
    approval_required: bool = True
    rate: float = 10.0
    burst: float = 10.0
    window: tuple[int, int] = (8 * 60, 21 * 60)
    timezone: str = "Asia/Shanghai"
    concurrency: int = 200
    batch: int = 50
    claim_idle: float = 60.0
    max_recipients: int = 50_000
    max_upload_bytes: int = 20 * 1024 * 1024
    poll_interval: float = 0.25  # how often workers re-read campaign states (pause/cancel latency)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BroadcastSettings:
        d = cls()

        def num(name: str, default: float) -> float:
            raw = (env.get(name) or "").strip()
            return float(raw) if raw else default

        rate = num("BROADCAST_RATE", d.rate)
        burst = num("BROADCAST_BURST", d.burst)
        if rate <= 0 or burst < 1:
            raise ValueError("BROADCAST_RATE must be > 0 and BROADCAST_BURST >= 1")
        tz = (env.get("BROADCAST_TIMEZONE") or "").strip() or d.timezone
        ZoneInfo(tz)  # raises for an unknown zone
        window = env.get("BROADCAST_WINDOW")
        return cls(
            approval_required=_on(env.get("BROADCAST_APPROVAL"), d.approval_required),
            rate=rate,
            burst=burst,
            window=parse_window(window) if window and window.strip() else d.window,
            timezone=tz,
            concurrency=max(1, int(num("BROADCAST_CONCURRENCY", d.concurrency))),
            batch=max(1, int(num("BROADCAST_BATCH", d.batch))),
            claim_idle=max(0.5, num("BROADCAST_CLAIM_IDLE", d.claim_idle)),
            max_recipients=max(1, int(num("BROADCAST_MAX_RECIPIENTS", d.max_recipients))),
            max_upload_bytes=int(num("BROADCAST_MAX_UPLOAD_MB", d.max_upload_bytes / 1048576) * 1048576),
            poll_interval=num("BROADCAST_POLL_INTERVAL", d.poll_interval),
        )
