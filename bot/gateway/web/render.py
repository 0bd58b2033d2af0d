"""Server-rendered pages: Jinja2 templates (autoescaped) with what every page needs — the signed-in person,
the navigation they may see, their CSRF token — and the static files, all served from this package."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.core.actor import ACTOR, Actor
from bot.domains.progress.urges import UrgeBook
from bot.gateway.staff.auth import SESSION

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
PREFIX = "/console"


@dataclass(frozen=True)
class NavItem:
    title: str
    path: str
    permission: str  # "self": everyone signed in


# The console's sections, in menu order; each shows only to those holding its permission.
NAV: tuple[NavItem, ...] = (
    NavItem("总览", f"{PREFIX}/dashboard", "reports.read"),
    NavItem("知识库", f"{PREFIX}/kb", "kb.read"),
    NavItem("投诉工单", f"{PREFIX}/complaints", "complaints.read"),
    NavItem("群发通知", f"{PREFIX}/broadcasts", "broadcast.read"),
    NavItem("电子监察", f"{PREFIX}/supervision", "reports.read"),
    NavItem("督办单", f"{PREFIX}/urges", "complaints.read"),
    NavItem("办件查询审计", f"{PREFIX}/lookups", "progress.audit"),
    NavItem("微信模拟器", f"{PREFIX}/simulator", "chat.test"),
    NavItem("账号与权限", f"{PREFIX}/accounts", "accounts.manage"),
    NavItem("审计日志", f"{PREFIX}/audit", "audit.read"),
)
SITE = web.AppKey("console_site", dict)


def visible_nav(actor: Actor | None, app: web.Application) -> list[NavItem]:
    """The sections this person may open (and that this gateway serves)."""
    if actor is None:
        return []
    served = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    return [n for n in NAV if (n.permission == "self" or actor.can(n.permission)) and n.path in served]


async def _open_urges(request: web.Request, actor: Actor | None) -> int:
    """How many 督办单 wait for this person's department (shown on every page until answered)."""
    if actor is None or not actor.department or not actor.can("complaints.read"):
        return 0
    if actor.can("complaints.supervise"):
        return 0
    from bot.gateway.app import SERVICES  # the app module imports this package: look it up when called

    services = request.app.get(SERVICES)
    return 0 if services is None else await UrgeBook(services.sessions).open_count(actor.department)


async def context(request: web.Request) -> dict[str, Any]:
    actor = request.get(ACTOR)
    session = request.get(SESSION)
    return {
        "open_urges": await _open_urges(request, actor),
        "me": actor,
        "nav": visible_nav(actor, request.app),
        "csrf_token": session.csrf if session is not None else "",
        "path": request.path,
        "site": request.app[SITE],
    }


def setup_rendering(app: web.Application, center_name: str) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        context_processors=[context],
        undefined=jinja2.StrictUndefined,
    )
    app[SITE] = {"center_name": center_name, "prefix": PREFIX}
    static = app.router.add_static(f"{PREFIX}/static/", STATIC, name="console_static", append_version=True)
    env.globals["static_url"] = lambda filename: str(static.url_for(filename=filename))


def page(request: web.Request, template: str, values: Mapping[str, Any], status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, dict(values), status=status)
