"""WeChat campaigns' mass-send calls (``broadcast_wechat_jobs``): planned once per campaign, submitted by
the gateway's runner (``bot/domains/mass_send``, which holds the WeChat adapter), finished by WeChat's
MASSSENDJOBFINISH event.

* **Plan** (idempotent, one transaction): a tag campaign is one job; an openid list is one job per 10,000
  eligible openids (WeChat's ``mass/send`` takes 2 to 10,000).  Each job has a ``client_msg_id`` of its
  own (``<campaign>:<seq>``): submitted twice — a crash after WeChat accepted it, before we recorded it —
  WeChat answers with the first job's ``msg_id`` and sends nothing again.
* **Submitted** jobs wait for the event; its counts (total, filtered — unfollowed or over the monthly
  limit of 4 —, sent, errors) are the campaign's progress.  When every job is finished or failed the
  campaign is 已完成 (已失败 when nothing was sent).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_gateway.broadcast.models import (
    BroadcastCampaign,
    BroadcastRecipient,
    BroadcastWeChatJob,
    CampaignState,
    Channel,
)

MAX_OPENIDS = 10_000


def eligible(campaign_id: str) -> Select[BroadcastRecipient]:
    """The campaign's recipients that are sent to (not excluded, with an address), in list order."""
    return (
        select(BroadcastRecipient)
        .where(
            BroadcastRecipient.campaign_id == campaign_id,
            BroadcastRecipient.excluded.is_(None),
            BroadcastRecipient.address.is_not(None),
        )
        .order_by(BroadcastRecipient.seq)
    )


async def finish_campaign(s: AsyncSession, campaign_id: str, sent: bool, failure: str, now: datetime) -> bool:
    """A sending WeChat campaign whose sends all settled: 已完成, or 已失败 (with ``failure``) when nothing
    was sent.  False when it was no longer 发送中."""
    result = await s.execute(
        update(BroadcastCampaign)
        .where(BroadcastCampaign.id == campaign_id, BroadcastCampaign.state == CampaignState.SENDING)
        .values(
            state=CampaignState.COMPLETED if sent else CampaignState.FAILED,
            state_reason=None if sent else failure,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PendingJob:
    id: int
    campaign_id: str
    client_msg_id: str
    content: str
    tag_id: int | None
    openids: list[str]


class WeChatJobs:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    async def sending_campaigns(self) -> list[str]:
        async with self.sessions() as s:
            query = select(BroadcastCampaign.id).where(
                BroadcastCampaign.channel == Channel.WECHAT,
                BroadcastCampaign.state == CampaignState.SENDING,
                BroadcastCampaign.audience_cases.is_(None),  # template notices: wechat_notices.py
            )
            return list((await s.execute(query)).scalars())

    async def plan(self, campaign_id: str) -> int:
        """Create the campaign's jobs unless it has them; returns how many it has."""
        async with self.sessions.begin() as s:
            have = await s.scalar(select(func.count()).where(BroadcastWeChatJob.campaign_id == campaign_id))
            if have:
                return int(have)
            campaign = await s.get(BroadcastCampaign, campaign_id)
            if campaign is None:
                return 0
            chunks: list[tuple[int | None, list[str]]]
            if campaign.audience_tag is not None:
                chunks = [(campaign.audience_tag, [])]
            else:
                openids = [str(r.address) for r in (await s.execute(eligible(campaign_id))).scalars()]
                step = MAX_OPENIDS
                chunks = [(None, openids[i : i + step]) for i in range(0, len(openids), step)]
            for seq, (tag, openids) in enumerate(chunks, start=1):
                s.add(
                    BroadcastWeChatJob(
                        campaign_id=campaign_id, seq=seq, client_msg_id=f"{campaign_id}:{seq}", tag_id=tag,
                        openids=json.dumps(openids), state="pending", total=0, filtered=0, sent=0, errors=0,
                    )
                )  # fmt: skip
            return len(chunks)

    async def pending(self, campaign_id: str) -> list[PendingJob]:
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(BroadcastWeChatJob, BroadcastCampaign.template)
                    .join(BroadcastCampaign, BroadcastCampaign.id == BroadcastWeChatJob.campaign_id)
                    .where(
                        BroadcastWeChatJob.campaign_id == campaign_id, BroadcastWeChatJob.state == "pending"
                    )
                    .order_by(BroadcastWeChatJob.seq)
                )
            ).all()
        return [
            PendingJob(
                job.id, job.campaign_id, job.client_msg_id, template, job.tag_id, json.loads(job.openids)
            )
            for job, template in rows
        ]

    async def submitted(self, job_id: int, msg_id: int) -> None:
        async with self.sessions.begin() as s:
            await s.execute(
                update(BroadcastWeChatJob)
                .where(BroadcastWeChatJob.id == job_id, BroadcastWeChatJob.state == "pending")
                .values(state="submitted", msg_id=msg_id, submitted_at=self.clock())
            )

    async def refused(self, job_id: int, reason: str) -> str | None:
        """WeChat refused the job for good (no quota, a tag gone): it fails; returns its campaign when that
        settled the campaign."""
        async with self.sessions.begin() as s:
            job = await s.get(BroadcastWeChatJob, job_id)
            if job is None or job.state != "pending":
                return None
            job.state, job.status_text, job.finished_at = "failed", reason[:64], self.clock()
            campaign_id = job.campaign_id
        return campaign_id if await self._settle(campaign_id) else None

    async def finished(self, msg_id: int, status: str, counts: dict[str, int]) -> str | None:
        """The MASSSENDJOBFINISH event of ``msg_id``: its counts are recorded (a repeat changes nothing);
        returns the campaign when this finished it, else None."""
        async with self.sessions.begin() as s:
            job = (
                await s.execute(select(BroadcastWeChatJob).where(BroadcastWeChatJob.msg_id == msg_id))
            ).scalar_one_or_none()
            if job is None or job.state == "finished":
                return None
            job.state, job.status_text, job.finished_at = "finished", status[:64], self.clock()
            job.total, job.filtered = counts.get("total", 0), counts.get("filtered", 0)
            job.sent, job.errors = counts.get("sent", 0), counts.get("errors", 0)
            campaign_id = job.campaign_id
        return campaign_id if await self._settle(campaign_id) else None

    async def _settle(self, campaign_id: str) -> bool:
        """已完成 (或 已失败 when nothing was sent) once no job is pending or submitted."""
        async with self.sessions.begin() as s:
            jobs = (
                (
                    await s.execute(
                        select(BroadcastWeChatJob).where(BroadcastWeChatJob.campaign_id == campaign_id)
                    )
                )
                .scalars()
                .all()
            )
            if not jobs or any(j.state in ("pending", "submitted") for j in jobs):
                return False
            sent = sum(j.sent for j in jobs)
            return await finish_campaign(
                s, campaign_id, sent > 0, "公众号群发没有送达任何关注者", self.clock()
            )

    async def progress(self, campaign_id: str) -> dict[str, Any]:
        async with self.sessions() as s:
            jobs: Sequence[BroadcastWeChatJob] = (
                (
                    await s.execute(
                        select(BroadcastWeChatJob)
                        .where(BroadcastWeChatJob.campaign_id == campaign_id)
                        .order_by(BroadcastWeChatJob.seq)
                    )
                )
                .scalars()
                .all()
            )
        return {
            "jobs": [
                {
                    "seq": j.seq,
                    "state": j.state,
                    "msg_id": j.msg_id,
                    "tag_id": j.tag_id,
                    "openids": len(json.loads(j.openids)),
                    "total": j.total,
                    "filtered": j.filtered,
                    "sent": j.sent,
                    "errors": j.errors,
                    "status": j.status_text,
                }
                for j in jobs
            ],
            "submitted": sum(1 for j in jobs if j.state != "pending"),
            "finished": sum(1 for j in jobs if j.state in ("finished", "failed")),
            "total": sum(j.total for j in jobs),
            "filtered": sum(j.filtered for j in jobs),
            "sent": sum(j.sent for j in jobs),
            "errors": sum(j.errors for j in jobs),
        }
