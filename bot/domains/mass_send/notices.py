"""Template notices of WeChat campaigns to citizens bound to a case (``sms_gateway/broadcast/
wechat_notices.py`` keeps their rows): each round takes a batch, checks again that every follower still
takes the case's notifications, and sends each one WeChat's template message.

* ``client_msg_id`` = ``<campaign>:<seq>``: a notice sent again after a crash (its lease lapsed) is not
  delivered twice by WeChat.
* WeChat refusing one follower (unfollowed 43004, blocked 43019, not a follower 40003) fails that notice;
  the daily quota (45009) or WeChat being busy leaves the notices pending for a later round; any other
  refusal (the template 40037, its fields 47003, permissions …) or no template id pauses the campaign with
  the reason.
* Only inside the campaign's sending window, and only while it is 发送中 (a pause or cancel stops it
  within a batch).

WECHAT_NOTICE_TEMPLATE_ID       the template the notices use (empty: campaigns to bound citizens are refused)
WECHAT_NOTICE_TEMPLATE_FIELDS   JSON mapping roles (item, number, notice, time) to the template's keys
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.adapters.wechat.api_client import (
    ERRCODE_TIMEOUT,
    ERRCODE_TOKEN_WAIT,
    ERRCODE_TRANSPORT,
    WeChatAPIError,
)
from bot.adapters.wechat.templates import TemplateSender, field_map, template_data, thing, time_value
from bot.core.clock import as_utc
from bot.core.env import Env
from sms_gateway.broadcast.models import BroadcastCampaign
from sms_gateway.broadcast.service import BroadcastService
from sms_gateway.broadcast.wechat_notices import CaseAudience, ClaimedNotice
from sms_gateway.broadcast.window import in_window

log = logging.getLogger(__name__)

DEFAULT_FIELDS = {"item": "thing1", "number": "character_string2", "notice": "thing3", "time": "time4"}
FOLLOWER_REFUSALS = frozenset({40003, 43004, 43019})  # this follower: not a follower, unfollowed, blocked us
QUOTA = 45009  # the account's daily template-message quota
# Worth trying again later; anything else WeChat says (40037 no such template, 47003 values the template's
# fields refuse, 48001 no permission, 40164 IP not allowed …) pauses the campaign with WeChat's code.
TRANSIENT = frozenset({-1, 45011, QUOTA, ERRCODE_TRANSPORT, ERRCODE_TIMEOUT, ERRCODE_TOKEN_WAIT})
QUOTA_PAUSE = 600.0  # seconds before trying again after 45009


@dataclass(frozen=True)
class NoticeSettings:
    template_id: str = ""
    fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    batch: int = 50
    concurrency: int = 10
    lease: float = 120.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | Env | None = None) -> NoticeSettings:
        e = Env.of(env)
        var = "WECHAT_NOTICE_TEMPLATE_FIELDS"
        return cls(
            template_id=e.text("WECHAT_NOTICE_TEMPLATE_ID"), fields=field_map(e.raw(var), DEFAULT_FIELDS, var)
        )


class NoticeSender:
    def __init__(
        self,
        broadcasts: BroadcastService,
        api: TemplateSender,
        audience: CaseAudience,
        settings: NoticeSettings,
    ) -> None:
        self.broadcasts = broadcasts
        self.notices = broadcasts.wechat_notices
        self.api = api
        self.audience = audience
        self.settings = settings
        self._quiet_until = 0.0  # monotonic: after 45009, no sends before this

    async def run_once(self) -> dict[str, int]:
        report = {"sent": 0, "failed": 0, "skipped": 0, "waiting": 0, "halt": 0}
        for campaign in await self.notices.sending_campaigns():
            if time.monotonic() < self._quiet_until:
                break
            now = self.broadcasts.clock()
            if not in_window(now, campaign.window_start, campaign.window_end, self.broadcasts.settings.tz):
                continue
            if not self.settings.template_id:  # unset after approval: nothing can be sent
                await self.notices.halt(campaign.id, "未配置办件通知的模板消息（WECHAT_NOTICE_TEMPLATE_ID）")
                report["halt"] += 1
                continue
            await self.notices.plan(campaign.id)
            await self._send_campaign(campaign, report)
            await self.notices.settle(campaign.id)
        return report

    async def _send_campaign(self, campaign: BroadcastCampaign, report: dict[str, int]) -> None:
        while True:
            batch = await self.notices.claim(campaign.id, self.settings.batch, self.settings.lease)
            if not batch:
                return
            if (await self.broadcasts.get(campaign.id)).state != campaign.state:  # paused or cancelled
                for notice in batch:
                    await self.notices.release(notice, None, "群发已暂停或取消")
                return
            still = await self.audience.subscribed([(n.openid, n.ticket_no) for n in batch])
            gate = asyncio.Semaphore(self.settings.concurrency)
            outcomes = await asyncio.gather(*(self._one(campaign, n, still, gate) for n in batch))
            for outcome in outcomes:
                report[outcome] += 1
            if "halt" in outcomes or "waiting" in outcomes:
                return

    async def _one(
        self,
        campaign: BroadcastCampaign,
        notice: ClaimedNotice,
        still: set[tuple[str, str]],
        gate: asyncio.Semaphore,
    ) -> str:
        if (notice.openid, notice.ticket_no) not in still:
            await self.notices.skipped(notice, "已关闭办件通知或解除绑定")
            return "skipped"
        async with gate:
            return await self._send(campaign, notice)

    async def _send(self, campaign: BroadcastCampaign, notice: ClaimedNotice) -> str:
        tz = self.broadcasts.settings.tz
        moment = (as_utc(campaign.started_at) or self.broadcasts.clock()).astimezone(tz)
        values = {
            "item": thing(notice.item_name or "办件"),
            "number": notice.ticket_no,
            "notice": thing(campaign.template),
            "time": time_value(moment),
        }
        data = template_data(values, self.settings.fields)
        try:
            msg_id = await self.api.send_template(
                notice.openid, self.settings.template_id, data, client_msg_id=notice.client_msg_id
            )
        except WeChatAPIError as exc:
            if exc.errcode in FOLLOWER_REFUSALS:
                await self.notices.refused(notice, exc.errcode, exc.errmsg)
                return "failed"
            await self.notices.release(notice, exc.errcode, exc.errmsg)
            if exc.errcode not in TRANSIENT:
                reason = f"微信拒绝发送办件通知（{exc.errcode} {exc.errmsg}），请检查模板配置后继续"
                if await self.notices.halt(campaign.id, reason):
                    log.warning(
                        "template notices paused", extra={"campaign": campaign.id, "errcode": exc.errcode}
                    )
                return "halt"
            if exc.errcode == QUOTA:
                self._quiet_until = time.monotonic() + QUOTA_PAUSE
            log.info("template notice not sent, will retry", extra={"errcode": exc.errcode})
            return "waiting"
        await self.notices.sent(notice, msg_id)
        return "sent"

    async def finished(self, msg_id: int, status: str) -> None:
        """WeChat's TEMPLATESENDJOBFINISH (also for progress and complaint notices: those match nothing)."""
        if await self.notices.finished(msg_id, status):
            log.info("template notice finished", extra={"msg_id": msg_id, "status": status})
