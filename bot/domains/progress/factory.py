"""Wiring helpers: build the progress service (action server) and the notifier (gateway workers)."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.approval.config import ApprovalSettings
from bot.adapters.approval.http_backend import HttpApprovalBackend
from bot.core.config import Settings
from bot.core.metrics import Metrics
from bot.core.office_hours import OfficeHours
from bot.domains.progress.config import ProgressSettings
from bot.domains.progress.items import KnowledgeBaseItems
from bot.domains.progress.notifier import ProgressNotifier, SmsSender, TemplateSender
from bot.domains.progress.register import CaseRegister
from bot.domains.progress.replies import Replies, ReplyContext
from bot.domains.progress.service import ProgressService
from bot.domains.progress.workdays import WorkingDays
from knowledge_base.service import KnowledgeBase


def working_days_for(settings: Settings) -> WorkingDays:
    return WorkingDays(
        OfficeHours.parse(settings.office_hours_spec, settings.timezone, settings.calendar_file)
    )


def build_approval_backend(
    redis: aioredis.Redis,
    *,
    env: Mapping[str, str] | None = None,
    metrics: Metrics | None = None,
    http: aiohttp.ClientSession | None = None,
) -> HttpApprovalBackend:
    return HttpApprovalBackend(ApprovalSettings.from_env(env), redis, metrics=metrics, session=http)


def build_progress_service(
    settings: Settings,
    redis: aioredis.Redis,
    sessions: async_sessionmaker[AsyncSession],
    *,
    kb: KnowledgeBase | None = None,
    metrics: Metrics | None = None,
    http: aiohttp.ClientSession | None = None,
    env: Mapping[str, str] | None = None,
) -> ProgressService:
    """For the action server (``ActionContext.progress``).  ``http=None``: the backend opens its own
    session on first use; close it with ``service.backend.close()``."""
    return ProgressService(
        build_approval_backend(redis, env=env, metrics=metrics, http=http),
        sessions,
        redis,
        working_days=working_days_for(settings),
        center_phone=settings.center_phone,
        settings=ProgressSettings.from_env(env),
        items=KnowledgeBaseItems(kb) if kb is not None else None,
        metrics=metrics,
    )


def build_progress_notifier(
    settings: Settings,
    redis: aioredis.Redis,
    sessions: async_sessionmaker[AsyncSession],
    *,
    wechat: TemplateSender | None,
    sms: SmsSender | None,
    kb: KnowledgeBase | None = None,
    metrics: Metrics | None = None,
    http: aiohttp.ClientSession | None = None,
    env: Mapping[str, str] | None = None,
) -> ProgressNotifier:
    """For each gateway worker: ``asyncio.create_task(notifier.run_forever(stop_event))``."""
    progress = ProgressSettings.from_env(env)
    backend = build_approval_backend(redis, env=env, metrics=metrics, http=http)
    return ProgressNotifier(
        backend,
        sessions,
        Replies(ReplyContext(settings.center_phone, working_days_for(settings))),
        wechat=wechat,
        sms=sms,
        settings=progress,
        items=KnowledgeBaseItems(kb) if kb is not None else None,
        metrics=metrics,
        register=CaseRegister(backend, sessions, batch=progress.notify_batch),
    )
