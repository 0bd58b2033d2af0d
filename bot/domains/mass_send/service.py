"""The WeChat side of campaigns with ``channel=wechat``: the runner submits each job of a campaign that is
发送中 (``sms_gateway/broadcast/wechat_jobs.py`` plans them) through the mass-send API, and the gateway's
WeChat channel hands it the MASSSENDJOBFINISH events that finish them.

* Each job carries its ``clientmsgid``: a job submitted again (we crashed after WeChat took it) gets the
  first job's ``msg_id`` back and nothing is sent twice.
* WeChat's refusals that will not change (no quota left this month 45028, a tag gone 40050, too few
  openids 40130, content refused) fail the job with the reason; anything else (timeouts, -1 busy, token
  trouble) leaves it pending for the next round.
* Scheduled WeChat campaigns are started here when their time comes (the SMS workers start theirs).
* Campaigns to citizens bound to a case are template notices, one per follower (``notices.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from sqlalchemy import select

from bot.adapters.wechat.api_client import WeChatAPIError
from bot.core.clock import as_utc
from bot.domains.mass_send.notices import NoticeSender
from sms_gateway.broadcast.errors import BroadcastError
from sms_gateway.broadcast.models import BroadcastCampaign, CampaignState, Channel
from sms_gateway.broadcast.service import BroadcastService

log = logging.getLogger(__name__)

PERMANENT = {40003, 40008, 40050, 40130, 44004, 45002, 45028, 45067, 48001}


class MassSendAPI(Protocol):
    """What the runner needs from WeChat (``WeChatApiClient`` implements it)."""

    async def mass_send_text(
        self, content: str, *, client_msg_id: str, openids: list[str] | None = None, tag_id: int | None = None
    ) -> int: ...

    async def tags(self) -> list[dict[str, Any]]: ...


class MassSendRunner:
    def __init__(
        self,
        broadcasts: BroadcastService,
        api: MassSendAPI,
        *,
        notices: NoticeSender | None = None,
        interval: float = 5.0,
    ) -> None:
        self.broadcasts = broadcasts
        self.notices = notices  # campaigns to citizens bound to a case: template notices
        self.jobs = broadcasts.wechat_jobs
        self.api = api
        self.interval = interval

    async def run_once(self) -> dict[str, int]:
        """Start due scheduled campaigns, plan the sending ones' jobs and submit what is pending."""
        report = {"started": await self._start_due(), "submitted": 0, "failed": 0, "waiting": 0}
        for campaign_id in await self.jobs.sending_campaigns():
            await self.jobs.plan(campaign_id)
            for job in await self.jobs.pending(campaign_id):
                try:
                    msg_id = await self.api.mass_send_text(
                        job.content, client_msg_id=job.client_msg_id,
                        openids=job.openids if job.tag_id is None else None, tag_id=job.tag_id,
                    )  # fmt: skip
                except WeChatAPIError as exc:
                    if exc.errcode in PERMANENT:
                        extra = {"campaign": campaign_id, "errcode": exc.errcode}
                        log.warning("WeChat refused a mass send", extra=extra)
                        await self.jobs.refused(job.id, f"{exc.errcode} {exc.errmsg}")
                        report["failed"] += 1
                    else:
                        log.info("mass send not submitted, will retry", extra={"errcode": exc.errcode})
                        report["waiting"] += 1
                    continue
                await self.jobs.submitted(job.id, msg_id)
                report["submitted"] += 1
        if self.notices is not None:
            report.update({f"notices_{k}": v for k, v in (await self.notices.run_once()).items()})
        return report

    async def _start_due(self) -> int:
        now = self.broadcasts.clock()
        async with self.broadcasts.sessions() as s:
            rows = (
                await s.execute(
                    select(BroadcastCampaign.id, BroadcastCampaign.scheduled_at).where(
                        BroadcastCampaign.channel == Channel.WECHAT,
                        BroadcastCampaign.state == CampaignState.SCHEDULED,
                    )
                )
            ).all()
        started = 0
        for campaign_id, due in rows:
            when = as_utc(due)
            if when is not None and when <= now:
                with contextlib.suppress(BroadcastError):
                    await self.broadcasts.begin_sending(campaign_id, now)
                    started += 1
        return started

    async def finished(self, msg_id: int, status: str, counts: dict[str, int]) -> None:
        """WeChat's MASSSENDJOBFINISH event for ``msg_id`` (a repeat changes nothing)."""
        campaign = await self.jobs.finished(msg_id, status, counts)
        log.info("mass send finished", extra={"msg_id": msg_id, "status": status, **counts})
        if campaign is not None:
            log.info("WeChat campaign finished", extra={"campaign": campaign})

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("mass-send round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
