"""Prometheus metrics shared by every gateway worker (kept in Redis, rendered as Prometheus text).

Counters and histograms live in two Redis hashes, so ``GET /metrics`` on any worker shows the totals of
all workers.  Each update is one pipelined round trip.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.0, 5.0, 10.0)
HELP = {
    "govbot_requests_total": "Inbound requests by channel and outcome.",
    "govbot_request_seconds": "Inbound request latency by channel.",
    "govbot_dedup_hits_total": "Retried requests answered from the dedup store.",
    "govbot_deadline_misses_total": "Replies not ready within the passive-reply deadline.",
    "govbot_rasa_errors_total": "Dialogue engine calls that failed or timed out.",
    "govbot_push_total": "Replies pushed later through a channel API, by result.",
    "govbot_sms_inbound_total": "Inbound SMS webhooks by outcome.",
    "govbot_sms_outbound_total": "Outbound SMS provider calls by result.",
    "govbot_sms_status_total": "SMS status callbacks by status.",
    "govbot_sms_segments_total": "SMS segments sent, by purpose.",
    "govbot_approval_requests_total": "Calls to the approval backend by result.",
    "govbot_approval_breaker_total": "Approval-backend circuit breaker transitions.",
    "govbot_progress_lookups_total": "Case-progress lookups by result.",
    "govbot_progress_notifications_total": "Case-progress notifications by channel and result.",
}


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


class Metrics:
    def __init__(self, redis: aioredis.Redis, prefix: str = "metrics") -> None:
        self._redis = redis
        self._counters = f"{prefix}:counters"
        self._hist = f"{prefix}:hist"

    async def inc(self, name: str, labels: dict[str, str] | None = None, by: int = 1) -> None:
        try:
            await self._redis.hincrby(self._counters, f"{name}|{_labels(labels or {})}", by)
        except Exception:  # metrics never break a request
            log.warning("metrics update failed", exc_info=True)

    async def observe(self, name: str, labels: dict[str, str], seconds: float) -> None:
        lab = _labels(labels)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for le in BUCKETS:
                if seconds <= le:
                    pipe.hincrby(self._hist, f"{name}|{lab}|{le}", 1)
            pipe.hincrby(self._hist, f"{name}|{lab}|+Inf", 1)
            pipe.hincrbyfloat(self._hist, f"{name}|{lab}|sum", seconds)
            await pipe.execute()
        except Exception:
            log.warning("metrics update failed", exc_info=True)

    async def render(self) -> str:
        counters = await self._redis.hgetall(self._counters)
        hist = await self._redis.hgetall(self._hist)
        lines: list[str] = []
        by_name: dict[str, list[str]] = {}
        for raw_key, raw_val in sorted(counters.items()):
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            val = raw_val.decode() if isinstance(raw_val, bytes) else raw_val
            name, _, lab = key.partition("|")
            by_name.setdefault(name, []).append(f"{name}{{{lab}}} {val}" if lab else f"{name} {val}")
        for name, samples in by_name.items():
            lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} counter", *samples]
        series: dict[tuple[str, str], dict[str, str]] = {}
        for raw_key, raw_val in hist.items():
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            val = raw_val.decode() if isinstance(raw_val, bytes) else raw_val
            name, lab, le = key.split("|")
            series.setdefault((name, lab), {})[le] = val
        seen: set[str] = set()
        for (name, lab), points in sorted(series.items()):
            if name not in seen:
                lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} histogram"]
                seen.add(name)
            sep = "," if lab else ""
            for le in [*(str(b) for b in BUCKETS), "+Inf"]:
                lines.append(f'{name}_bucket{{{lab}{sep}le="{le}"}} {points.get(le, "0")}')
            lines.append(f"{name}_sum{{{lab}}} {float(points.get('sum', '0')):.6f}")
            lines.append(f"{name}_count{{{lab}}} {points.get('+Inf', '0')}")
        return "\n".join(lines) + "\n"
