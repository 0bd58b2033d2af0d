"""Helpers for the staff identity tests: a settable clock and strong passwords."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiohttp import web

from bot.domains.staff import Staff
from bot.domains.staff.roles import permissions_of
from bot.gateway.staff import admin as staff_admin
from bot.gateway.staff import views as staff_views
from bot.gateway.staff.auth import STAFF, staff_auth_middleware

PASSWORD = "Lantern-oxbow-7-quietly"
OTHER_PASSWORD = "Copper-meadow-4-swiftly"


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


# ---------------------------------------------------------------------------------------------- HTTP

ADMIN = ("admin",)
HANDLER = ("complaint_handler",)


async def person(
    staff: Staff,
    username: str,
    roles: Sequence[str],
    department: str = "",
    display_name: str | None = None,
) -> str:
    """An account with ``roles`` (password already changed; reused when it exists) and a new personal API
    token with all its permissions; the token."""
    account = await staff.accounts.by_username(username) or await staff.accounts.create(
        username, display_name or username, PASSWORD, roles, department, must_change_password=False
    )
    token, _ = await staff.tokens.create(account, "test", sorted(permissions_of(roles)), 30, account.id)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff_app(staff: Staff, public_base_url: str = "http://127.0.0.1:8080") -> web.Application:
    """An application with the gateway's staff middleware and identity routes, for domain API tests."""
    app = web.Application(middlewares=[staff_auth_middleware(public_base_url)])
    app[STAFF] = staff
    staff_views.setup_routes(app, public_base_url)
    staff_admin.setup_routes(app)
    return app
