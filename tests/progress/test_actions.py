"""The rasa_sdk actions, run through rasa-sdk's own ActionExecutor as the action server runs them, and the
plain ``handle_progress_turn`` / ``progress_pending`` functions another action can route to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
from rasa_sdk.executor import ActionExecutor

from bot.adapters.approval import HttpApprovalBackend
from bot.core.config import Settings
from bot.core.db import create_engine, session_factory
from bot.domains.progress.service import ProgressService
from bot.gateway import messages
from bot.gateway.actions.progress import (
    PROGRESS_ACTIONS,
    ActionCheckProgress,
    handle_progress_turn,
    progress_pending,
)
from tests.support.progress import APPLICANT_PHONE, WX_A, Clock, RefHarness, fast_settings, make_service


@dataclass
class Ctx:
    settings: Settings
    progress: ProgressService | None


@pytest.fixture
async def ctx(reference: RefHarness, redis_client: aioredis.Redis, sqlite_url: str) -> AsyncIterator[Ctx]:
    from datetime import UTC, datetime

    engine = create_engine(sqlite_url)
    backend = HttpApprovalBackend(fast_settings(reference.url), redis_client)
    service = make_service(backend, session_factory(engine), redis_client, Clock(datetime.now(UTC)))
    yield Ctx(Settings(), service)
    await backend.close()
    await engine.dispose()


def executor_for(ctx: Ctx) -> ActionExecutor:
    executor = ActionExecutor()
    for cls in PROGRESS_ACTIONS:
        executor.register_action(cls(ctx))
    return executor


def call(
    action: str,
    text: str,
    *,
    sender: str = WX_A,
    channel: str = "wechat",
    slots: dict[str, Any] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"channel": channel}
    if channel == "wechat":
        metadata["openid"] = sender.removeprefix("wx:")
    else:
        metadata["phone"] = sender.removeprefix("sms:")
    return {
        "next_action": action,
        "sender_id": sender,
        "domain": {},
        "tracker": {
            "sender_id": sender,
            "slots": {"ticket_no": None, "phone": None, **(slots or {})},
            "latest_message": {
                "text": text,
                "intent": {"name": "check_progress"},
                "entities": [],
                "metadata": metadata,
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": None,
        },
    }


async def run(
    executor: ActionExecutor, action_call: dict[str, Any]
) -> tuple[list[str], list[dict[str, Any]]]:
    result = await executor.run(action_call)
    assert result is not None
    dumped = result.model_dump()
    return [r["text"] for r in dumped["responses"]], dumped["events"]


async def test_check_progress_through_the_executor(ctx: Ctx, reference: RefHarness) -> None:
    ticket = (await reference.create())["ticket_no"]
    executor = executor_for(ctx)
    texts, events = await run(executor, call("action_check_progress", f"受理号{ticket}"))
    assert "后4位" in texts[0]
    assert {(e["event"], e["name"], e["value"]) for e in events} == {
        ("slot", "ticket_no", None),
        ("slot", "phone", None),
    }
    assert ctx.progress is not None and await progress_pending(ctx.progress, WX_A)
    texts, _ = await run(executor, call("action_check_progress", APPLICANT_PHONE[-4:]))
    assert "食品经营许可（新办）" in texts[0] and "张*三" in texts[0]
    assert not await progress_pending(ctx.progress, WX_A)


async def test_menu_payload_ticket_comes_from_the_slot(ctx: Ctx, reference: RefHarness) -> None:
    ticket = (await reference.create())["ticket_no"]
    executor = executor_for(ctx)
    sms = f"sms:+86{APPLICANT_PHONE}"
    texts, _ = await run(
        executor,
        call(
            "action_check_progress", "/check_progress", sender=sms, channel="sms", slots={"ticket_no": ticket}
        ),
    )
    assert "当前进度：已受理" in texts[0]


async def test_unsubscribe_and_resubscribe_actions(ctx: Ctx, reference: RefHarness) -> None:
    ticket = (await reference.create())["ticket_no"]
    executor = executor_for(ctx)
    await run(executor, call("action_check_progress", f"{ticket} {APPLICANT_PHONE[-4:]}"))
    texts, _ = await run(executor, call("action_progress_unsubscribe", "以后别发了"))
    assert texts == ["已为您关闭办件进度提醒。如需重新开启，请回复“开启提醒”。"]
    texts, _ = await run(executor, call("action_progress_resubscribe", "好的"))
    assert texts == ["已为您开启办件进度提醒，办理进度有变化时会通知您。"]


async def test_handle_progress_turn_is_a_plain_function(ctx: Ctx, reference: RefHarness) -> None:
    assert ctx.progress is not None
    ticket = (await reference.create())["ticket_no"]
    assert not await progress_pending(ctx.progress, WX_A)
    assert not await progress_pending(None, WX_A)
    reply = await handle_progress_turn(ctx.progress, WX_A, "wechat", ticket, {"openid": "x"}, {})
    assert reply.result == "verify_requested" and len(reply.messages) == 1
    assert await progress_pending(ctx.progress, WX_A)  # the lead routes the next bare "1234" here
    reply = await handle_progress_turn(ctx.progress, WX_A, "wechat", "1 2 3 4")
    assert reply.result == "wrong_digits"
    reply = await handle_progress_turn(ctx.progress, WX_A, "wechat", APPLICANT_PHONE[-4:])
    assert reply.result == "shown"
    assert reply.slot_events == [
        {"event": "slot", "timestamp": None, "name": "ticket_no", "value": None},
        {"event": "slot", "timestamp": None, "name": "phone", "value": None},
    ]


async def test_feature_off_answers_honestly() -> None:
    executor = executor_for(Ctx(Settings(), None))
    for name in ("action_check_progress", "action_progress_unsubscribe", "action_progress_resubscribe"):
        texts, events = await run(executor, call(name, "查进度"))
        assert texts == [messages.progress_not_ready(Settings())] and events == []


def test_action_names() -> None:
    assert [cls(Ctx(Settings(), None)).name() for cls in PROGRESS_ACTIONS] == [
        "action_check_progress",
        "action_progress_unsubscribe",
        "action_progress_resubscribe",
    ]
    assert ActionCheckProgress in PROGRESS_ACTIONS
