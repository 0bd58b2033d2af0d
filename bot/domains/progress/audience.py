"""The followers bound to a case who take its notifications, as a WeChat campaign's audience
(``sms_gateway.broadcast.wechat_notices.CaseAudience``): template notices go to them, each about their own
case.  Only WeChat bindings (an openid) with notifications on count; a follower bound to several cases is
one recipient, with the case updated last; the list is in ticket order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domains.progress.models import ProgressBinding
from sms_gateway.broadcast.wechat_notices import CaseFollower

_WECHAT = (ProgressBinding.channel == "wechat", ProgressBinding.notify.is_(True))


class BoundFollowers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def items(self) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(
                        ProgressBinding.item_code,
                        func.max(ProgressBinding.item_name),
                        func.count(func.distinct(ProgressBinding.address)),
                    )
                    .where(*_WECHAT, ProgressBinding.item_code != "")
                    .group_by(ProgressBinding.item_code)
                    .order_by(ProgressBinding.item_code)
                )
            ).all()
        return [{"item_code": code, "item_name": name, "followers": n} for code, name, n in rows]

    async def followers(self, item_code: str | None) -> list[CaseFollower]:
        query = select(ProgressBinding).where(*_WECHAT)
        if item_code is not None:
            query = query.where(ProgressBinding.item_code == item_code)
        query = query.order_by(ProgressBinding.updated_at.desc(), ProgressBinding.id.desc())
        chosen: dict[str, CaseFollower] = {}
        async with self.sessions() as s:
            for b in (await s.execute(query)).scalars():
                if b.address not in chosen:
                    chosen[b.address] = CaseFollower(b.address, b.ticket_no, b.item_name)
        return sorted(chosen.values(), key=lambda f: f.ticket_no)  # in the order the cases were accepted

    async def subscribed(self, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        if not pairs:
            return set()
        wanted = set(pairs)
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(ProgressBinding.address, ProgressBinding.ticket_no).where(
                        *_WECHAT, ProgressBinding.address.in_({openid for openid, _ in wanted})
                    )
                )
            ).all()
        return {(a, t) for a, t in rows} & wanted
