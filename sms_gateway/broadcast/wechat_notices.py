"""WeChat campaigns to citizens bound to a case (``audience_cases``): one template notice per follower
(``broadcast_wechat_notices``), sent by the gateway's runner (``bot/domains/mass_send/notices.py``, which
holds the WeChat adapter), finished by WeChat's TEMPLATESENDJOBFINISH event.

* **Audience**: when staff choose it, the followers who bound a case (of one item, or of any) on the
  official account and still take its notifications — one row per follower, with the case that binds
  them (the most recently updated).  The gateway provides them (:class:`CaseAudience`): this package does
  not read the progress domain's tables.
* **Plan** (idempotent): one ``pending`` notice per eligible recipient.
* **Claim**: a runner takes a batch with a compare-and-set per row (``sending`` until ``lease_until``), so
  two gateway workers never send the same notice; a row whose runner died is taken again after its lease
  and sent with the same ``client_msg_id`` (``<campaign>:<seq>``): WeChat does not deliver it twice.
* **Outcome**: ``sent`` with WeChat's ``msgid`` (the event later sets ``outcome``: delivered, blocked by
  the user, or failed), ``failed`` with the errcode WeChat refused it with, ``skipped`` when the citizen
  turned notifications off (or the binding went away) before the send.  The campaign is 已完成 when no row
  is pending or sending (已失败 when none was sent).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_gateway.broadcast.models import (
    BroadcastCampaign,
    BroadcastWeChatNotice,
    CampaignState,
    Channel,
    NoticeState,
)
from sms_gateway.broadcast.wechat_jobs import eligible, finish_campaign

ALL_CASES = "*"  # audience_cases of a campaign to the followers bound to any case

# TEMPLATESENDJOBFINISH's Status → our outcome
OUTCOMES = {"success": "delivered", "failed:user block": "blocked", "failed: system failed": "failed"}


@dataclass(frozen=True)
class CaseFollower:
    """A follower bound to a case whose notifications they take."""

    openid: str
    ticket_no: str
    item_name: str


class CaseAudience(Protocol):
    """The followers bound to cases (the progress domain's bindings, given by the gateway)."""

    async def items(self) -> list[dict[str, Any]]:
        """``[{"item_code", "item_name", "followers"}]``: items whose cases have followers to notify."""
        ...

    async def followers(self, item_code: str | None) -> list[CaseFollower]:
        """One per follower bound to a case of ``item_code`` (any item: None) who takes notifications."""
        ...

    async def subscribed(self, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (openid, ticket) of ``pairs`` are still bound and take notifications."""
        ...


@dataclass(frozen=True)
class ClaimedNotice:
    id: int
    seq: int
    campaign_id: str
    openid: str
    ticket_no: str
    item_name: str
    attempt: int  # the row's ``attempts`` after this claim: only this claim may finish it

    @property
    def client_msg_id(self) -> str:
        return f"{self.campaign_id}:{self.seq}"


def recipient_values(follower: CaseFollower) -> str:
    """A recipient row's ``variables`` for a case follower."""
    return json.dumps({"受理编号": follower.ticket_no, "事项": follower.item_name}, ensure_ascii=False)


class WeChatNotices:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    async def sending_campaigns(self) -> list[BroadcastCampaign]:
        async with self.sessions() as s:
            query = select(BroadcastCampaign).where(
                BroadcastCampaign.channel == Channel.WECHAT,
                BroadcastCampaign.state == CampaignState.SENDING,
                BroadcastCampaign.audience_cases.is_not(None),
            )
            return list((await s.execute(query)).scalars())

    async def plan(self, campaign_id: str) -> int:
        """One pending notice per eligible recipient unless the campaign has them; returns how many (two
        runners planning at once: one transaction wins, the other's fails on the unique key and it counts)."""
        try:
            return await self._plan(campaign_id)
        except IntegrityError:
            async with self.sessions() as s:
                found = await s.scalar(
                    select(func.count()).where(BroadcastWeChatNotice.campaign_id == campaign_id)
                )
            return int(found or 0)

    async def _plan(self, campaign_id: str) -> int:
        async with self.sessions.begin() as s:
            have = await s.scalar(
                select(func.count()).where(BroadcastWeChatNotice.campaign_id == campaign_id)
            )
            if have:
                return int(have)
            recipients = (await s.execute(eligible(campaign_id))).scalars()
            count = 0
            for r in recipients:
                values = json.loads(r.variables or "{}")
                s.add(
                    BroadcastWeChatNotice(
                        campaign_id=campaign_id, seq=r.seq, openid=r.address,
                        ticket_no=str(values.get("受理编号", ""))[:15],
                        item_name=str(values.get("事项", ""))[:200],
                        state=NoticeState.PENDING, attempts=0,
                    )
                )  # fmt: skip
                count += 1
            return count

    async def claim(self, campaign_id: str, limit: int, lease: float) -> list[ClaimedNotice]:
        """Up to ``limit`` notices to send now (pending, or sending with a lapsed lease), each taken by a
        compare-and-set so no other runner sends it."""
        now = self.clock()
        due = or_(
            BroadcastWeChatNotice.state == NoticeState.PENDING,
            and_(BroadcastWeChatNotice.state == NoticeState.SENDING, BroadcastWeChatNotice.lease_until < now),
        )
        async with self.sessions.begin() as s:
            rows = (
                await s.execute(
                    select(BroadcastWeChatNotice)
                    .where(BroadcastWeChatNotice.campaign_id == campaign_id, due)
                    .order_by(BroadcastWeChatNotice.seq)
                    .limit(limit)
                )
            ).scalars().all()  # fmt: skip
            taken = []
            for row in rows:
                attempt = row.attempts + 1
                result = await s.execute(
                    update(BroadcastWeChatNotice)
                    .where(
                        BroadcastWeChatNotice.id == row.id,
                        BroadcastWeChatNotice.attempts == row.attempts,
                        due,
                    )
                    .values(
                        state=NoticeState.SENDING,
                        lease_until=now + timedelta(seconds=lease),
                        attempts=attempt,
                    )
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    taken.append(
                        ClaimedNotice(
                            row.id, row.seq, campaign_id, row.openid, row.ticket_no, row.item_name, attempt
                        )
                    )
        return taken

    async def _finish_claim(self, claim: ClaimedNotice, **values: Any) -> bool:
        """Record the outcome of ``claim`` unless another runner took the row since (its lease lapsed)."""
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastWeChatNotice)
                .where(
                    BroadcastWeChatNotice.id == claim.id,
                    BroadcastWeChatNotice.state == NoticeState.SENDING,
                    BroadcastWeChatNotice.attempts == claim.attempt,
                )
                .values(lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def sent(self, claim: ClaimedNotice, msg_id: int) -> bool:
        return await self._finish_claim(claim, state=NoticeState.SENT, msg_id=msg_id, sent_at=self.clock())

    async def refused(self, claim: ClaimedNotice, errcode: int, errmsg: str) -> bool:
        """WeChat will not deliver it to this follower (unfollowed, blocked, not a follower)."""
        return await self._finish_claim(
            claim,
            state=NoticeState.FAILED,
            errcode=errcode,
            status_text=errmsg[:64],
            finished_at=self.clock(),
        )

    async def skipped(self, claim: ClaimedNotice, reason: str) -> bool:
        return await self._finish_claim(
            claim, state=NoticeState.SKIPPED, status_text=reason[:64], finished_at=self.clock()
        )

    async def release(self, claim: ClaimedNotice, errcode: int | None, errmsg: str) -> bool:
        """Not sent this time (WeChat busy, the daily quota, the campaign paused): pending again."""
        return await self._finish_claim(
            claim, state=NoticeState.PENDING, errcode=errcode, status_text=errmsg[:64]
        )

    async def cancelled(self, campaign_id: str) -> int:
        """The campaign was cancelled: notices not sent yet (pending, or left sending by a runner that
        died) are skipped; one a live runner is sending now is recorded by that runner."""
        now = self.clock()
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastWeChatNotice)
                .where(
                    BroadcastWeChatNotice.campaign_id == campaign_id,
                    or_(
                        BroadcastWeChatNotice.state == NoticeState.PENDING,
                        and_(
                            BroadcastWeChatNotice.state == NoticeState.SENDING,
                            BroadcastWeChatNotice.lease_until < now,
                        ),
                    ),
                )
                .values(
                    state=NoticeState.SKIPPED,
                    status_text="campaign_cancelled",
                    lease_until=None,
                    finished_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def halt(self, campaign_id: str, reason: str) -> bool:
        """A refusal no resend will change (the template id is wrong): the campaign pauses with the reason
        so staff can mend the configuration and resume."""
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastCampaign)
                .where(BroadcastCampaign.id == campaign_id, BroadcastCampaign.state == CampaignState.SENDING)
                .values(state=CampaignState.PAUSED, state_reason=reason[:255], updated_at=self.clock())
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def finished(self, msg_id: int, status: str) -> bool:
        """WeChat's TEMPLATESENDJOBFINISH for ``msg_id``: the notice's outcome (False: not one of ours, or
        already recorded — the progress and complaint notices share the event)."""
        outcome = OUTCOMES.get(status.strip(), "failed" if status.startswith("failed") else "delivered")
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(BroadcastWeChatNotice)
                .where(BroadcastWeChatNotice.msg_id == msg_id, BroadcastWeChatNotice.outcome.is_(None))
                .values(outcome=outcome, status_text=status[:64], finished_at=self.clock())
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def settle(self, campaign_id: str) -> bool:
        """已完成 (已失败 when nothing was sent) once no notice is pending or sending."""
        async with self.sessions.begin() as s:
            states = dict(
                (
                    await s.execute(
                        select(BroadcastWeChatNotice.state, func.count())
                        .where(BroadcastWeChatNotice.campaign_id == campaign_id)
                        .group_by(BroadcastWeChatNotice.state)
                    )
                ).all()
            )
            if states.get(NoticeState.PENDING) or states.get(NoticeState.SENDING):
                return False
            sent = states.get(NoticeState.SENT, 0)
            return await finish_campaign(s, campaign_id, sent > 0, "模板消息没有送达任何关注者", self.clock())

    async def rows(self, campaign_id: str) -> dict[int, BroadcastWeChatNotice]:
        """The campaign's notices by recipient seq."""
        async with self.sessions() as s:
            found = (
                await s.execute(
                    select(BroadcastWeChatNotice).where(BroadcastWeChatNotice.campaign_id == campaign_id)
                )
            ).scalars()
            return {n.seq: n for n in found}

    async def progress(self, campaign_id: str) -> dict[str, Any]:
        async with self.sessions() as s:
            counts = (
                await s.execute(
                    select(BroadcastWeChatNotice.state, BroadcastWeChatNotice.outcome, func.count())
                    .where(BroadcastWeChatNotice.campaign_id == campaign_id)
                    .group_by(BroadcastWeChatNotice.state, BroadcastWeChatNotice.outcome)
                )
            ).all()
        states: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        for state, outcome, n in counts:
            states[state] += n
            if outcome:
                outcomes[outcome] += n
        return {
            "mode": "template",
            "planned": sum(states.values()),
            **{str(state): states[state] for state in NoticeState},
            "delivered": outcomes["delivered"],
            "blocked": outcomes["blocked"],
            "undelivered": outcomes["failed"],
        }
