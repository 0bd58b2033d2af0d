"""Who is acting: the authenticated staff account behind a staff action.

Built only by authentication (a browser session, a personal API token, or the CLI's token), never from a
header or a body field, and passed to every domain service that records who did something.  Domains
store ``name`` (readable in histories and exports) and ``account_id`` (what rules such as "an approver
may not approve their own campaign" compare).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Actor:
    account_id: int
    username: str  # canonical: NFKC, lower case
    display_name: str
    department: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)
    permissions: frozenset[str] = field(default_factory=frozenset)
    via: str = "session"  # session | token | cli
    token_id: int | None = None

    @property
    def name(self) -> str:
        """How histories show the person: ``张三(zhangsan)``."""
        return f"{self.display_name}({self.username})" if self.display_name else self.username

    def can(self, permission: str) -> bool:
        return permission in self.permissions


# Where an HTTP request carries its authenticated actor (set by the gateway's staff middleware).
ACTOR = web.RequestKey("actor", Actor)
