"""schemathesis fuzzes every operation of the OpenAPI description (bot/gateway/openapi/) against the real
gateway on 127.0.0.1, signed in as a person holding every role (a personal API token, which is also the
Open311 integration key): no answer may be a server error, and every answer must be one the description
documents — its status, its media type, its body's schema (errors in their documented shapes).

The budget is bounded and reproducible: a fixed seed, derandomized generation, ``MAX_EXAMPLES`` generated
cases per operation on top of the examples and coverage phases.  The examples of the description's
identifiers name objects the gateway holds, so cases reach an existing complaint, campaign and account.
The webhooks are fuzzed too, though without WeChat's or Twilio's signature a case gets no further than the
signature check.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from schemathesis import Case, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import update

from bot.domains.complaints.intake import NewComplaint
from bot.domains.complaints.models import Complaint
from bot.domains.staff.models import StaffAccount, StaffToken
from bot.domains.staff.roles import ROLES
from bot.gateway import openapi
from sms_gateway.broadcast.engine import HEARTBEAT_PREFIX
from sms_gateway.broadcast.models import BroadcastCampaign
from tests.support.live_gateway import LiveGateway
from tests.support.services import TEST_POSTGRES_URL, TEST_REDIS_URL, reset_postgres
from tests.support.staff import PASSWORD

MAX_EXAMPLES = 20
SEED = 16  # the number: any fixed value makes a run repeatable
FUZZER = "fuzzer"

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",  # valid and invalid data
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            "with-security-parameters": False,  # the test signs every case in as the fuzzer
        },
        "suppress-health-check": ["all"],
    }
)
schema = schemathesis.openapi.from_dict(openapi.description(), config=CONFIG)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def error_shape(response: Response, case: Case) -> None:
    """Every error (>= 400) in the shape of its family of routes (see bot/gateway/openapi/)."""
    if response.status_code < 400:
        return
    path = case.operation.path
    media = response.headers.get("content-type", [""])[0].split(";")[0]
    if path.startswith("/api/"):
        assert media == "application/json", f"{path}: an error as {media}"
        body = json.loads(response.content)
        assert isinstance(body, dict) and isinstance(body.get("error"), str), body
        assert isinstance(body.get("message"), str) and body["message"], body
    elif path.startswith("/open311/"):
        if media == "text/xml":
            assert b"<errors><error><code>" in response.content, response.content[:200]
            return
        assert media == "application/json", f"{path}: an error as {media}"
        body = json.loads(response.content)
        assert isinstance(body, list) and body, body
        assert all(isinstance(e["code"], int) and isinstance(e["description"], str) for e in body), body
    elif path.startswith(("/wechat", "/sms/", "/healthz", "/metrics")):  # plain text (aiohttp's 405 too)
        assert media == "text/plain", f"{path}: an error as {media}"
    elif path.startswith("/console/"):
        assert media == "text/html", f"{path}: an error as {media}"
    else:
        raise AssertionError(f"{path}: an error outside every documented family")


class Fuzzed:
    """The gateway under fuzzing, its fuzzer's credentials, and what was answered."""

    def __init__(self, gateway: LiveGateway) -> None:
        self.gateway = gateway
        self.token = ""
        self.token_id = 0
        self.account_id = 0
        self.statuses: dict[str, dict[int, int]] = {}

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Api-Key": self.token}

    async def prepare(self) -> None:
        services = self.gateway.services
        staff = services.staff
        assert staff is not None and services.complaints is not None and services.broadcasts is not None
        # Account and token 1 are a colleague's; the description's example id (2) is the fuzzer's own
        # account and token, on purpose: the ones a careless client would damage (heal() mends them).
        other = await staff.accounts.create("colleague", "同事", PASSWORD, ["viewer"], "县医保局", False)
        await staff.tokens.create(other, "colleague", ["kb.read"], 30, other.id)
        me = await staff.accounts.create(FUZZER, "模糊测试", PASSWORD, list(ROLES), "县市场监督管理局", False)
        scopes = sorted({p for _, permissions in ROLES.values() for p in permissions})
        self.token, row = await staff.tokens.create(me, "fuzzing", scopes, 30, me.id)
        self.account_id, self.token_id = me.id, row.id
        assert me.id == row.id == openapi.ID["example"]
        # the complaint and the campaign the description's examples name
        created = await services.complaints.create(
            NewComplaint(channel="window", sender_id="staff:seed", description="窗口工作人员态度生硬"),
            idempotency_key="openapi-fuzz",
        )
        campaign = await services.broadcasts.create(
            name="示例", template="您好：{姓名}，测试通知。", created_by="x"
        )
        async with services.sessions.begin() as session:
            await session.execute(
                update(Complaint)
                .where(Complaint.number == created.complaint.number)
                .values(number=openapi.COMPLAINT_EXAMPLE)
            )
            await session.execute(
                update(BroadcastCampaign)
                .where(BroadcastCampaign.id == campaign["id"])
                .values(id=openapi.CAMPAIGN_EXAMPLE)
            )
        # /healthz counts the broadcast workers' heartbeats; none runs here, so one stands in
        await services.redis.set(HEARTBEAT_PREFIX + "openapi-fuzz", "1", ex=3600)

    async def heal(self) -> None:
        """Undo what a case may have done to the fuzzer itself (its roles, its password, its token), so the
        next case is still signed in with every permission."""
        services = self.gateway.services
        async with services.sessions.begin() as session:
            await session.execute(
                update(StaffAccount)
                .where(StaffAccount.id == self.account_id)
                .values(
                    roles=",".join(sorted(ROLES)), active=True, must_change_password=False, locked_until=None
                )
            )
            await session.execute(
                update(StaffToken)
                .where(StaffToken.id == self.token_id)
                .values(revoked_at=None, expires_at=datetime.now(UTC) + timedelta(days=30))
            )


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """The gateway on PostgreSQL when TEST_POSTGRES_URL is set (whose limits SQLite does not enforce:
    column lengths, 32-bit integers), else on SQLite."""
    if TEST_POSTGRES_URL:
        asyncio.run(reset_postgres(TEST_POSTGRES_URL))
        database_url = TEST_POSTGRES_URL
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('openapi-fuzz') / 'gateway.db'}"
    redis_url = TEST_REDIS_URL.rsplit("/", 1)[0] + "/13"  # a database of its own on the test Redis server
    gateway = LiveGateway(database_url, redis_url).start()
    state = Fuzzed(gateway)
    try:
        gateway.run(state.prepare())
        yield state
    finally:
        gateway.call(gateway.services.redis.flushdb)
        gateway.stop()


@schema.parametrize()
def test_every_operation(case: Case, fuzzed: Fuzzed) -> None:
    fuzzed.gateway.run(fuzzed.heal())
    response = case.call(base_url=fuzzed.gateway.url, headers=fuzzed.headers, timeout=30)
    seen = fuzzed.statuses.setdefault(case.operation.label, {})
    seen[response.status_code] = seen.get(response.status_code, 0) + 1
    case.validate_response(response, checks=CHECKS, additional_checks=[_error_shape_check])


def _error_shape_check(ctx: Any, response: Response, case: Case) -> bool | None:
    error_shape(response, case)
    return None


def test_the_fuzzer_stayed_signed_in(fuzzed: Fuzzed) -> None:
    """Runs after the fuzzing: had the harness lost its token, every staff operation would have answered a
    documented 401 and passed.  None did, and each reached past the permission check at least once."""
    if not fuzzed.statuses:
        pytest.skip("the fuzzing did not run (deselected)")
    spec = openapi.description()
    for method, path in sorted(openapi.operations(spec)):
        op = spec["paths"][path][method.lower()]
        seen = fuzzed.statuses.get(f"{method} {path}")
        if "x-permission" not in op or seen is None:
            continue
        assert 401 not in seen, (method, path, seen)
        assert set(seen) - {403}, (method, path, seen)
