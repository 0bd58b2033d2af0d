"""Personal API tokens (and integration tokens, e.g. for Open311) for the CLI and other systems.

A token is ``gvb_`` + 40 random URL-safe characters.  It is shown once; only its SHA-256 is stored,
with its last eight characters to tell tokens apart.  Each has a name, scopes (a subset of its owner's
permissions, checked again at every use, so a role taken away is taken from the token too), an expiry
(at most ``STAFF_TOKEN_MAX_DAYS``), revocation, and the time and address it was last used from.  A
disabled account's tokens stop at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.actor import Actor
from bot.core.clock import as_utc, utcnow
from bot.domains.staff.accounts import AccountError, actor_for, roles_of
from bot.domains.staff.config import StaffSettings
from bot.domains.staff.models import StaffAccount, StaffToken
from bot.domains.staff.roles import PERMISSIONS, permissions_of

PREFIX = "gvb_"
LAST_USED_EVERY = timedelta(seconds=60)  # how often last_used_at is written, at most


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Tokens:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: StaffSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self.settings = settings or StaffSettings()
        self._clock = clock

    async def create(
        self, owner: StaffAccount, name: str, scopes: Iterable[str], days: int | None, created_by: int
    ) -> tuple[str, StaffToken]:
        """The token (shown once) and its row.  ``scopes`` must be among the owner's permissions."""
        wanted = frozenset(s.strip() for s in scopes if s.strip())
        allowed = permissions_of(roles_of(owner))
        if not wanted:
            raise AccountError("请至少选择一个权限范围")
        unknown = wanted - PERMISSIONS.keys()
        if unknown:
            raise AccountError(f"未知权限：{', '.join(sorted(unknown))}")
        if wanted - allowed:
            raise AccountError(f"令牌不能超出持有人的权限：{', '.join(sorted(wanted - allowed))}", 403)
        days = days or self.settings.token_default_days
        if not 1 <= days <= self.settings.token_max_days:
            raise AccountError(f"有效期须为 1-{self.settings.token_max_days} 天")
        if not name.strip():
            raise AccountError("请为令牌命名（如“CLI”“对接系统”）")
        token = PREFIX + secrets.token_urlsafe(30)
        now = self._clock()
        row = StaffToken(
            account_id=owner.id,
            name=name.strip()[:64],
            token_hash=token_hash(token),
            last_eight=token[-8:],
            scopes=",".join(sorted(wanted)),
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        async with self._sessions() as session, session.begin():
            live = await session.scalar(
                select(func.count()).where(
                    StaffToken.account_id == owner.id,
                    StaffToken.revoked_at.is_(None),
                    StaffToken.expires_at > now,
                )
            )
            if (live or 0) >= self.settings.tokens_per_account:
                raise AccountError(
                    f"每人最多 {self.settings.tokens_per_account} 个有效令牌，请先吊销不用的令牌", 409
                )
            session.add(row)
        return token, row

    async def of(self, account_id: int) -> list[StaffToken]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(StaffToken).where(StaffToken.account_id == account_id).order_by(StaffToken.id.desc())
            )
            return list(rows)

    async def get(self, token_id: int) -> StaffToken | None:
        async with self._sessions() as session:
            return await session.get(StaffToken, token_id)

    async def revoke(self, token_id: int) -> bool:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(StaffToken)
                .where(StaffToken.id == token_id, StaffToken.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            return bool(getattr(result, "rowcount", 0))

    async def authenticate(self, token: str, client_ip: str) -> Actor | None:
        """The actor behind a live token, with the token's scopes; None for anything else."""
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        now = self._clock()
        async with self._sessions() as session, session.begin():
            row = await session.scalar(select(StaffToken).where(StaffToken.token_hash == token_hash(token)))
            if row is None or row.revoked_at is not None or as_utc(row.expires_at) <= now:
                return None
            account = await session.get(StaffAccount, row.account_id)
            if account is None or not account.active:
                return None
            last = as_utc(row.last_used_at)
            if last is None or now - last >= LAST_USED_EVERY or row.last_used_ip != client_ip:
                row.last_used_at, row.last_used_ip = now, client_ip[:64]
            scopes = row.scopes.split(",")
            return actor_for(account, via="token", scopes=scopes, token_id=row.id)
