"""Shared helpers for the case-progress tests: the reference approval backend over real HTTP (in-process,
with fault injection), fast adapter settings, a settable clock and a service factory.

Test modules import the fixtures they use from here (pytest picks up imported fixtures)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.adapters.approval.config import ApprovalSettings
from bot.adapters.approval.http_backend import HttpApprovalBackend
from bot.adapters.approval.reference_backend import ReferenceBackend
from bot.core.config import Settings
from bot.core.db import session_factory
from bot.core.metrics import Metrics
from bot.core.office_hours import OfficeHours
from bot.domains.progress.config import ProgressSettings
from bot.domains.progress.service import ProgressService
from bot.domains.progress.workdays import WorkingDays

TZ = ZoneInfo("Asia/Shanghai")
CENTER_PHONE = "0797-3322110"
APPLICANT = "张小三"
APPLICANT_PHONE = "13812345678"
OTHER_PHONE = "13987654321"
ID_NUMBER = "360722199001011237"
ITEM_3D = "36072200-XK-009"  # 食品经营许可（新办）: 3 working days
ITEM_5D = "36072200-XK-012"  # 食品小作坊登记: 5 working days
ITEM_NOW = "36072200-XK-001"  # 个体工商户设立登记: 即办
WX_A = "wx:oAlice00000000000000000001"
WX_B = "wx:oBob0000000000000000000002"


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=TZ)


class Clock:
    """A settable clock for the service and the notifier."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now


def working_days() -> WorkingDays:
    settings = Settings()
    return WorkingDays(OfficeHours.parse(settings.office_hours_spec, settings.timezone))


def fast_settings(api_base: str, **overrides: Any) -> ApprovalSettings:
    values: dict[str, Any] = {
        "api_base": api_base,
        "timeout": 0.5,
        "budget": 1.3,
        "retries": 2,
        "retry_backoff": 0.01,
        "cache_ttl": 30.0,
        "breaker_failures": 3,
        "breaker_window": 30.0,
        "breaker_open": 0.6,
    }
    values.update(overrides)
    return dataclasses.replace(ApprovalSettings(), **values)


class RefHarness:
    """The reference backend app behind a real port, and a client for its API (as a clerk would use it)."""

    def __init__(self, server: TestServer, backend: ReferenceBackend, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.backend = backend
        self.http = http

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def create(
        self,
        item_code: str = ITEM_3D,
        *,
        name: str = APPLICANT,
        phone: str = APPLICANT_PHONE,
        id_number: str | None = ID_NUMBER,
        status: str = "受理",
        at: datetime | None = None,
    ) -> dict[str, Any]:
        applicant: dict[str, Any] = {"name": name, "phone": phone}
        if id_number:
            applicant["id_number"] = id_number
        body: dict[str, Any] = {"item_code": item_code, "applicant": applicant, "status": status}
        if at is not None:
            body["at"] = at.isoformat()
        async with self.http.post(self.url + "/api/v1/cases", json=body) as resp:
            assert resp.status == 201, await resp.text()
            return await resp.json()

    async def change(self, ticket: str, status: str, *, at: datetime | None = None, **fields: Any) -> dict:
        body: dict[str, Any] = {"status": status, **fields}
        if at is not None:
            body["at"] = at.isoformat()
        async with self.http.post(f"{self.url}/api/v1/cases/{ticket}/status", json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def fault(self, **body: Any) -> None:
        async with self.http.post(self.url + "/_reference/faults", json=body) as resp:
            assert resp.status == 200

    async def stats(self) -> dict[str, int]:
        async with self.http.get(self.url + "/_reference/stats") as resp:
            return await resp.json()

    async def case_calls(self) -> int:
        return (await self.stats()).get("GET /api/v1/cases/{ticket_no}", 0)


class Env:
    """A progress service over the reference backend, a migrated database and Redis."""

    def __init__(
        self,
        reference: RefHarness,
        adapter: HttpApprovalBackend,
        engine: AsyncEngine,
        redis: aioredis.Redis,
        clock: Clock,
    ) -> None:
        self.reference = reference
        self.adapter = adapter
        self.engine = engine
        self.sessions = session_factory(engine)
        self.redis = redis
        self.clock = clock
        self.service = make_service(adapter, self.sessions, redis, clock)

    def configure(self, **settings: Any) -> ProgressService:
        self.service = make_service(self.adapter, self.sessions, self.redis, self.clock, **settings)
        return self.service

    async def say(self, sender: str, text: str, channel: str = "wechat", **metadata: Any):
        if channel == "sms" and "phone" not in metadata:
            metadata["phone"] = sender.removeprefix("sms:")
        return await self.service.handle(sender, channel, text, metadata)

    async def audit(self) -> list[tuple[str, str | None, str, str]]:
        from sqlalchemy import select

        from bot.domains.progress.models import ProgressAudit

        async with self.sessions() as session:
            rows = await session.scalars(select(ProgressAudit).order_by(ProgressAudit.id))
            return [(r.sender_id, r.ticket_no, r.action, r.result) for r in rows]


def make_service(
    backend: HttpApprovalBackend,
    sessions: async_sessionmaker[AsyncSession],
    redis: aioredis.Redis,
    clock: Clock,
    **settings: Any,
) -> ProgressService:
    return ProgressService(
        backend,
        sessions,
        redis,
        working_days=working_days(),
        center_phone=CENTER_PHONE,
        settings=dataclasses.replace(ProgressSettings(), **settings),
        metrics=Metrics(redis),
        clock=clock,
    )
