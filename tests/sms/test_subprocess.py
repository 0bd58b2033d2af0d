"""The Twilio fake as its own process (``python -m sms_gateway.twilio.fake``), as ``make run`` and the
benchmarks use it: sending, status callbacks, an inbound SMS answered with TwiML, an ambiguous 5xx and a
crash recovery, all read back through the fake's control endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from bot.core.processes import module_process
from sms_gateway.models import LedgerStatus, Purpose
from tests.support.sms import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, PHONE, SmsHarness, start_harness

SIG = "【县行政服务中心】"


@pytest.fixture
async def fake_process() -> AsyncIterator[str]:
    async with module_process(
        "sms_gateway.twilio.fake", "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN,
        "--from-number", FROM_NUMBER, "--callback-delay", "0.05", port=unused_port(), name="the fake",
    ) as url:  # fmt: skip
        yield url


@pytest.fixture
async def sms(redis_client, sqlite_url, fake_process):
    harness = await start_harness(redis_client, sqlite_url, api_base=fake_process)
    async with aiohttp.ClientSession(base_url=fake_process) as control:
        await _post(control, "/_fake/config", {"inbound_url": harness.local_url("/sms/twilio")})
        yield harness, control
    await harness.close()


async def _post(control: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> Any:
    async with control.post(path, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _messages(control: aiohttp.ClientSession, **query: str) -> list[dict[str, Any]]:
    async with control.get("/_fake/messages", params=query) as resp:
        return [m for m in await resp.json() if m["direction"] != "inbound"]


async def _settled(harness: SmsHarness, status: str) -> bool:
    async def check() -> bool:
        entries = await harness.ledger()
        return bool(entries) and all(e.status == status for e in entries)

    return await harness.wait_for(check, 5.0)


async def test_send_and_callbacks_through_the_fake_process(sms) -> None:
    harness, control = sms
    (entry,) = await harness.outbox.send(PHONE, "您的办件已办结。", purpose=Purpose.NOTIFICATION)
    assert entry.status == LedgerStatus.ACCEPTED
    assert await _settled(harness, LedgerStatus.DELIVERED)
    (message,) = await _messages(control, to=PHONE)
    assert message["body"] == f"{SIG}您的办件已办结。" and message["status"] == "delivered"
    assert message["sid"] == entry.provider_sid and message["attempt"] == 1
    async with control.get("/_fake/callbacks") as resp:
        callbacks = await resp.json()
    assert [c["params"]["MessageStatus"] for c in callbacks] == ["sent", "delivered"]
    assert all(c["response_status"] == 200 for c in callbacks)


async def test_inbound_sms_answered_with_twiml_by_the_fake_process(sms) -> None:
    harness, control = sms
    result = await _post(control, "/_fake/inbound", {"from": PHONE, "body": "帮助"})
    assert result["status"] == 200 and len(result["replies"]) == 1
    assert await _settled(harness, LedgerStatus.DELIVERED)
    (reply,) = await _messages(control, direction="outbound-reply")
    assert "0797-3322110" in reply["body"] and reply["sid"] == result["replies"][0]
    # Twilio retrying the same webhook: same answer, no second turn or reply row
    again = await _post(
        control, "/_fake/inbound", {"from": PHONE, "body": "帮助", "message_sid": result["message_sid"]}
    )
    assert again["body"] == result["body"]
    assert len(await harness.ledger()) == 1


async def test_ambiguous_5xx_and_crash_recovery_against_the_fake_process(sms) -> None:
    harness, control = sms
    await _post(control, "/_fake/config", {"callback_delay": 30})
    await _post(control, "/_fake/fail", {"op": "create", "status": 500, "create": True})
    (entry,) = await harness.outbox.send(PHONE, "第一条")
    assert entry.status == LedgerStatus.UNKNOWN
    messages = harness.outbox.composer.whole(["第二条"])
    (pending,) = await harness.outbox.write(PHONE, messages, purpose=Purpose.NOTIFICATION)  # then "crash"
    harness.advance(60)
    await harness.outbox.run_due()
    await harness.outbox.run_due()
    bodies = sorted(m["body"] for m in await _messages(control, to=PHONE))
    assert bodies == [f"{SIG}第一条", f"{SIG}第二条"]  # each exactly once
    settled = {e.id: e.status for e in await harness.ledger()}
    assert settled == {entry.id: LedgerStatus.ACCEPTED, pending.id: LedgerStatus.ACCEPTED}
    async with control.get("/_fake/stats") as resp:
        stats = await resp.json()
    assert stats["create"] == 2 and stats["list"] == 1
