"""Staff identity: personal accounts with roles, browser sessions, personal API tokens and the audit log.

:class:`Staff` bundles the parts for the gateway; ``DEMO_ACCOUNTS`` are created in demo mode only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.domains.staff.accounts import AccountError, Accounts
from bot.domains.staff.audit import AuditLog
from bot.domains.staff.config import StaffSettings
from bot.domains.staff.sessions import SessionStore
from bot.domains.staff.tokens import Tokens

# (username, display name, department, roles, password) — public, like every value in .env.example:
# created only in demo mode, and the gateway refuses demo mode on a non-loopback address.
DEMO_PASSWORD = "Demo-govbot-2026!"
DEMO_ACCOUNTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("admin", "演示管理员", "行政服务中心办公室", ("admin",)),
    ("kb", "演示知识库维护员", "行政服务中心办公室", ("kb_editor",)),
    ("handler", "演示投诉处理员", "县市场监督管理局", ("complaint_handler",)),
    ("supervisor", "演示督办员", "行政服务中心办公室", ("complaint_supervisor",)),
    ("operator", "演示群发操作员", "行政服务中心办公室", ("broadcast_operator",)),
    ("approver", "演示审核员", "行政服务中心办公室", ("approver",)),
    ("viewer", "演示只读用户", "行政服务中心办公室", ("viewer",)),
)


@dataclass
class Staff:
    accounts: Accounts
    tokens: Tokens
    sessions: SessionStore
    audit: AuditLog
    settings: StaffSettings

    @classmethod
    def build(
        cls,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        settings: StaffSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> Staff:
        s = settings or StaffSettings()
        return cls(
            Accounts(sessions, redis, s, clock),
            Tokens(sessions, s, clock),
            SessionStore(redis, s, lambda: clock().timestamp()),
            AuditLog(sessions, clock),
            s,
        )

    async def ensure_demo_accounts(self) -> list[str]:
        """Create the demo accounts that do not exist yet (demo mode only); their usernames."""
        created = []
        for username, name, department, roles in DEMO_ACCOUNTS:
            if await self.accounts.by_username(username) is not None:
                continue
            try:
                await self.accounts.create(
                    username, name, DEMO_PASSWORD, roles, department, must_change_password=False
                )
            except AccountError as exc:
                if exc.status != 409:  # another worker created it at the same moment: fine
                    raise
                continue
            created.append(username)
        return created
