"""The staff web console at ``/console/``: server-rendered pages in Chinese (Jinja2, small htmx
enhancements, ECharts for charts), every asset served from ``static/`` with its license, every page behind
the staff middleware (sign-in, the page's permission, CSRF on every form) and reachable by keyboard."""

from __future__ import annotations

from aiohttp import web

from bot.gateway.web import (
    account_pages,
    api_pages,
    audit_pages,
    broadcast_pages,
    complaint_pages,
    jobs,
    kb_pages,
    lookup_pages,
    report_pages,
    session_pages,
    simulator_pages,
    urge_pages,
)
from bot.gateway.web.render import setup_rendering


def setup(app: web.Application, center_name: str) -> None:
    setup_rendering(app, center_name)
    session_pages.setup_routes(app)
    jobs.setup_routes(app)
    kb_pages.setup_routes(app)
    broadcast_pages.setup_routes(app)
    simulator_pages.setup_routes(app)
    account_pages.setup_routes(app)
    audit_pages.setup_routes(app)
    lookup_pages.setup_routes(app)
    complaint_pages.setup_routes(app)
    report_pages.setup_routes(app)
    urge_pages.setup_routes(app)
    api_pages.setup_routes(app)
