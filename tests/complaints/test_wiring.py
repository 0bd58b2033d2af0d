"""The migration matches the models (and downgrades), and ``bot.domains.complaints.app.setup`` wires the
staff API, Open311 and the periodic sweep into an application."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.core.config import ROOT
from bot.core.db import Base, create_engine, session_factory
from bot.domains.complaints import app as complaints_app
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.complaints.models import COMPLAINT_TABLES
from bot.domains.complaints.service import ComplaintService
from bot.domains.staff import Staff
from tests.support.complaints import Clock, local, new
from tests.support.staff import bearer, person, staff_app

NAMES = {t.name for t in COMPLAINT_TABLES}


async def test_migration_matches_models_and_downgrades(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return [
                    d
                    for d in compare_metadata(ctx, Base.metadata)
                    if any(name in repr(d) for name in NAMES)
                    and not (isinstance(d, tuple) and d[0] == "remove_table")
                ]

            assert await conn.run_sync(diff) == []

        def run(action: str, revision: str):
            def go(sync_conn) -> None:
                cfg = Config(str(ROOT / "alembic.ini"))
                cfg.set_main_option("script_location", str(ROOT / "migrations"))
                cfg.attributes["url"] = database_url
                cfg.attributes["connection"] = sync_conn
                getattr(command, action)(cfg, revision)

            return go

        async with engine.begin() as conn:
            await conn.run_sync(run("downgrade", "0004"))
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert not tables & NAMES
        async with engine.begin() as conn:
            await conn.run_sync(run("upgrade", "0005"))
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert NAMES <= tables
    finally:
        await engine.dispose()


async def test_setup_wires_routes_and_sweeper(aiohttp_client, sqlite_url: str, redis_client) -> None:
    engine = create_engine(sqlite_url)
    clock = Clock(local(2026, 3, 2))
    service = ComplaintService(session_factory(engine), settings=ComplaintSettings(), clock=clock)
    staff = Staff.build(session_factory(engine), redis_client)
    office = bearer(await person(staff, "office", ["complaint_supervisor"], "行政服务中心办公室"))
    integration = await person(staff, "hotline", ["integration"])
    try:
        number = (await service.create(new(), idempotency_key="late")).complaint.number
        clock.now = local(2026, 3, 10)  # well past the acceptance deadline
        app = staff_app(staff)
        complaints_app.setup(app, service, open311_keys=staff.tokens.authenticate, sweep_interval=0.05)
        client = await aiohttp_client(app)
        for _ in range(100):
            row = await service.get(number)
            if row is not None and row.overdue:
                break
            await asyncio.sleep(0.05)
        assert row is not None and row.overdue and row.supervision_level >= 1
        resp = await client.get(f"/api/complaints/{number}", headers=office)
        assert resp.status == 200 and (await resp.json())["overdue"] is True
        assert (await client.get(f"/api/complaints/{number}")).status == 401
        resp = await client.get(f"/open311/v2/requests/{number}.json")  # public: no staff token
        assert resp.status == 200 and (await resp.json())[0]["status_notes"].endswith("（已督办）")
        resp = await client.post(
            "/open311/v2/requests.json", data={"api_key": integration, "service_code": "x"}
        )
        assert resp.status == 404  # the integration's token is accepted; the code is unknown
        await client.close()
        assert app[complaints_app._SWEEPER].done()
    finally:
        await engine.dispose()


async def test_sweeper_survives_errors_and_stops(sqlite_url: str) -> None:
    third = asyncio.Event()

    class Flaky(ComplaintService):
        calls = 0

        async def sweep(self, now=None):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("database restarting")
            if Flaky.calls == 3:
                third.set()
            return await super().sweep(now)

    engine = create_engine(sqlite_url)
    try:
        stop = asyncio.Event()
        task = asyncio.create_task(complaints_app.run_sweeper(Flaky(session_factory(engine)), 0.01, stop))
        await asyncio.wait_for(third.wait(), 2)  # the first failure did not stop the loop
        stop.set()
        await asyncio.wait_for(task, 1)
    finally:
        await engine.dispose()
