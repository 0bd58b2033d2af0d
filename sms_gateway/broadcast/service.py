"""Campaign lifecycle: drafting, approval, start/pause/resume/cancel, and reading progress and
per-recipient results (what staff see of them is shaped in ``views.py``; the XLSX file is ``export.py``).
Recipient lists and saved groups are ``audience.py`` and the preview ``preview.py``; the service
delegates to them.  The database is the source of truth for a campaign's state; workers re-read it every
``poll_interval`` (0.25 s), which is how pause, resume and cancel take effect within a second.

State machine::

    草稿 ──submit──▶ 待审核 ──approve──▶ 已排期 ──start / scheduled time──▶ 发送中 ⇄ 已暂停
      ▲                │ reject                                             │
      └────────────────┘                                  已完成 | 已取消 | 已失败

``approve`` by the author is refused unless ``BROADCAST_APPROVAL=off`` (then a draft may be approved
directly).  ``cancel`` is allowed from any non-final state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from sms_gateway.broadcast.audience import Audience, exclude_opted_out
from sms_gateway.broadcast.config import BroadcastSettings, parse_window
from sms_gateway.broadcast.errors import BroadcastError
from sms_gateway.broadcast.models import (
    FINAL_STATES,
    BroadcastCampaign,
    BroadcastRecipient,
    CampaignPurpose,
    CampaignState,
    Channel,
    new_id,
)
from sms_gateway.broadcast.preview import Preview, build_preview
from sms_gateway.broadcast.template import TemplateError, check_template
from sms_gateway.broadcast.views import (
    campaign_view,
    notice_result_rows,
    progress_view,
    result_rows,
    waiting_note,
    wechat_result_rows,
)
from sms_gateway.broadcast.wechat_jobs import WeChatJobs
from sms_gateway.broadcast.wechat_notices import ALL_CASES, CaseAudience, WeChatNotices, recipient_values
from sms_gateway.compose import Composer
from sms_gateway.models import LedgerStatus, SmsOutbound

St = CampaignState
_TRANSITIONS: dict[str, dict[CampaignState, tuple[CampaignState, ...]]] = {
    "submit": {St.PENDING_APPROVAL: (St.DRAFT,)},
    "reject": {St.DRAFT: (St.PENDING_APPROVAL,)},
    "approve": {St.SCHEDULED: (St.PENDING_APPROVAL,)},
    "pause": {St.PAUSED: (St.SENDING, St.SCHEDULED)},
    "resume": {St.SENDING: (St.PAUSED,)},
}


async def _refusal(s: AsyncSession, campaign_id: str, doing: str) -> BroadcastError:
    """Why a guarded state change matched no row: no such campaign (404), or it is in another state."""
    row = await s.get(BroadcastCampaign, campaign_id)
    if row is None:
        return BroadcastError(f"没有这个群发任务：{campaign_id}", 404)
    return BroadcastError(f"当前状态为“{row.state}”，不能{doing}")


def checked_time(value: datetime | None) -> datetime | None:
    """A send time staff gave (aware: the API and the pages refuse naive ones), within 2000–2100: near the
    ends of the calendar it could not even be shown in Beijing time."""
    if value is not None and not 2000 <= value.year <= 2100:
        raise BroadcastError("时间须在 2000 年到 2100 年之间", 400)
    return value


class BroadcastService:
    def __init__(
        self,
        settings: BroadcastSettings,
        sessions: async_sessionmaker[AsyncSession],
        composer: Composer,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.composer = composer
        self.clock = clock
        self.wechat_jobs = WeChatJobs(sessions, lambda: self.clock())
        # the official account's follower tags ([{"id", "name", "count"}]), set by the gateway when it has
        # a WeChat client (this package does not talk to WeChat itself)
        self.wechat_tags: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
        # template notices to citizens bound to a case: their followers (set by the gateway from the
        # progress domain) and whether a notice template is configured (WECHAT_NOTICE_TEMPLATE_ID)
        self.wechat_notices = WeChatNotices(sessions, lambda: self.clock())
        self.case_audience: CaseAudience | None = None
        self.notice_template_ready = False

    # ------------------------------------------------------------------------------------- campaigns

    async def create(
        self,
        *,
        name: str,
        template: str,
        created_by: str,
        created_by_account: int | None = None,
        purpose: str = CampaignPurpose.NOTICE,
        channel: str = Channel.SMS,
        rate: float | None = None,
        window: str | None = None,
        scheduled_at: datetime | None = None,
    ) -> dict[str, Any]:
        if not created_by.strip():
            raise BroadcastError("请注明操作人", 400)
        fields = self._checked(name, template, purpose, channel, rate, window)
        checked_time(scheduled_at)
        now = self.clock()
        row = BroadcastCampaign(
            id=new_id("bc"),
            **fields,
            signature=self.composer.signature,
            state=St.DRAFT,
            scheduled_at=scheduled_at,
            column_map="{}",
            group_ids="[]",
            created_by=created_by.strip()[:64],
            created_by_account=created_by_account,
            recipients_total=0,
            created_at=now,
            updated_at=now,
        )
        async with self.sessions.begin() as s:
            s.add(row)
        return campaign_view(row, self.settings)

    def _checked(
        self, name: str, template: str, purpose: str, channel: str, rate: float | None, window: str | None
    ) -> dict[str, Any]:
        """A draft's editable fields, validated (BroadcastError 400 names what is wrong)."""
        if not name.strip():
            raise BroadcastError("请填写群发名称", 400)
        try:
            check_template(template)
        except TemplateError as exc:
            raise BroadcastError(str(exc), 400) from exc
        if purpose not in {str(p) for p in CampaignPurpose}:
            raise BroadcastError(f"用途应为 {'/'.join(CampaignPurpose)} 之一", 400)
        if channel not in (Channel.SMS, Channel.WECHAT):
            raise BroadcastError("群发渠道应为 sms（短信）或 wechat（公众号群发）", 400)
        if rate is not None and rate <= 0:
            raise BroadcastError("发送速率必须大于 0（条段/秒）", 400)
        try:
            start, end = parse_window(window) if window else self.settings.window
        except ValueError as exc:
            raise BroadcastError(str(exc), 400) from exc
        return {
            "name": name.strip()[:200],
            "channel": channel,
            "purpose": purpose,
            "template": template.strip(),
            "rate": rate,
            "window_start": start,
            "window_end": end,
        }

    async def update_draft(
        self,
        campaign_id: str,
        *,
        name: str,
        template: str,
        purpose: str = CampaignPurpose.NOTICE,
        rate: float | None = None,
        window: str | None = None,
    ) -> dict[str, Any]:
        """Change a draft's name, wording, purpose, rate or window (a campaign sent back by its approver is a
        draft again).  Only drafts change; the recipient list stays and the preview checks it again."""
        campaign = await self.get(campaign_id)  # 404 first
        fields = self._checked(name, template, purpose, campaign.channel, rate, window)
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastCampaign)
                .where(BroadcastCampaign.id == campaign_id, BroadcastCampaign.state == St.DRAFT)
                .values(**fields, updated_at=self.clock())
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise await _refusal(s, campaign_id, f"修改（仅限：{St.DRAFT}）")
        return await self.view(campaign_id)

    async def get(self, campaign_id: str) -> BroadcastCampaign:
        async with self.sessions() as s:
            row = await s.get(BroadcastCampaign, campaign_id)
        if row is None:
            raise BroadcastError(f"没有这个群发任务：{campaign_id}", 404)
        return row

    async def view(self, campaign_id: str) -> dict[str, Any]:
        return campaign_view(await self.get(campaign_id), self.settings)

    async def campaigns(self) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = (
                (await s.execute(select(BroadcastCampaign).order_by(BroadcastCampaign.created_at.desc())))
                .scalars()
                .all()
            )
        return [campaign_view(r, self.settings) for r in rows]

    # ------------------------------------------------------------------------------------- recipients, groups

    @property
    def audience(self) -> Audience:
        """Recipient lists and saved groups (``audience.py``), on the current settings and clock."""
        return Audience(self.settings, self.sessions, self.clock)

    async def set_recipients(
        self,
        campaign_id: str,
        *,
        actor: str,
        upload: tuple[str, bytes] | None = None,
        column_map: Mapping[str, str] | None = None,
        group_ids: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Replace the campaign's list with the upload and/or saved groups, in one transaction (a rejected
        file leaves the previous list untouched).  Only drafts can change."""
        campaign = await self.get(campaign_id)
        return await self.audience.replace(
            campaign, upload=upload, column_map=column_map, group_ids=group_ids
        )

    async def tags(self) -> list[dict[str, Any]]:
        """The follower tags WeChat reports (BroadcastError 502 when they cannot be read)."""
        if self.wechat_tags is None:
            raise BroadcastError("未连接公众号接口，无法读取关注者标签", 502)
        try:
            return await self.wechat_tags()
        except Exception as exc:  # the WeChat adapter's errors: reported, not raised as a 500
            raise BroadcastError(f"无法读取公众号的关注者标签：{exc}"[:200], 502) from exc

    async def choose_wechat_tag(self, campaign_id: str, tag_id: int, *, actor: str) -> dict[str, Any]:
        """A WeChat campaign's audience: the followers with tag ``tag_id``, as WeChat reports it now."""
        campaign = await self.get(campaign_id)  # 404, then what the campaign itself refuses, then WeChat
        if campaign.channel != Channel.WECHAT:
            raise BroadcastError("只有公众号群发可以按标签选择收件人", 400)
        if campaign.state != St.DRAFT:
            raise BroadcastError(f"只有草稿可以修改收件人（当前状态：{campaign.state}）", 409)
        tag = next((t for t in await self.tags() if t.get("id") == tag_id), None)
        if tag is None:
            raise BroadcastError(f"公众号没有这个标签：{tag_id}", 400)
        return await self.set_wechat_tag(campaign_id, tag_id=tag_id, tag_name=str(tag.get("name", "")),
                                         followers=int(tag.get("count", 0)), actor=actor)  # fmt: skip

    async def set_wechat_tag(
        self, campaign_id: str, *, tag_id: int, tag_name: str, followers: int, actor: str
    ) -> dict[str, Any]:
        """A WeChat campaign's audience: the followers with a tag (``followers``: the tag's size as WeChat
        reported it).  Replaces an uploaded openid list; only drafts change."""
        campaign = await self.get(campaign_id)
        if campaign.channel != Channel.WECHAT:
            raise BroadcastError("只有公众号群发可以按标签选择收件人", 400)
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastCampaign)
                .where(BroadcastCampaign.id == campaign_id, BroadcastCampaign.state == St.DRAFT)
                .values(audience_tag=tag_id, audience_tag_name=tag_name[:100], audience_cases=None,
                        recipients_total=followers, source_name=None, updated_at=self.clock())
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if not result.rowcount:  # type: ignore[attr-defined]
                raise await _refusal(s, campaign_id, f"修改收件人（仅限：{St.DRAFT}）")
            await s.execute(delete(BroadcastRecipient).where(BroadcastRecipient.campaign_id == campaign_id))
        return await self.view(campaign_id)

    async def case_items(self) -> list[dict[str, Any]]:
        """Items whose cases have followers to notify (``CaseAudience.items``); [] without progress."""
        return await self.case_audience.items() if self.case_audience is not None else []

    async def choose_cases(self, campaign_id: str, item_code: str | None, *, actor: str) -> dict[str, Any]:
        """A WeChat campaign's audience: the followers bound to a case (of ``item_code``, or of any item) who
        take its notifications, each sent a template notice.  Replaces a tag or an uploaded list."""
        campaign = await self.get(campaign_id)
        if campaign.channel != Channel.WECHAT:
            raise BroadcastError("只有公众号群发可以按办件选择收件人", 400)
        if campaign.state != St.DRAFT:
            raise BroadcastError(f"只有草稿可以修改收件人（当前状态：{campaign.state}）", 409)
        if self.case_audience is None:
            raise BroadcastError("未连接办件进度，无法按办件选择收件人", 502)
        code = (item_code or "").strip() or None
        if code is not None and len(code) > 32:
            raise BroadcastError("事项编码过长", 400)
        followers = await self.case_audience.followers(code)
        now = self.clock()
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastCampaign)
                .where(BroadcastCampaign.id == campaign_id, BroadcastCampaign.state == St.DRAFT)
                .values(audience_cases=code or ALL_CASES, audience_tag=None, audience_tag_name=None,
                        recipients_total=len(followers), source_name=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if not result.rowcount:  # type: ignore[attr-defined]
                raise await _refusal(s, campaign_id, f"修改收件人（仅限：{St.DRAFT}）")
            await s.execute(delete(BroadcastRecipient).where(BroadcastRecipient.campaign_id == campaign_id))
            s.add_all(
                BroadcastRecipient(
                    campaign_id=campaign_id, seq=seq, source=f"case:{f.ticket_no}", raw=f.openid,
                    address=f.openid, variables=recipient_values(f), excluded=None,
                )
                for seq, f in enumerate(followers, start=1)
            )  # fmt: skip
        return await self.view(campaign_id)

    async def _recipients(self, campaign_id: str) -> list[BroadcastRecipient]:
        return await self.audience.recipients(campaign_id)

    async def save_group(
        self, *, name: str, actor: str, upload: tuple[str, bytes], column_map: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """A saved group from an upload: valid, distinct numbers with the values of every column."""
        return await self.audience.save_group(name=name, actor=actor, upload=upload, column_map=column_map)

    async def groups(self) -> list[dict[str, Any]]:
        return await self.audience.groups()

    # ------------------------------------------------------------------------------------- preview

    async def preview(self, campaign_id: str, samples: int = 3) -> Preview:
        """What the campaign would send now (``preview.build_preview``), opt-outs checked again."""
        campaign = await self.get(campaign_id)
        recipients = await self._recipients(campaign_id)
        opted = await self.audience.opted_out_of(recipients)
        return build_preview(
            campaign,
            recipients,
            opted,
            composer=self.composer,
            default_rate=self.settings.rate,
            samples=samples,
            notice_template_ready=self.notice_template_ready,
        )

    # ------------------------------------------------------------------------------------- transitions

    async def _transition(
        self, campaign_id: str, action: str, actor: str, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        (target, sources), *_ = _TRANSITIONS[action].items()
        return await self._move(campaign_id, sources, target, action, actor, extra)

    async def _move(
        self,
        campaign_id: str,
        sources: Sequence[CampaignState],
        target: CampaignState,
        action: str,
        actor: str,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = self.clock()
        values: dict[str, Any] = {"state": target, "updated_at": now, **(extra or {})}
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastCampaign)
                .where(
                    BroadcastCampaign.id == campaign_id,
                    BroadcastCampaign.state.in_([str(x) for x in sources]),
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                allowed = "、".join(sources)
                raise await _refusal(s, campaign_id, f"{_ACTION_LABELS[action]}（仅限：{allowed}）")
        return await self.view(campaign_id)

    async def _require_no_blockers(self, campaign_id: str) -> None:
        preview = await self.preview(campaign_id, samples=0)
        if preview.blockers:
            raise BroadcastError("存在阻止发送的问题：" + "；".join(preview.blockers))

    async def submit(self, campaign_id: str, actor: str) -> dict[str, Any]:
        await self._require_no_blockers(campaign_id)
        return await self._transition(campaign_id, "submit", actor, {"submitted_by": actor[:64]})

    async def reject(self, campaign_id: str, actor: str, reason: str = "") -> dict[str, Any]:
        return await self._transition(
            campaign_id, "reject", actor, {"state_reason": f"退回：{reason}"[:255] if reason else "退回修改"}
        )

    async def approve(self, campaign_id: str, actor: str, actor_account: int | None = None) -> dict[str, Any]:
        """Two-person rule: the approver is not the author — by staff account when both are known (names
        can be spelt many ways), by the recorded name for campaigns from before accounts."""
        campaign = await self.get(campaign_id)
        if not actor.strip():
            raise BroadcastError("请注明审核人", 400)
        author = campaign.created_by_account
        same = (
            author == actor_account
            if author is not None and actor_account is not None
            else (actor.strip() == campaign.created_by)
        )
        if self.settings.approval_required and same:
            raise BroadcastError("需由另一名工作人员审核：起草人不能审核自己的群发任务", 403)
        await self._require_no_blockers(campaign_id)
        sources = (
            (St.PENDING_APPROVAL,) if self.settings.approval_required else (St.PENDING_APPROVAL, St.DRAFT)
        )
        approved = {"approved_by": actor[:64], "approved_by_account": actor_account}
        return await self._move(campaign_id, sources, St.SCHEDULED, "approve", actor, approved)

    async def start(self, campaign_id: str, actor: str, at: datetime | None = None) -> dict[str, Any]:
        """Start now (or set the time: the workers start it then).  Opt-outs are checked again here."""
        now = self.clock()
        when = checked_time(at) or now
        if when > now:
            return await self._move(
                campaign_id, (St.SCHEDULED,), St.SCHEDULED, "start", actor, {"scheduled_at": when}
            )
        return await self.begin_sending(campaign_id, now)

    async def begin_sending(self, campaign_id: str, now: datetime | None = None) -> dict[str, Any]:
        """已排期 → 发送中, freezing the list: numbers that opted out since the preview become exclusions."""
        now = now or self.clock()
        recipients = await self._recipients(campaign_id)
        opted = await self.audience.opted_out_of(recipients)
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastCampaign)
                .where(BroadcastCampaign.id == campaign_id, BroadcastCampaign.state == St.SCHEDULED)
                .values(state=St.SENDING, started_at=now, scheduled_at=now, updated_at=now, state_reason=None)
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise await _refusal(s, campaign_id, "开始发送（须先审核通过：已排期）")
            if opted:
                await exclude_opted_out(s, campaign_id, opted)
        return await self.view(campaign_id)

    async def pause(self, campaign_id: str, actor: str) -> dict[str, Any]:
        return await self._transition(campaign_id, "pause", actor, {"state_reason": f"{actor} 暂停"[:255]})

    async def resume(self, campaign_id: str, actor: str) -> dict[str, Any]:
        campaign = await self.get(campaign_id)
        target = St.SENDING if campaign.started_at else St.SCHEDULED
        return await self._move(campaign_id, (St.PAUSED,), target, "resume", actor, {"state_reason": None})

    async def cancel(self, campaign_id: str, actor: str, reason: str = "") -> dict[str, Any]:
        """Stop for good.  Ledger rows still waiting for a retry are not sent either."""
        now = self.clock()
        sources = [s for s in CampaignState if s not in FINAL_STATES]
        view = await self._move(
            campaign_id,
            sources,
            St.CANCELLED,
            "cancel",
            actor,
            {
                "finished_at": now,
                "state_reason": (f"{actor} 取消：{reason}" if reason else f"{actor} 取消")[:255],
            },
        )
        async with self.sessions.begin() as s:
            await s.execute(
                update(SmsOutbound)
                .where(SmsOutbound.campaign_id == campaign_id, SmsOutbound.status == LedgerStatus.PENDING)
                .values(
                    status=LedgerStatus.FAILED,
                    error_message="campaign_cancelled",
                    finished_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
        await self.wechat_notices.cancelled(campaign_id)  # template notices not yet sent are not sent
        return view

    async def finish(self, campaign_id: str, failed: bool = False, reason: str | None = None) -> bool:
        """发送中 → 已完成 (or 已失败); called by a worker when the queue is drained."""
        now = self.clock()
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastCampaign)
                .where(BroadcastCampaign.id == campaign_id, BroadcastCampaign.state == St.SENDING)
                .values(
                    state=St.FAILED if failed else St.COMPLETED,
                    finished_at=now,
                    updated_at=now,
                    state_reason=reason,
                )
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------------------------- progress

    async def progress(self, campaign_id: str) -> dict[str, Any]:
        """Live counters from the recipient list and the ledger (``views.progress_view``)."""
        campaign = await self.get(campaign_id)
        async with self.sessions() as s:
            exclusions = (
                await s.execute(
                    select(BroadcastRecipient.excluded, func.count())
                    .where(BroadcastRecipient.campaign_id == campaign_id)
                    .group_by(BroadcastRecipient.excluded)
                )
            ).all()
            ledger = (
                await s.execute(
                    select(
                        SmsOutbound.status, SmsOutbound.error_code, SmsOutbound.error_message, func.count()
                    )
                    .where(SmsOutbound.campaign_id == campaign_id, SmsOutbound.part == 1)
                    .group_by(SmsOutbound.status, SmsOutbound.error_code, SmsOutbound.error_message)
                )
            ).all()
        waiting = waiting_note(campaign, self.clock(), self.settings.tz)
        view = progress_view(campaign, dict(exclusions), ledger, waiting)
        if campaign.audience_cases is not None:  # template notices, one per follower
            notices = view["wechat"] = await self.wechat_notices.progress(campaign_id)
            planned = notices["planned"]
            done = notices["sent"] + notices["failed"] + notices["skipped"]
            view.update(
                sent=notices["sent"], delivered=notices["delivered"],
                failed=notices["failed"] + notices["blocked"] + notices["undelivered"],
                queued=notices["pending"] if planned else view["eligible"], in_flight=notices["sending"],
                done=done, percent=round(100.0 * done / planned, 1) if planned else 0.0,
            )  # fmt: skip
        elif campaign.channel == Channel.WECHAT:  # mass-send jobs and the counts of their finish events
            wechat = view["wechat"] = await self.wechat_jobs.progress(campaign_id)
            jobs = wechat["jobs"]

            def size(state: str) -> int:  # followers in the jobs in ``state`` (a tag job: the tag's size)
                return sum(j["openids"] if j["tag_id"] is None else campaign.recipients_total
                           for j in jobs if j["state"] == state)  # fmt: skip

            view.update(
                sent=wechat["sent"], delivered=wechat["sent"], failed=wechat["errors"],
                queued=size("pending") if jobs else view["eligible"],
                in_flight=size("submitted"),
                done=wechat["finished"],
                percent=round(100.0 * wechat["finished"] / len(jobs), 1) if jobs else 0.0,
            )  # fmt: skip
        return view

    # ------------------------------------------------------------------------------------- results

    async def results(self, campaign_id: str) -> list[dict[str, Any]]:
        """One row per recipient (excluded ones too) with the ledger outcome (``views.result_rows``)."""
        recipients = await self._recipients(campaign_id)
        campaign = await self.get(campaign_id)
        if campaign.audience_cases is not None:  # each follower's template notice
            return notice_result_rows(recipients, await self.wechat_notices.rows(campaign_id))
        if campaign.channel == Channel.WECHAT:  # no ledger rows: the mass-send jobs carried them
            return wechat_result_rows(recipients, await self.wechat_jobs.progress(campaign_id))
        async with self.sessions() as s:
            ledger = {
                r.recipient: r
                for r in (
                    await s.execute(
                        select(SmsOutbound).where(
                            SmsOutbound.campaign_id == campaign_id, SmsOutbound.part == 1
                        )
                    )
                ).scalars()
            }
        return result_rows(recipients, ledger, cancelled=campaign.state == St.CANCELLED)


_ACTION_LABELS = {
    "submit": "提交审核",
    "reject": "退回",
    "approve": "审核通过",
    "start": "开始发送",
    "pause": "暂停",
    "resume": "继续",
    "cancel": "取消",
}
