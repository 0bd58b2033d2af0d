"""Settings from the environment and the wiring helpers the lead uses (action server, gateway workers)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.adapters.approval.config import ApprovalSettings
from bot.adapters.approval.mapping import DEFAULT_MAPPING_FILE
from bot.core.config import Settings
from bot.core.db import create_engine, session_factory
from bot.core.env import Secret
from bot.domains.progress.config import DEFAULT_TEMPLATE_FIELDS, ProgressSettings
from bot.domains.progress.factory import build_progress_notifier, build_progress_service
from bot.domains.progress.service import LookupResult
from tests.support.progress import APPLICANT_PHONE, RefHarness


def test_approval_settings_defaults_and_env(tmp_path: Path) -> None:
    d = ApprovalSettings.from_env({})
    assert (d.api_base, d.timeout, d.retries, d.budget, d.cache_ttl) == (
        "http://127.0.0.1:8183",
        1.5,
        2,
        2.5,
        30.0,
    )
    assert d.mapping_file == DEFAULT_MAPPING_FILE and d.reference_db.name == "approval.db"
    env = {
        "APPROVAL_API_BASE": "https://spxt.example.gov.cn/api/",
        "APPROVAL_API_TOKEN": "t0k",
        "APPROVAL_MAPPING_FILE": str(tmp_path / "m.json"),
        "APPROVAL_TIMEOUT": "0.8",
        "APPROVAL_RETRIES": "-3",
        "APPROVAL_BUDGET": "2",
        "APPROVAL_CACHE_TTL": "10",
        "APPROVAL_BREAKER_FAILURES": "0",
        "APPROVAL_BREAKER_WINDOW": "60",
        "APPROVAL_BREAKER_OPEN": "45",
        "APPROVAL_REFERENCE_PORT": "9183",
        "APPROVAL_REFERENCE_DB": str(tmp_path / "a.db"),
    }
    s = ApprovalSettings.from_env(env)
    assert s.api_base == "https://spxt.example.gov.cn/api" and s.api_token == Secret("t0k")
    assert s.mapping_file == tmp_path / "m.json" and s.timeout == 0.8 and s.budget == 2.0
    assert s.retries == 0 and s.breaker_failures == 1  # clamped
    assert (s.cache_ttl, s.breaker_window, s.breaker_open) == (10.0, 60.0, 45.0)
    assert s.reference_port == 9183 and s.reference_db == tmp_path / "a.db"


def test_progress_settings_from_env() -> None:
    d = ProgressSettings.from_env({})
    assert (d.max_failures, d.failure_window, d.cooldown, d.ticket_max_failures) == (5, 3600.0, 3600.0, 5)
    assert d.template_id == "" and d.template_fields == DEFAULT_TEMPLATE_FIELDS
    s = ProgressSettings.from_env(
        {
            "PROGRESS_MAX_FAILURES": "3",
            "PROGRESS_COOLDOWN": "900",
            "PROGRESS_TEMPLATE_ID": "tmpl-1",
            "PROGRESS_TEMPLATE_FIELDS": json.dumps({"item": "thing7", "remark": "thing9"}),
            "PROGRESS_POLL_INTERVAL": "5",
        }
    )
    assert (s.max_failures, s.cooldown, s.template_id, s.poll_interval) == (3, 900.0, "tmpl-1", 5.0)
    assert s.template_fields["item"] == "thing7" and s.template_fields["status"] == "phrase3"
    with pytest.raises(ValueError, match="unknown roles"):
        ProgressSettings.from_env({"PROGRESS_TEMPLATE_FIELDS": json.dumps({"name": "thing1"})})


async def test_factories_build_working_parts(
    reference: RefHarness, redis_client: aioredis.Redis, sqlite_url: str
) -> None:
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    env = {"APPROVAL_API_BASE": reference.url, "PROGRESS_TEMPLATE_ID": "tmpl-9"}
    service = build_progress_service(Settings(), redis_client, sessions, env=env)
    notifier = build_progress_notifier(Settings(), redis_client, sessions, wechat=None, sms=None, env=env)
    try:
        ticket = (await reference.create())["ticket_no"]
        outcome = await service.handle(f"sms:+86{APPLICANT_PHONE}", "sms", ticket, {})
        assert outcome.result is LookupResult.SHOWN
        assert notifier.settings.template_id == "tmpl-9"
        report = await notifier.run_once()
        assert report.error is None and report.changes == 1
        assert dataclasses.asdict(report)["sent"] == 0  # 受理 was just shown in the lookup
    finally:
        await service.close()
        await notifier.close()
        await engine.dispose()
    assert service.backend._session is None and notifier.backend._session is None  # type: ignore[attr-defined]
