"""What a campaign would send, for staff to check before submitting it: sample messages, counts and
exclusions (the first rows of each reason, to fix), segments, the estimated duration, and the blockers
that stop submission and approval (``BroadcastService.preview`` reads the campaign and its list, then
calls :func:`build_preview`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sms_gateway.broadcast.config import format_window
from sms_gateway.broadcast.models import (
    EXCLUSION_LABELS,
    BroadcastCampaign,
    BroadcastRecipient,
    Channel,
    Exclusion,
)
from sms_gateway.broadcast.template import missing, render, variables
from sms_gateway.broadcast.views import duration, source_label
from sms_gateway.broadcast.wechat_notices import ALL_CASES
from sms_gateway.compose import CampaignTemplate, Composer


@dataclass
class Preview:
    campaign_id: str
    state: str
    variables: list[str]
    samples: list[dict[str, Any]]
    recipients: int  # eligible (will be sent to)
    total_rows: int
    exclusions: dict[str, int]
    exclusion_rows: list[dict[str, str]]  # first rows per reason, for staff to fix
    segments_per_message: dict[str, int]  # min / max
    segments_total: int
    rate: float
    estimated_seconds: float
    window: str
    blockers: list[str]
    warnings: list[str] = field(default_factory=list)
    # template-bound providers (Aliyun): the registered template, its approval state and variable limits
    template: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Listed:
    """A campaign's list as the preview sees it: exclusions (counted; the first rows of each reason, for
    staff to fix), the eligible recipients with their variables, and the rows missing a variable."""

    exclusions: dict[str, int]
    exclusion_rows: list[dict[str, str]] = field(default_factory=list)
    eligible: list[tuple[BroadcastRecipient, dict[str, str]]] = field(default_factory=list)
    missing_rows: list[str] = field(default_factory=list)


@dataclass
class _Cost:
    per_message: list[int] = field(default_factory=list)  # segments of each message
    over_cap: int = 0  # messages longer than one SMS may be
    total_segments: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)

    def span(self) -> dict[str, int]:
        return {"min": min(self.per_message, default=0), "max": max(self.per_message, default=0)}


def _sort_recipients(template: str, recipients: Sequence[BroadcastRecipient], opted: set[str]) -> _Listed:
    listed = _Listed({str(e): 0 for e in Exclusion})
    for r in recipients:
        reason = r.excluded or (Exclusion.OPTED_OUT if r.address in opted else None)
        if reason:
            listed.exclusions[str(reason)] += 1
            if sum(1 for x in listed.exclusion_rows if x["reason"] == str(reason)) < 20:
                listed.exclusion_rows.append(
                    {
                        "reason": str(reason),
                        "label": EXCLUSION_LABELS[Exclusion(reason)],
                        "source": r.source,
                        "raw": r.raw,
                    }
                )
            continue
        values = json.loads(r.variables)
        gaps = missing(template, values)
        if gaps:
            listed.missing_rows.append(
                f"{source_label(r.source)}缺少 {'、'.join('{' + g + '}' for g in gaps)}"
            )
        listed.eligible.append((r, values))
    return listed


def _cost(
    composer: Composer,
    template: str,
    eligible: Sequence[tuple[BroadcastRecipient, dict[str, str]]],
    samples: int,
) -> _Cost:
    """The segments of every message the template renders to, and the first ``samples`` of them."""
    cost = _Cost()
    for r, values in eligible:
        if missing(template, values):
            continue
        messages = composer.whole([render(template, values)], opt_out_hint=True)
        segs = sum(m.segments for m in messages)
        cost.total_segments += segs
        cost.per_message.append(segs)
        if len(messages) > 1:
            cost.over_cap += 1
        if len(cost.samples) < samples:
            cost.samples.append(
                {
                    "to": r.address,
                    "body": "\n".join(m.body for m in messages),
                    "segments": segs,
                    "chars": sum(len(m.body) for m in messages),
                }
            )
    return cost


def _value_problems(composer: Composer, template: str, listed: _Listed) -> list[str]:
    """Rows whose values do not fit the registered template (a variable too long, a URL, a wrong type)."""
    rows = []
    for r, values in listed.eligible:
        problems = composer.campaign_values(template, values)
        if problems:
            rows.append(f"{source_label(r.source)}{problems[0]}")
    if not rows:
        return []
    shown = "；".join(rows[:10]) + (f" 等共 {len(rows)} 行" if len(rows) > 10 else "")
    return [f"变量取值不符合模板要求：{shown}"]


def _blockers(
    template: str, listed: _Listed, cost: _Cost, per_message: int, registered: CampaignTemplate | None
) -> list[str]:
    """What stops the campaign from being submitted or approved, in the order staff should fix it."""
    blockers: list[str] = list(registered.problems) if registered is not None else []
    if "【" in template or "】" in template:
        blockers.append("正文中不能含有【】（运营商会当作第二个签名）；签名由系统自动添加")
    if listed.missing_rows:
        shown = "；".join(listed.missing_rows[:10]) + (
            f" 等共 {len(listed.missing_rows)} 行" if len(listed.missing_rows) > 10 else ""
        )
        blockers.append(f"模板变量缺少取值：{shown}")
    if not listed.eligible:
        blockers.append("收件人名单为空（没有可发送的号码）")
    if cost.over_cap:
        blockers.append(
            f"{cost.over_cap} 条短信超过单条上限 {per_message} 段（含签名和“回T退订”），请精简模板"
        )
    return blockers


WECHAT_TEXT_BYTES = 2048  # a mass text message's limit (45002 beyond)


NOTICE_TEXT_CHARS = 20  # a template's ``thing`` value (the 2023 rules): the notice text goes in one


def _notice_preview(
    campaign: BroadcastCampaign, recipients: Sequence[BroadcastRecipient], template_ready: bool
) -> Preview:
    """Template notices to the followers bound to a case: one per follower, the text in the template's
    notice field, the follower's own case (item, ticket) in the others."""
    listed = _sort_recipients("", recipients, set())
    text = campaign.template
    blockers = []
    names = variables(text)
    if names:
        blockers.append(f"办件通知的内容对所有人相同，不能含变量：{'、'.join('{' + n + '}' for n in names)}")
    if len(text) > NOTICE_TEXT_CHARS:
        blockers.append(
            f"模板消息的“通知内容”最多 {NOTICE_TEXT_CHARS} 个字（现 {len(text)} 个），请精简；"
            "较长的通知请用按标签或名单的公众号群发"
        )
    if not template_ready:
        blockers.append("未配置办件通知的模板消息（WECHAT_NOTICE_TEMPLATE_ID），不能按办件发送")
    if not listed.eligible:
        blockers.append("没有绑定了办件并接收通知的关注者")
    scope = "全部事项" if campaign.audience_cases == ALL_CASES else f"事项 {campaign.audience_cases}"
    audience = f"绑定了办件并接收通知的关注者（{scope}）"
    samples = []
    for r, _ in listed.eligible[:3]:
        case = json.loads(r.variables or "{}")
        ticket, item = case.get("受理编号", ""), case.get("事项", "")
        body = f"事项：{item}\n受理编号：{ticket}\n通知内容：{text}"
        samples.append({"to": f"办件 {ticket}", "body": body, "segments": 0, "chars": len(text)})
    return Preview(
        campaign_id=campaign.id, state=campaign.state, variables=names,
        samples=samples or [{"to": audience, "body": text, "segments": 0, "chars": len(text)}],
        recipients=len(listed.eligible), total_rows=len(recipients),
        exclusions=listed.exclusions, exclusion_rows=listed.exclusion_rows,
        segments_per_message={"min": 0, "max": 0}, segments_total=0, rate=0.0, estimated_seconds=0.0,
        window=format_window(campaign.window_start, campaign.window_end), blockers=blockers,
        warnings=["模板消息只能用于与办件有关的服务通知，不得用于宣传（微信运营规范）；"
                  "发送前会再次核对每人是否仍接收通知"],
        template={"channel": "wechat", "audience": audience, "cases": campaign.audience_cases},
    )  # fmt: skip


def _wechat_preview(campaign: BroadcastCampaign, recipients: Sequence[BroadcastRecipient]) -> Preview:
    """A WeChat mass send: one text for every follower (no variables), to a tag or an openid list."""
    listed = _sort_recipients("", recipients, set())
    blockers = []
    names = variables(campaign.template)
    if names:
        blockers.append(
            f"公众号群发的内容对所有关注者相同，不能含变量：{'、'.join('{' + n + '}' for n in names)}"
        )
    if len(campaign.template.encode("utf-8")) > WECHAT_TEXT_BYTES:
        blockers.append(
            f"公众号群发文字最多 {WECHAT_TEXT_BYTES} 字节（约 {WECHAT_TEXT_BYTES // 3} 个汉字），请精简"
        )
    if campaign.audience_tag is not None:
        audience, count = (
            f"标签“{campaign.audience_tag_name or campaign.audience_tag}”的关注者",
            campaign.recipients_total,
        )
    else:
        audience, count = "上传的 openid 名单", len(listed.eligible)
        if count < 2:
            blockers.append(
                "请选择一个关注者标签，或上传至少 2 个有效 openid 的名单（微信按名单群发至少 2 人）"
            )
    return Preview(
        campaign_id=campaign.id, state=campaign.state, variables=names,
        samples=[{"to": audience, "body": campaign.template, "segments": 0, "chars": len(campaign.template)}],
        recipients=count, total_rows=len(recipients) if campaign.audience_tag is None else count,
        exclusions=listed.exclusions, exclusion_rows=listed.exclusion_rows,
        segments_per_message={"min": 0, "max": 0}, segments_total=0, rate=0.0, estimated_seconds=0.0,
        window=format_window(campaign.window_start, campaign.window_end), blockers=blockers,
        warnings=["每位关注者每月最多收到 4 条群发消息，超出的会被微信过滤（进度中显示“过滤”人数）"],
        template={"channel": "wechat", "audience": audience, "tag_id": campaign.audience_tag},
    )  # fmt: skip


def build_preview(
    campaign: BroadcastCampaign,
    recipients: Sequence[BroadcastRecipient],
    opted: set[str],
    *,
    composer: Composer,
    default_rate: float,
    samples: int,
    notice_template_ready: bool = False,
) -> Preview:
    """The preview of ``campaign`` with its stored list, ``opted`` being the numbers on the opt-out list
    now; the rate is the campaign's, else ``default_rate`` (segments per second)."""
    if campaign.audience_cases is not None:
        return _notice_preview(campaign, recipients, notice_template_ready)
    if campaign.channel == Channel.WECHAT:
        return _wechat_preview(campaign, recipients)
    listed = _sort_recipients(campaign.template, recipients, opted)
    cost = _cost(composer, campaign.template, listed.eligible, samples)
    registered = composer.campaign_template(campaign.template)
    blockers = _blockers(campaign.template, listed, cost, composer.per_message, registered)
    if registered is not None and not registered.problems:
        blockers += _value_problems(composer, campaign.template, listed)
    rate = campaign.rate or default_rate
    seconds = cost.total_segments / rate if rate else 0.0
    window_text = format_window(campaign.window_start, campaign.window_end)
    warnings: list[str] = []
    if seconds > (campaign.window_end - campaign.window_start) * 60:
        warnings.append(f"按当前速率需 {duration(seconds)}，超过一个发送时段（{window_text}），将跨天发送")
    return Preview(
        campaign_id=campaign.id,
        state=campaign.state,
        variables=variables(campaign.template),
        samples=cost.samples,
        recipients=len(listed.eligible),
        total_rows=len(recipients),
        exclusions=listed.exclusions,
        exclusion_rows=listed.exclusion_rows,
        segments_per_message=cost.span(),
        segments_total=cost.total_segments,
        rate=rate,
        estimated_seconds=round(seconds, 1),
        window=window_text,
        blockers=blockers,
        warnings=warnings,
        template=asdict(registered) if registered is not None else None,
    )
