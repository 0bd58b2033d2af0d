"""One call to put complaints into an aiohttp application: the staff API, Open311 and the periodic sweep.

    service = ComplaintService(sessions, settings=ComplaintSettings.from_env(), sender=reply_sender)
    complaints_app.setup(app, service, open311_keys=staff.tokens.authenticate, sweep_interval=300)

Every gateway worker may run the sweep: escalations and notice deliveries are claimed with conditional
UPDATEs, so several sweepers never escalate or send twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from bot.core.ratelimit import WindowLimit
from bot.domains.complaints import open311, staff_api
from bot.domains.complaints.service import ComplaintService

log = logging.getLogger(__name__)

COMPLAINTS = web.AppKey("complaints", ComplaintService)
_SWEEPER = web.AppKey("complaints_sweeper", asyncio.Task)


async def run_sweeper(service: ComplaintService, interval: float, stop: asyncio.Event | None = None) -> None:
    """Sweep now and then every ``interval`` seconds until ``stop`` is set (or the task is cancelled)."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            report = await service.sweep()
            if report.escalated or report.delivered:
                log.info(
                    "complaint sweep: %d escalated, %d notices sent", len(report.escalated), report.delivered
                )
        except Exception:
            log.exception("complaint sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def setup(
    app: web.Application,
    service: ComplaintService,
    *,
    open311_keys: open311.KeyCheck,
    sweep_interval: float | None = 300,
    open311_limit: WindowLimit | None = None,
) -> None:
    """Register ``/api/complaints…`` and ``/open311/v2/…`` (``open311_keys`` verifies Open311 API keys) and,
    unless ``sweep_interval`` is falsy, start the periodic sweep with the application."""
    app[COMPLAINTS] = service
    staff_api.setup_routes(app, COMPLAINTS)
    open311.setup_routes(app, COMPLAINTS, open311_keys, open311_limit)
    if not sweep_interval:
        return
    interval = float(sweep_interval)

    async def start(app: web.Application) -> None:
        app[_SWEEPER] = asyncio.create_task(run_sweeper(service, interval))

    async def stop(app: web.Application) -> None:
        task = app.get(_SWEEPER)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
