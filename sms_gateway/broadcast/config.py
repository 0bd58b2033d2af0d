"""Broadcast settings from the environment (``BroadcastSettings.from_env(env)``).

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
| ``BROADCAST_POLL_INTERVAL`` | ``0.25`` | seconds between workers' reads of campaign states |
| ``BROADCAST_WORKERS`` | ``1`` | worker processes ``make run`` starts |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.core.env import Env

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
    workers: int = 1  # worker processes `make run` starts

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | Env | None = None) -> BroadcastSettings:
        e = Env.of(env)
        d = cls()
        rate = e.number("BROADCAST_RATE", d.rate)
        burst = e.number("BROADCAST_BURST", d.burst)
        if rate <= 0 or burst < 1:
            raise ValueError("BROADCAST_RATE must be > 0 and BROADCAST_BURST >= 1")
        tz = e.text("BROADCAST_TIMEZONE", d.timezone)
        ZoneInfo(tz)  # raises for an unknown zone
        window = e.raw("BROADCAST_WINDOW")
        return cls(
            approval_required=e.flag("BROADCAST_APPROVAL", d.approval_required),
            rate=rate,
            burst=burst,
            window=parse_window(window) if window else d.window,
            timezone=tz,
            concurrency=max(1, int(e.number("BROADCAST_CONCURRENCY", d.concurrency))),
            batch=max(1, int(e.number("BROADCAST_BATCH", d.batch))),
            claim_idle=max(0.5, e.number("BROADCAST_CLAIM_IDLE", d.claim_idle)),
            max_recipients=max(1, int(e.number("BROADCAST_MAX_RECIPIENTS", d.max_recipients))),
            max_upload_bytes=int(e.number("BROADCAST_MAX_UPLOAD_MB", d.max_upload_bytes / 1048576) * 1048576),
            poll_interval=e.number("BROADCAST_POLL_INTERVAL", d.poll_interval),
            workers=e.integer("BROADCAST_WORKERS", d.workers, 0),
        )
