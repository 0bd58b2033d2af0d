"""Who a campaign goes to: its recipient list (from an upload and/or saved groups, checked against the
opt-out list) and the saved groups it may draw from.  ``BroadcastService`` delegates to :class:`Audience`
and keeps the campaign lifecycle; parsing a file is ``recipients.py``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.errors import BroadcastError
from sms_gateway.broadcast.models import (
    BroadcastCampaign,
    BroadcastGroup,
    BroadcastGroupMember,
    BroadcastRecipient,
    CampaignState,
    Exclusion,
    new_id,
)
from sms_gateway.broadcast.recipients import ParsedList, RecipientRow, classify, parse_upload, read_upload
from sms_gateway.broadcast.template import variables
from sms_gateway.optout import OptOutStore


def _group_members(
    gid: str, upload: tuple[str, bytes], column_map: Mapping[str, str] | None, max_rows: int
) -> tuple[list[dict[str, Any]], ParsedList]:
    """A saved group's member rows from an upload (valid, distinct numbers with the values of every
    column, and the mapped variables), and the parsed list for its counts."""
    parsed = parse_upload(upload[0], upload[1], needed=[], max_rows=max_rows)
    rows, _ = read_upload(upload[0], upload[1])
    header = rows[parsed.header_row - 1]
    by_row = {parsed.header_row + 1 + i: r for i, r in enumerate(rows[parsed.header_row :])}
    members = []
    for r in parsed.rows:
        if r.excluded is not None or r.address is None:
            continue
        cells = by_row.get(int(r.source.split(":")[1]), [])
        values = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header) if h}
        for var, col in (column_map or {}).items():
            values[var] = values.get(col, "")
        members.append(
            {"group_id": gid, "address": r.address, "variables": json.dumps(values, ensure_ascii=False)}
        )
    return members, parsed


async def exclude_opted_out(s: AsyncSession, campaign_id: str, opted: set[str]) -> None:
    """In the caller's transaction: the list's numbers in ``opted`` that are not excluded yet become
    opted-out exclusions (the list is frozen when sending begins)."""
    await s.execute(
        update(BroadcastRecipient)
        .where(
            BroadcastRecipient.campaign_id == campaign_id,
            BroadcastRecipient.excluded.is_(None),
            BroadcastRecipient.address.in_(sorted(opted)),
        )
        .values(excluded=Exclusion.OPTED_OUT)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class Audience:
    """Recipient lists and saved groups, on the service's settings, database and clock."""

    settings: BroadcastSettings
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]

    # ------------------------------------------------------------------------------------- recipients

    async def replace(
        self,
        campaign: BroadcastCampaign,
        *,
        upload: tuple[str, bytes] | None,
        column_map: Mapping[str, str] | None,
        group_ids: Sequence[str],
    ) -> dict[str, Any]:
        """Replace the campaign's list with the upload and/or saved groups, in one transaction (a rejected
        file leaves the previous list untouched).  Only drafts can change."""
        if campaign.state != CampaignState.DRAFT:
            raise BroadcastError(f"只有草稿可以修改收件人（当前状态：{campaign.state}）")
        if upload is None and not group_ids:
            raise BroadcastError("请上传收件人文件或选择已保存的分组", 400)
        rows, encoding = await self._read_list(campaign, upload, column_map, group_ids)
        if not rows:
            raise BroadcastError("收件人名单为空", 400)
        if len(rows) > self.settings.max_recipients:
            raise BroadcastError(f"收件人过多：{len(rows)} 个，上限 {self.settings.max_recipients} 个", 400)
        opted = await self.opted_out({r.address for r in rows if r.address and r.excluded is None})
        final = [
            RecipientRow(r.source, r.raw, r.address, r.variables, Exclusion.OPTED_OUT)
            if r.excluded is None and r.address in opted
            else r
            for r in rows
        ]
        await self._store_list(
            campaign.id,
            final,
            column_map=column_map,
            group_ids=group_ids,
            source_name=upload[0][:255] if upload else None,
        )
        return {"campaign_id": campaign.id, "encoding": encoding, **ParsedList(final).counts()}

    async def _read_list(
        self,
        campaign: BroadcastCampaign,
        upload: tuple[str, bytes] | None,
        column_map: Mapping[str, str] | None,
        group_ids: Sequence[str],
    ) -> tuple[list[RecipientRow], str]:
        """The upload's rows (and its detected encoding), then the saved groups' members not already in it."""
        rows: list[RecipientRow] = []
        seen: set[str] = set()
        encoding = ""
        if upload is not None:
            if len(upload[1]) > self.settings.max_upload_bytes:
                raise BroadcastError(f"文件过大（上限 {self.settings.max_upload_bytes // 1048576} MB）", 413)
            parsed = await asyncio.to_thread(  # 50,000 rows take seconds: off the event loop
                partial(
                    parse_upload,
                    upload[0],
                    upload[1],
                    needed=variables(campaign.template),
                    column_map=column_map,
                    max_rows=self.settings.max_recipients,
                    channel=campaign.channel,
                )
            )
            encoding = parsed.encoding
            rows = parsed.rows
            seen = {r.address for r in rows if r.address and r.excluded is None}
        async with self.sessions() as s:
            for gid in group_ids:
                group = await s.get(BroadcastGroup, gid)
                if group is None:
                    raise BroadcastError(f"没有这个分组：{gid}", 404)
                members = (
                    await s.execute(
                        select(BroadcastGroupMember)
                        .where(BroadcastGroupMember.group_id == gid, BroadcastGroupMember.active.is_(True))
                        .order_by(BroadcastGroupMember.id)
                    )
                ).scalars()
                rows += classify(
                    ((f"group:{gid}", m.address, json.loads(m.variables)) for m in members),
                    seen,
                    campaign.channel,
                )
        return rows, encoding

    async def _store_list(
        self,
        campaign_id: str,
        final: Sequence[RecipientRow],
        *,
        column_map: Mapping[str, str] | None,
        group_ids: Sequence[str],
        source_name: str | None,
    ) -> None:
        """Replace the list in one transaction, if the campaign is still a draft."""
        now = self.clock()
        async with self.sessions.begin() as s:
            locked = await s.execute(
                update(BroadcastCampaign)
                .where(BroadcastCampaign.id == campaign_id, BroadcastCampaign.state == CampaignState.DRAFT)
                .values(
                    recipients_total=len(final),
                    column_map=json.dumps(dict(column_map or {}), ensure_ascii=False),
                    group_ids=json.dumps(list(group_ids)),
                    source_name=source_name,
                    audience_tag=None,  # an uploaded list replaces a WeChat tag
                    audience_tag_name=None,
                    audience_cases=None,  # and the followers bound to cases
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if not locked.rowcount:  # type: ignore[attr-defined]
                raise BroadcastError("群发任务已不是草稿，收件人未修改")
            await s.execute(delete(BroadcastRecipient).where(BroadcastRecipient.campaign_id == campaign_id))
            await s.execute(
                insert(BroadcastRecipient),
                [
                    {
                        "campaign_id": campaign_id,
                        "seq": i,
                        "source": r.source,
                        "raw": r.raw,
                        "address": r.address,
                        "variables": json.dumps(r.variables, ensure_ascii=False),
                        "excluded": str(r.excluded) if r.excluded else None,
                    }
                    for i, r in enumerate(final, start=1)
                ],
            )

    async def recipients(self, campaign_id: str) -> list[BroadcastRecipient]:
        """The stored list, in its order (excluded rows too)."""
        async with self.sessions() as s:
            return list(
                (
                    await s.execute(
                        select(BroadcastRecipient)
                        .where(BroadcastRecipient.campaign_id == campaign_id)
                        .order_by(BroadcastRecipient.seq)
                    )
                ).scalars()
            )

    async def opted_out(self, addresses: set[str]) -> set[str]:
        """Those of ``addresses`` on the opt-out list now."""
        return await OptOutStore(self.sessions).opted_out_among(addresses)

    async def opted_out_of(self, recipients: Sequence[BroadcastRecipient]) -> set[str]:
        """The numbers of a stored list, not excluded yet, that are on the opt-out list now."""
        return await self.opted_out({r.address for r in recipients if r.address and not r.excluded})

    # ------------------------------------------------------------------------------------- groups

    async def save_group(
        self, *, name: str, actor: str, upload: tuple[str, bytes], column_map: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """A saved group from an upload: valid, distinct numbers with the values of every column."""
        if not name.strip():
            raise BroadcastError("请填写分组名称", 400)
        if len(upload[1]) > self.settings.max_upload_bytes:
            raise BroadcastError(f"文件过大（上限 {self.settings.max_upload_bytes // 1048576} MB）", 413)
        gid = new_id("grp")
        members, parsed = await asyncio.to_thread(
            _group_members, gid, upload, column_map, self.settings.max_recipients
        )
        async with self.sessions.begin() as s:
            exists = (await s.execute(select(BroadcastGroup.id).where(BroadcastGroup.name == name))).first()
            if exists:
                raise BroadcastError(f"分组名称已存在：{name}")
            s.add(
                BroadcastGroup(
                    id=gid, name=name.strip()[:200], created_by=actor[:64], created_at=self.clock()
                )
            )
            await s.flush()
            if members:
                await s.execute(insert(BroadcastGroupMember), members)
        counts = parsed.counts()
        return {"group_id": gid, "name": name, "members": len(members), "excluded": counts}

    async def groups(self) -> list[dict[str, Any]]:
        """The saved groups, oldest first, with their member counts."""
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(BroadcastGroup, func.count(BroadcastGroupMember.id))
                    .outerjoin(BroadcastGroupMember, BroadcastGroupMember.group_id == BroadcastGroup.id)
                    .group_by(BroadcastGroup.id)
                    .order_by(BroadcastGroup.created_at)
                )
            ).all()
        return [{"group_id": g.id, "name": g.name, "members": n, "channel": g.channel} for g, n in rows]
