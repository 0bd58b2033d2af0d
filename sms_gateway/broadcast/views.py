"""What staff see of a campaign (HTTP API and ``govbot broadcast``): the JSON views of a campaign, of its
live progress and of each recipient's result, and the Chinese texts they use (result labels, row sources,
durations).  Pure functions of rows ``service.py`` has read.

Progress counts one ledger row per recipient (part 1 of the message)::

    in_flight         pending, sending, unknown
    sent              accepted, sent, delivered (delivered also counts in ``delivered``)
    opted_out_during  suppressed, or failed with 21610 (the number opted out at the provider)
    cancelled         failed because the campaign was cancelled before the row was sent
    failed            any other failure, also counted per error code in ``failed_by_reason``
    queued            eligible recipients the workers have not written a ledger row for yet
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.clock import as_utc
from sms_gateway.broadcast.config import BroadcastSettings, format_window
from sms_gateway.broadcast.models import (
    EXCLUSION_LABELS,
    BroadcastCampaign,
    BroadcastRecipient,
    CampaignState,
    Exclusion,
)
from sms_gateway.broadcast.window import next_window_start
from sms_gateway.models import LedgerStatus, SmsOutbound

OPTED_OUT_CODE = 21610
_RESULT_LABELS: dict[str, str] = {
    LedgerStatus.PENDING: "发送中",
    LedgerStatus.SENDING: "发送中",
    LedgerStatus.UNKNOWN: "核对中",
    LedgerStatus.ACCEPTED: "已发送",
    LedgerStatus.SENT: "已发送",
    LedgerStatus.DELIVERED: "已送达",
    LedgerStatus.FAILED: "发送失败",
    LedgerStatus.SUPPRESSED: "发送时已退订",
}


def campaign_view(c: BroadcastCampaign, settings: BroadcastSettings) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "channel": c.channel,
        "purpose": c.purpose,
        "template": c.template,
        "signature": c.signature,
        "state": c.state,
        "state_reason": c.state_reason,
        "rate": c.rate or settings.rate,
        "window": format_window(c.window_start, c.window_end),
        "scheduled_at": iso(c.scheduled_at),
        "created_by": c.created_by,
        "submitted_by": c.submitted_by,
        "approved_by": c.approved_by,
        "recipients_total": c.recipients_total,
        "source_name": c.source_name,
        "audience_tag": c.audience_tag,
        "audience_tag_name": c.audience_tag_name,
        "audience_cases": c.audience_cases,
        "created_at": iso(c.created_at),
        "started_at": iso(c.started_at),
        "finished_at": iso(c.finished_at),
    }


def iso(value: datetime | None) -> str | None:
    v = as_utc(value)
    return v.isoformat() if v else None


def source_label(source: str) -> str:
    """Where a recipient came from: ``upload:12`` → 第12行, ``group:<id>`` → 分组<id>, ``case:<ticket>`` →
    办件<ticket> (a follower bound to that case)."""
    kind, _, ref = source.partition(":")
    return {"upload": f"第{ref}行", "case": f"办件{ref}"}.get(kind, f"分组{ref}")


def duration(seconds: float) -> str:
    """A duration in Chinese, rounded up to the second: 45 秒, 3 分 20 秒, 2 小时 5 分."""
    seconds = math.ceil(seconds)
    if seconds < 60:
        return f"{seconds} 秒"
    if seconds < 3600:
        return f"{seconds // 60} 分 {seconds % 60} 秒"
    return f"{seconds // 3600} 小时 {seconds % 3600 // 60} 分"


# ---------------------------------------------------------------------------------------------- progress


def waiting_note(campaign: BroadcastCampaign, now: datetime, tz: ZoneInfo) -> str | None:
    """Why a sending campaign is idle: outside its sending window, and when it goes on."""
    if campaign.state != CampaignState.SENDING:
        return None
    nxt = next_window_start(now, campaign.window_start, campaign.window_end, tz)
    if nxt is None:
        return None
    window = format_window(campaign.window_start, campaign.window_end)
    return f"不在发送时段（{window}），将于 {nxt:%m-%d %H:%M} 继续"


def progress_view(
    campaign: BroadcastCampaign,
    exclusions: Mapping[str | None, int],
    ledger: Iterable[tuple[str, int | None, str | None, int]],
    waiting: str | None,
) -> dict[str, Any]:
    """The live counters: ``exclusions`` counts the recipient list per exclusion (None: eligible),
    ``ledger`` the campaign's ledger rows per (status, error code, error message)."""
    excl = dict(exclusions)
    eligible = int(excl.pop(None, 0))
    excluded = {str(e): int(excl.get(str(e), 0)) for e in Exclusion}
    counts, failed_by, handled = _tally(ledger)
    done = counts["sent"] + counts["failed"] + counts["opted_out_during"] + counts["cancelled"]
    return {
        "campaign_id": campaign.id,
        "state": campaign.state,
        "state_reason": campaign.state_reason,
        "waiting_for_window": waiting,
        "recipients": eligible + sum(excluded.values()),
        "eligible": eligible,
        "excluded": excluded,
        "queued": max(0, eligible - handled),
        **counts,
        "failed_by_reason": failed_by,
        "done": done,
        "percent": round(100.0 * done / eligible, 1) if eligible else 100.0,
    }


def _tally(
    ledger: Iterable[tuple[str, int | None, str | None, int]],
) -> tuple[dict[str, int], dict[str, int], int]:
    """The ledger rows per progress counter, the failures per reason, and how many rows there are."""
    counts = {"in_flight": 0, "sent": 0, "delivered": 0, "failed": 0, "opted_out_during": 0, "cancelled": 0}
    failed_by: dict[str, int] = {}
    handled = 0
    for status, code, message, n in ledger:
        handled += n
        if status in (LedgerStatus.PENDING, LedgerStatus.SENDING, LedgerStatus.UNKNOWN):
            counts["in_flight"] += n
        elif status in (LedgerStatus.ACCEPTED, LedgerStatus.SENT):
            counts["sent"] += n
        elif status == LedgerStatus.DELIVERED:
            counts["sent"] += n
            counts["delivered"] += n
        elif status == LedgerStatus.SUPPRESSED or (status == LedgerStatus.FAILED and code == OPTED_OUT_CODE):
            counts["opted_out_during"] += n
        elif status == LedgerStatus.FAILED and message == "campaign_cancelled":
            counts["cancelled"] += n
        else:
            counts["failed"] += n
            key = str(code) if code is not None else (message or "unknown").split(":")[0]
            failed_by[key] = failed_by.get(key, 0) + n
    return counts, failed_by, handled


# ---------------------------------------------------------------------------------------------- results


def result_rows(
    recipients: Iterable[BroadcastRecipient], ledger: Mapping[str, SmsOutbound], *, cancelled: bool
) -> list[dict[str, Any]]:
    """One row per recipient (excluded ones too) with its ledger row's outcome; ``ledger`` maps each
    number to its row, ``cancelled`` says the campaign was cancelled (unsent recipients stay unsent)."""
    out = []
    for r in recipients:
        row = ledger.get(r.address or "") if not r.excluded else None
        out.append(
            {
                "seq": r.seq,
                "source": source_label(r.source),
                "raw": r.raw,
                "phone": r.address or "",
                "result": _result(r, row, cancelled),
                "status": row.status if row else (r.excluded or ""),
                "error_code": row.error_code if row and row.error_code is not None else "",
                "provider_sid": row.provider_sid if row and row.provider_sid else "",
                "segments": row.segments if row else "",
                "sent_at": iso(row.accepted_at) if row else "",
                "delivered_at": iso(row.delivered_at) if row else "",
            }
        )
    return out


def _result(r: BroadcastRecipient, row: SmsOutbound | None, cancelled: bool) -> str:
    if r.excluded:
        return EXCLUSION_LABELS[Exclusion(r.excluded)]
    if row is None:
        return "未发送（已取消）" if cancelled else "排队中"
    if row.status == LedgerStatus.FAILED and row.error_code == OPTED_OUT_CODE:
        return "发送时已退订"
    if row.status == LedgerStatus.FAILED and row.error_message == "campaign_cancelled":
        return "未发送（已取消）"
    return _RESULT_LABELS.get(row.status, row.status)


_JOB_LABELS = {
    "pending": "等待提交群发",
    "submitted": "已提交群发，等待微信完成",
    "finished": "微信已完成群发",
    "failed": "微信拒绝了群发",
}


def wechat_result_rows(
    recipients: Iterable[BroadcastRecipient], progress: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A WeChat campaign's openid list, each with the state of the mass-send job that carried it (WeChat
    reports counts per job, not per follower: a filtered follower — unfollowed, or over the monthly limit
    — is only counted)."""
    # the jobs took the eligible openids in list order, each as many as its "openids" count
    carriers = iter([job for job in progress.get("jobs", []) for _ in range(job["openids"])])
    out = []
    for r in recipients:
        job: Mapping[str, Any] | None = None if r.excluded else next(carriers, None)
        out.append(
            {
                "seq": r.seq,
                "source": source_label(r.source),
                "raw": r.raw,
                "openid": r.address or "",
                "result": EXCLUSION_LABELS[Exclusion(r.excluded)] if r.excluded else
                _JOB_LABELS.get(job["state"], "等待提交群发") if job else "等待提交群发",
                "msg_id": job["msg_id"] if job and job["msg_id"] else "",
                "job_status": job["status"] if job and job["status"] else "",
            }
        )  # fmt: skip
    return out


_NOTICE_LABELS = {
    "pending": "等待发送",
    "sending": "发送中",
    "sent": "微信已接收",
    "failed": "微信拒绝发送",
    "skipped": "未发送：已关闭通知或解除绑定",
}
_OUTCOME_LABELS = {"delivered": "已送达", "blocked": "用户拒收", "failed": "送达失败"}


def notice_result_rows(
    recipients: Iterable[BroadcastRecipient], notices: Mapping[int, Any]
) -> list[dict[str, Any]]:
    """A template-notice campaign's followers, each with its notice: state, WeChat's msgid, and the
    TEMPLATESENDJOBFINISH outcome or the errcode WeChat refused it with."""
    out = []
    for r in recipients:
        n = notices.get(r.seq)
        if r.excluded:
            result = EXCLUSION_LABELS[Exclusion(r.excluded)]
        elif n is None:
            result = _NOTICE_LABELS["pending"]
        else:
            result = _OUTCOME_LABELS.get(n.outcome or "", _NOTICE_LABELS.get(n.state, n.state))
        detail = ""
        if n is not None and (n.errcode or n.status_text):
            detail = " ".join(str(x) for x in (n.errcode, n.status_text) if x)
        out.append(
            {
                "seq": r.seq,
                "source": source_label(r.source),
                "raw": r.raw,
                "openid": r.address or "",
                "result": result,
                "msg_id": n.msg_id if n is not None and n.msg_id else "",
                "job_status": detail,
            }
        )
    return out
