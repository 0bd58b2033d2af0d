"""Fixtures for tests/actions/: the action server over HTTP on a real knowledge base (SQLite)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.config import Settings
from bot.core.db import create_engine, session_factory
from bot.core.office_hours import OfficeHours
from bot.domains.complaints.service import ComplaintService
from bot.gateway.actions.context import ActionContext
from bot.gateway.actions.server import build_app
from knowledge_base.cli import ensure_sample_loaded
from knowledge_base.service import KnowledgeBase

OPEN = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Beijing


@pytest.fixture
async def actions(aiohttp_client, sqlite_url):
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    assert await ensure_sample_loaded(sessions)
    clock = {"now": OPEN}
    ctx = ActionContext(
        settings=dataclasses.replace(Settings(), database_url=sqlite_url),
        engine=engine,
        sessions=sessions,
        kb=KnowledgeBase(sessions),
        office_hours=OfficeHours.parse("mon-fri 08:30-12:00,14:30-17:30"),
        clock=lambda: clock["now"],
        complaints=ComplaintService(sessions),
    )
    client = await aiohttp_client(build_app(ctx))

    async def run(payload: dict[str, Any]) -> tuple[list[str], dict[str, Any], list[dict]]:
        resp = await client.post("/webhook", json=payload)
        assert resp.status == 200
        body = await resp.json()
        texts = [r["text"] for r in body["responses"] if r.get("text")]
        slots = {e["name"]: e["value"] for e in body["events"] if e["event"] == "slot"}
        run.events = body["events"]  # type: ignore[attr-defined]
        return texts, slots, body["responses"]

    run.clock = clock  # type: ignore[attr-defined]
    run.sessions = sessions  # type: ignore[attr-defined]
    run.client = client  # type: ignore[attr-defined]
    return run
