"""The notifier: status changes from the reference backend's feed → exactly one notification per (case,
status) per subscriber, even with two notifier instances running concurrently on one database and Redis;
WeChat template first, SMS when WeChat refuses; retries, crash take-over, cursor persistence, opt-out."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.approval import HttpApprovalBackend
from bot.adapters.wechat.api_client import WeChatAPIError
from bot.core.db import create_engine, session_factory
from bot.domains.progress.config import ProgressSettings
from bot.domains.progress.models import ProgressNotification
from bot.domains.progress.notifier import ProgressNotifier
from bot.domains.progress.replies import Replies, ReplyContext
from bot.domains.progress.service import LookupResult, ProgressService
from bot.domains.progress.store import ProgressStore
from sms_gateway.compose import Templated
from sms_gateway.models import Purpose
from tests.support.progress import (
    APPLICANT_PHONE,
    CENTER_PHONE,
    OTHER_PHONE,
    WX_A,
    WX_B,
    Clock,
    RefHarness,
    fast_settings,
    make_service,
    working_days,
)

TEMPLATE = "tmpl-progress-0001"
OPENID_A = WX_A.removeprefix("wx:")
SMS_OTHER = f"sms:+86{OTHER_PHONE}"


class FakeWeChat:
    """Records template sends; ``fail`` holds errcodes to raise on the next calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], str | None]] = []
        self.sent: list[tuple[str, dict[str, str], str | None]] = []
        self.fail: list[int] = []

    async def send_template(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> int:
        assert template_id == TEMPLATE
        await asyncio.sleep(0.005)  # give a concurrent worker the chance to interleave
        self.calls.append((openid, data, client_msg_id))
        if self.fail:
            raise WeChatAPIError(self.fail.pop(0), "refused")
        self.sent.append((openid, data, client_msg_id))
        return len(self.sent)


class FakeSms:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str | None]] = []
        self.templated: list[Templated | None] = []

    async def send(
        self,
        to: str,
        texts: str,
        *,
        purpose: Purpose,
        key: str | None = None,
        templated: Templated | None = None,
    ) -> Sequence[object]:
        assert purpose is Purpose.NOTIFICATION
        await asyncio.sleep(0.005)
        self.sent.append((to, texts, key))
        self.templated.append(templated)
        return []


class Hub:
    def __init__(self, reference: RefHarness, redis: aioredis.Redis, engine: AsyncEngine) -> None:
        self.reference = reference
        self.redis = redis
        self.engine = engine
        self.sessions = session_factory(engine)
        self.clock = Clock(datetime.now(UTC))
        self.backends: list[HttpApprovalBackend] = []
        self.wechat = FakeWeChat()
        self.sms = FakeSms()
        self.service: ProgressService = make_service(self.backend(), self.sessions, redis, self.clock)

    def backend(self) -> HttpApprovalBackend:
        backend = HttpApprovalBackend(fast_settings(self.reference.url), self.redis)
        self.backends.append(backend)
        return backend

    def notifier(self, **settings: Any) -> ProgressNotifier:
        values: dict[str, Any] = {"template_id": TEMPLATE, "notify_retry_delay": 30.0, "poll_interval": 0.05}
        values.update(settings)
        return ProgressNotifier(
            self.backend(),  # each worker has its own HTTP client, as separate processes would
            self.sessions,
            Replies(ReplyContext(CENTER_PHONE, working_days())),
            wechat=self.wechat,
            sms=self.sms,
            settings=dataclasses.replace(ProgressSettings(), **values),
            clock=self.clock,
        )

    async def subscribe_wechat(self, sender: str, ticket: str) -> None:
        outcome = await self.service.handle(sender, "wechat", f"{ticket} {APPLICANT_PHONE[-4:]}")
        assert outcome.result is LookupResult.SHOWN

    async def subscribe_sms(self, ticket: str, phone: str = APPLICANT_PHONE) -> None:
        outcome = await self.service.handle(f"sms:+86{phone}", "sms", ticket, {"phone": "+86" + phone})
        assert outcome.result is LookupResult.SHOWN

    async def rows(self) -> list[tuple[str, str, int, str, str, str | None]]:
        async with self.sessions() as session:
            rows = await session.scalars(select(ProgressNotification).order_by(ProgressNotification.id))
            return [(r.ticket_no, r.status, r.status_round, r.sender_id, r.state, r.via) for r in rows]

    async def close(self) -> None:
        for backend in self.backends:
            await backend.close()


@pytest.fixture
async def hub(reference: RefHarness, redis_client: aioredis.Redis, database_url: str) -> AsyncIterator[Hub]:
    engine = create_engine(database_url)
    hub = Hub(reference, redis_client, engine)
    yield hub
    await hub.close()
    await engine.dispose()


async def test_exactly_one_notification_per_status_with_two_notifiers(hub: Hub) -> None:
    first = (await hub.reference.create())["ticket_no"]
    second = (await hub.reference.create(phone=OTHER_PHONE))["ticket_no"]
    await hub.subscribe_wechat(WX_A, first)
    await hub.subscribe_wechat(WX_B, first)
    await hub.subscribe_sms(second, OTHER_PHONE)
    one, two = hub.notifier(), hub.notifier()
    await asyncio.gather(one.run_once(), two.run_once())
    assert hub.wechat.sent == [] and hub.sms.sent == []  # 受理 was shown in the lookups: not pushed again
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (first, "补正", {"missing_materials": ["经营场所使用证明复印件1份"]}),
        (second, "审核", {}),
        (first, "审核", {}),
        (second, "审批", {}),
        (first, "办结", {}),
        (second, "不予受理", {}),
    ]
    for ticket, status, extra in steps:
        await hub.reference.change(ticket, status, **extra)
        await asyncio.gather(one.run_once(), two.run_once(), one.run_once())
    wechat = Counter((openid, data["phrase3"]) for openid, data, _ in hub.wechat.sent)
    assert wechat == {
        (OPENID_A, "需补正"): 1,
        (OPENID_A, "审核中"): 1,
        (OPENID_A, "已办结"): 1,
        (WX_B.removeprefix("wx:"), "需补正"): 1,
        (WX_B.removeprefix("wx:"), "审核中"): 1,
        (WX_B.removeprefix("wx:"), "已办结"): 1,
    }
    sms = [(to, text.split("，", 1)[1].split("。", 1)[0]) for to, text, _ in hub.sms.sent]
    assert sms == [
        ("+86" + OTHER_PHONE, "正在审核（工作人员正在审查申请材料）"),
        ("+86" + OTHER_PHONE, "审核已通过，正在审批"),
        ("+86" + OTHER_PHONE, "不予受理"),
    ]
    states = Counter(state for *_, state, _ in await hub.rows())
    assert states == {"seen": 3, "sent": 9}


async def test_two_notifier_loops_running_concurrently(hub: Hub) -> None:
    tickets = [(await hub.reference.create())["ticket_no"] for _ in range(4)]
    for ticket in tickets:
        await hub.subscribe_wechat(WX_A, ticket)
    stop = asyncio.Event()
    workers = [asyncio.create_task(hub.notifier().run_forever(stop)) for _ in range(2)]
    try:
        for status in ("审核", "审批", "办结"):
            for ticket in tickets:
                await hub.reference.change(ticket, status)
            await asyncio.sleep(0.3)
        for _ in range(100):
            if len(hub.wechat.sent) >= 12:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a duplicate would show up now
    finally:
        stop.set()
        await asyncio.gather(*workers)
    keys = Counter((data["character_string2"], data["phrase3"]) for _, data, _ in hub.wechat.sent)
    assert set(keys.values()) == {1}
    assert {s for _, s in keys} == {"审核中", "审批中", "已办结"} and len(keys) == 12


async def test_wechat_refusal_falls_back_to_sms(hub: Hub) -> None:
    ticket = (await hub.reference.create())["ticket_no"]
    await hub.subscribe_wechat(WX_A, ticket)
    await hub.reference.change(ticket, "补正", missing_materials=["材料一1份", "材料二1份"])
    hub.wechat.fail = [43004]  # the citizen unfollowed the account
    report = await hub.notifier().run_once()
    assert report.sent == 1 and hub.wechat.sent == []
    [(to, text, key)] = hub.sms.sent
    assert to == "+86" + APPLICANT_PHONE  # the applicant's phone on record
    assert "需要补正材料" in text and "1. 材料一1份\n2. 材料二1份" in text and "【" not in text
    assert key is not None and key.startswith(f"progress:{ticket}:correction:1:")
    assert (await hub.rows())[-1][4:] == ("sent", "sms")
    # the same notice in the case_status template's terms, for template-bound SMS (Aliyun)
    assert hub.sms.templated == [Templated("case_status", {"ticket": ticket, "status": "需补正"})]


async def test_no_template_configured_uses_sms(hub: Hub) -> None:
    ticket = (await hub.reference.create())["ticket_no"]
    await hub.subscribe_wechat(WX_A, ticket)
    await hub.reference.change(ticket, "办结")
    await hub.notifier(template_id="").run_once()
    assert hub.wechat.calls == [] and len(hub.sms.sent) == 1
    assert "请携带" in hub.sms.sent[0][1]


async def test_transient_wechat_error_is_retried_with_the_same_message_id(hub: Hub) -> None:
    ticket = (await hub.reference.create())["ticket_no"]
    await hub.subscribe_wechat(WX_A, ticket)
    await hub.reference.change(ticket, "审核")
    hub.wechat.fail = [-1]  # WeChat busy
    notifier = hub.notifier()
    report = await notifier.run_once()
    assert report.retried == 1 and hub.wechat.sent == []
    assert (await notifier.run_once()).sent == 0  # not due yet
    hub.clock.set(hub.clock() + timedelta(seconds=31))
    report = await notifier.run_once()
    assert report.sent == 1 and hub.sms.sent == []
    assert [c[2] for c in hub.wechat.calls] == [hub.wechat.sent[0][2]] * 2


async def test_persistent_transient_errors_end_in_sms(hub: Hub) -> None:
    ticket = (await hub.reference.create())["ticket_no"]
    await hub.subscribe_wechat(WX_A, ticket)
    await hub.reference.change(ticket, "审核")
    hub.wechat.fail = [-1001, -1001]
    notifier = hub.notifier(notify_max_attempts=2)
    await notifier.run_once()
    hub.clock.set(hub.clock() + timedelta(seconds=31))
    await notifier.run_once()
    assert len(hub.sms.sent) == 1 and (await hub.rows())[-1][4:] == ("sent", "sms")


async def test_opted_out_subscribers_get_nothing(hub: Hub) -> None:
    ticket = (await hub.reference.create())["ticket_no"]
    await hub.subscribe_wechat(WX_A, ticket)
    await hub.service.handle(WX_A, "wechat", "取消提醒")
    await hub.reference.change(ticket, "审核")
    await hub.notifier().run_once()
    assert hub.wechat.calls == [] and hub.sms.sent == []


async def test_cursor_survives_a_restart(hub: Hub) -> None:
    ticket = (await hub.reference.create())["ticket_no"]
    await hub.subscribe_wechat(WX_A, ticket)
    await hub.reference.change(ticket, "审核")
    await hub.notifier().run_once()
    cursor = await ProgressStore(hub.sessions).cursor("approval")
    assert cursor is not None and int(cursor) >= 2
    report = await hub.notifier().run_once()  # a new process
    assert report.changes == 0 and len(hub.wechat.sent) == 1
    # Even a reset cursor sends nothing twice: the ledger remembers.
    await ProgressStore(hub.sessions).advance_cursor("approval", cursor, "0")
    report = await hub.notifier().run_once()
    assert report.changes >= 2 and len(hub.wechat.sent) == 1


async def test_backend_down_keeps_the_cursor(hub: Hub) -> None:
    ticket = (await hub.reference.create())["ticket_no"]
    await hub.subscribe_wechat(WX_A, ticket)
    await hub.reference.change(ticket, "审核")
    notifier = hub.notifier()
    await hub.reference.fault(status=503, times=-1)
    report = await notifier.run_once()
    assert report.error == "server_error" and hub.wechat.sent == []
    assert await ProgressStore(hub.sessions).cursor("approval") is None
    await hub.reference.fault(times=0)
    assert (await notifier.run_once()).sent == 1


async def test_a_second_correction_round_is_a_new_notification(hub: Hub) -> None:
    ticket = (await hub.reference.create())["ticket_no"]
    await hub.subscribe_wechat(WX_A, ticket)
    notifier = hub.notifier()
    rounds: list[tuple[str, dict[str, Any]]] = [
        ("补正", {"missing_materials": ["材料一1份"]}),
        ("审核", {}),
        ("补正", {"missing_materials": ["材料二1份"]}),
    ]
    for status, extra in rounds:
        await hub.reference.change(ticket, status, **extra)
        await notifier.run_once()
    assert [d["phrase3"] for _, d, _ in hub.wechat.sent] == ["需补正", "审核中", "需补正"]
    assert [r[1:3] for r in await hub.rows()] == [
        ("accepted", 1),
        ("correction", 1),
        ("review", 1),
        ("correction", 2),
    ]


async def test_a_crashed_send_is_taken_over_after_its_lease(hub: Hub) -> None:
    ticket = (await hub.reference.create())["ticket_no"]
    await hub.subscribe_wechat(WX_A, ticket)
    await hub.reference.change(ticket, "审核")
    store = ProgressStore(hub.sessions)
    # A worker claimed the row and died before sending.
    row_id = await store.claim(
        ticket, "review", 1, WX_A, state="sending", lease_until=hub.clock() + timedelta(seconds=120)
    )
    assert row_id is not None
    notifier = hub.notifier()
    await notifier.run_once()
    assert hub.wechat.sent == []  # the lease is still held
    hub.clock.set(hub.clock() + timedelta(seconds=121))
    report = await notifier.run_once()
    assert report.sent == 1 and len(hub.wechat.sent) == 1
    # If the case moved on meanwhile, a stale row is dropped instead of sending an outdated status.
    await hub.reference.change(ticket, "审批")
    later = await store.claim(ticket, "approval", 1, WX_A, state="sending", lease_until=hub.clock())
    await hub.reference.change(ticket, "办结")
    hub.clock.set(hub.clock() + timedelta(seconds=1))
    report = await notifier.retry_due()
    assert report.skipped == 1 and later is not None


async def test_real_wechat_api_fake_and_sms_outbox(
    hub: Hub, fake_wechat, redis_client: aioredis.Redis, database_url: str
) -> None:
    from bot.adapters.wechat.api_client import WeChatApiClient
    from bot.adapters.wechat.token_service import TokenService
    from tests.support.sms import start_harness
    from tests.support.wechat import APP_ID, APP_SECRET

    base = str(fake_wechat.make_url("")).rstrip("/")
    sms = await start_harness(redis_client, database_url)
    async with aiohttp.ClientSession() as http:
        await http.post(base + "/_fake/templates", json={"template_ids": [TEMPLATE]})
        tokens = TokenService(redis_client, http, APP_ID, APP_SECRET, base)
        wechat = WeChatApiClient(http, tokens, base)
        try:
            first = (await hub.reference.create())["ticket_no"]
            second = (await hub.reference.create())["ticket_no"]
            await hub.subscribe_wechat(WX_A, first)
            await hub.subscribe_wechat(WX_B, second)
            await http.post(
                base + "/_fake/interaction", json={"openid": WX_B.removeprefix("wx:"), "kind": "unsubscribe"}
            )
            await hub.reference.change(first, "审核")
            await hub.reference.change(second, "审核")
            notifier = ProgressNotifier(
                hub.backend(),
                hub.sessions,
                Replies(ReplyContext(CENTER_PHONE, working_days())),
                wechat=wechat,
                sms=sms.outbox,
                settings=dataclasses.replace(ProgressSettings(), template_id=TEMPLATE),
            )
            other = ProgressNotifier(
                hub.backend(),
                hub.sessions,
                Replies(ReplyContext(CENTER_PHONE, working_days())),
                wechat=wechat,
                sms=sms.outbox,
                settings=dataclasses.replace(ProgressSettings(), template_id=TEMPLATE),
            )
            await asyncio.gather(notifier.run_once(), other.run_once())
            async with http.get(base + "/_fake/sent", params={"kind": "template"}) as resp:
                templates = await resp.json()
            assert [t["touser"] for t in templates] == [OPENID_A]
            assert templates[0]["payload"]["data"]["character_string2"]["value"] == first
            await sms.settle()
            texts = [m.body for m in sms.sent("+86" + APPLICANT_PHONE)]
            assert len(texts) == 1 and second[:8] in texts[0] and "正在审核" in texts[0]
        finally:
            await sms.close()
