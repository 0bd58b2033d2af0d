"""WeChat campaigns to citizens bound to a case, end to end over HTTP: the gateway (its real WeChat API
client, its /wechat endpoint, the progress domain's bindings) and the WeChat fake.  Staff choose the
followers bound to a case (of one item, or any); after preview, approval and start each gets one template
message about their own case; the fake pushes TEMPLATESENDJOBFINISH (signed and encrypted as WeChat does)
and its status becomes the notice's outcome, per recipient, in the progress and the export."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.adapters.wechat import fake_api
from bot.adapters.wechat.fake_mass import MASS
from bot.domains.mass_send.notices import NoticeSender, NoticeSettings
from bot.domains.progress.audience import BoundFollowers
from bot.domains.progress.models import ProgressBinding
from bot.gateway.app import Services, build_app, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from sms_gateway.broadcast.models import BroadcastCampaign, BroadcastWeChatNotice, CampaignState
from sms_gateway.broadcast.service import BroadcastError, BroadcastService
from tests.support.sms import sms_on_unreachable_twilio
from tests.support.staff import PASSWORD
from tests.support.web import csrf_of
from tests.support.wechat import AES_KEY, APP_ID, APP_SECRET, TOKEN, settings_for

TEMPLATE = "tpl-case-notice-0001"
NOTICE = "12月9日起本事项改在3号窗口办理"  # 17 characters: fits a template's thing value
CITIZENS = [f"oCitizen{n:021d}" for n in range(6)]
BUSINESS = ("QZ-101", "个体工商户设立登记")
HOUSING = ("QZ-202", "不动产登记")


@pytest.fixture
async def hub(aiohttp_client, redis_client, database_url, monkeypatch):
    monkeypatch.setenv("WECHAT_NOTICE_TEMPLATE_ID", TEMPLATE)
    fake = TestServer(fake_api.build_app(APP_ID, APP_SECRET, template_ids=[TEMPLATE]))
    await fake.start_server()
    settings = settings_for("safe", str(fake.make_url("")).rstrip("/"), database_url)
    services = await build_services(
        settings, redis=redis_client, dialogue=ScriptedDialogue(), sms_settings=sms_on_unreachable_twilio()
    )
    assert services.mass_send is not None and services.mass_send.notices is not None
    services.mass_send.interval = 3600  # the test runs the rounds itself
    client: TestClient = await aiohttp_client(TestServer(build_app(services)))
    fake.app[MASS].server = {"url": str(client.make_url("/wechat")), "token": TOKEN, "aes_key": AES_KEY,
                             "app_id": APP_ID}  # fmt: skip
    await bind_citizens(services)
    yield services, fake, client
    await fake.close()


async def bind_citizens(services: Services) -> None:
    """Citizens 0–2 bound to business-licence cases (citizen 0 also, earlier, to a housing one), citizen 3
    to a housing case, citizen 4 to a business case with notifications off, and an SMS applicant."""
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [
        (CITIZENS[0], "202612010000001", HOUSING, True, t0),
        (CITIZENS[0], "202612010000002", BUSINESS, True, t0 + timedelta(hours=1)),
        (CITIZENS[1], "202612010000003", BUSINESS, True, t0),
        (CITIZENS[2], "202612010000004", BUSINESS, True, t0),
        (CITIZENS[3], "202612010000005", HOUSING, True, t0),
        (CITIZENS[4], "202612010000006", BUSINESS, False, t0),
    ]
    async with services.sessions.begin() as s:
        for openid, ticket, (code, name), notify, when in rows:
            s.add(ProgressBinding(sender_id=f"wx:{openid}", ticket_no=ticket, channel="wechat",
                                  address=openid, verified_by="phone_last4", notify=notify, item_code=code,
                                  item_name=name, created_at=when, updated_at=when))  # fmt: skip
        s.add(ProgressBinding(sender_id="sms:+8613800001234", ticket_no="202612010000007", channel="sms",
                              address="+8613800001234", verified_by="sms_sender", notify=True,
                              item_code=BUSINESS[0], item_name=BUSINESS[1]))  # fmt: skip


def broadcasts(services: Services) -> BroadcastService:
    assert services.broadcasts is not None
    return services.broadcasts


async def approved(services: Services, item_code: str | None, text: str = NOTICE) -> str:
    svc = broadcasts(services)
    c = await svc.create(name="窗口调整", template=text, created_by="alice", channel="wechat",
                         window="00:00-24:00")  # fmt: skip
    await svc.choose_cases(c["id"], item_code, actor="alice")
    preview = await svc.preview(c["id"])
    assert preview.blockers == [], preview.blockers
    await svc.submit(c["id"], "alice")
    await svc.approve(c["id"], "bob")
    await svc.start(c["id"], "bob")
    return str(c["id"])


def template_sends(fake: TestServer) -> list[dict[str, Any]]:
    return [s for s in fake.app[fake_api.FAKE_STATE].sent if s["kind"] == "template"]


async def outcomes(services: Services, cid: str, count: int, within: float = 5.0) -> dict[str, str]:
    """Each notice's outcome once ``count`` of them have one (the fake pushes events a moment later)."""
    deadline = time.monotonic() + within
    while True:
        rows = (await broadcasts(services).wechat_notices.rows(cid)).values()
        found = {n.openid: n.outcome for n in rows if n.outcome}
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_each_bound_follower_gets_one_notice_about_their_own_case(hub, tmp_path) -> None:
    services, fake, _ = hub
    svc = broadcasts(services)
    c = await svc.create(name="窗口调整", template=NOTICE, created_by="alice", channel="wechat",
                         window="00:00-24:00")  # fmt: skip
    view = await svc.choose_cases(c["id"], BUSINESS[0], actor="alice")
    assert view["recipients_total"] == 3 and view["audience_cases"] == BUSINESS[0]
    preview = await svc.preview(c["id"])  # citizen 0 once, with the case updated last; 4 is off; no SMS
    assert preview.recipients == 3 and preview.blockers == []
    assert "受理编号：202612010000002" in preview.samples[0]["body"] and NOTICE in preview.samples[0]["body"]
    assert any("不得用于宣传" in w for w in preview.warnings)
    for step, actor in (("submit", "alice"), ("approve", "bob"), ("start", "bob")):
        await getattr(svc, step)(c["id"], actor)
    cid = str(c["id"])

    report = await services.mass_send.run_once()
    assert report["notices_sent"] == 3
    sends = template_sends(fake)
    assert sorted(s["touser"] for s in sends) == sorted(CITIZENS[:3])
    first = next(s["payload"] for s in sends if s["touser"] == CITIZENS[0])
    assert first["template_id"] == TEMPLATE and first["client_msg_id"] == f"{cid}:1"
    data = {k: v["value"] for k, v in first["data"].items()}
    assert data["thing1"] == BUSINESS[1] and data["character_string2"] == "202612010000002"
    assert data["thing3"] == NOTICE and data["time4"].startswith("20")

    assert await outcomes(services, cid, 3) == dict.fromkeys(CITIZENS[:3], "delivered")
    assert (await svc.view(cid))["state"] == CampaignState.COMPLETED
    progress = await svc.progress(cid)
    assert (progress["sent"], progress["delivered"], progress["failed"], progress["percent"]) == (
        3,
        3,
        0,
        100.0,
    )
    rows = await svc.results(cid)
    assert [(r["openid"], r["result"]) for r in rows] == [(o, "已送达") for o in CITIZENS[:3]]
    # (the sends run concurrently: match by follower, not by position)
    sent_to = {s["touser"]: s["msgid"] for s in sends}
    assert rows[0]["source"] == "办件202612010000002" and rows[0]["msg_id"] == sent_to[rows[0]["openid"]]
    import openpyxl

    from sms_gateway.broadcast.export import write_xlsx

    assert write_xlsx(rows, tmp_path / "r.xlsx") == 3
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    assert sheet is not None and sheet["D2"].value == CITIZENS[0] and sheet["E2"].value == "已送达"


async def test_opt_outs_unfollows_and_blocks_each_end_as_wechat_says(hub) -> None:
    services, fake, _ = hub
    cid = await approved(services, None)  # every item: citizens 0–3
    async with services.sessions.begin() as s:  # citizen 1 turns notifications off after the list was made
        await s.execute(
            update(ProgressBinding).where(ProgressBinding.address == CITIZENS[1]).values(notify=False)
        )
    fake.app[fake_api.FAKE_STATE].unsubscribed.add(CITIZENS[2])  # unfollowed: 43004
    fake.app[MASS].template_blocked.add(CITIZENS[3])  # refuses template messages: failed:user block
    report = await services.mass_send.run_once()
    assert (report["notices_sent"], report["notices_failed"], report["notices_skipped"]) == (2, 1, 1)
    assert sorted(s["touser"] for s in template_sends(fake)) == sorted([CITIZENS[0], CITIZENS[3]])
    assert await outcomes(services, cid, 2) == {CITIZENS[0]: "delivered", CITIZENS[3]: "blocked"}
    results = {r["openid"]: (r["result"], r["job_status"]) for r in await broadcasts(services).results(cid)}
    assert results[CITIZENS[1]][0] == "未发送：已关闭通知或解除绑定"
    assert results[CITIZENS[2]][0] == "微信拒绝发送" and results[CITIZENS[2]][1].startswith("43004")
    assert results[CITIZENS[3]] == ("用户拒收", "failed:user block")
    assert (await broadcasts(services).view(cid))["state"] == CampaignState.COMPLETED


async def test_a_notice_sent_again_after_a_crash_reaches_the_citizen_once(hub) -> None:
    services, fake, _ = hub
    cid = await approved(services, BUSINESS[0])
    await services.mass_send.run_once()
    await outcomes(services, cid, 3)
    async with services.sessions.begin() as s:  # as if we died after WeChat took them, before recording
        lapsed = datetime.now(UTC) - timedelta(minutes=5)
        await s.execute(
            update(BroadcastWeChatNotice).values(
                state="sending", msg_id=None, outcome=None, lease_until=lapsed
            )
        )
        await s.execute(update(BroadcastCampaign).values(state=CampaignState.SENDING))
    report = await services.mass_send.run_once()
    assert report["notices_sent"] == 3  # taken again after the lease …
    assert len(template_sends(fake)) == 3  # … and WeChat deduplicated them by client_msg_id


async def test_two_gateway_workers_send_each_notice_once(hub) -> None:
    services, fake, _ = hub
    cid = await approved(services, None)
    svc = broadcasts(services)
    audience = BoundFollowers(services.sessions)
    settings = NoticeSettings(template_id=TEMPLATE, batch=1, concurrency=1)
    api = services.wechat_api
    workers = [NoticeSender(svc, api, audience, settings) for _ in range(2)]
    reports = await asyncio.gather(*(w.run_once() for w in workers))
    assert sum(r["sent"] for r in reports) == 4
    assert sorted(s["touser"] for s in template_sends(fake)) == sorted(CITIZENS[:4])
    assert (await svc.view(cid))["state"] == CampaignState.COMPLETED


async def test_a_template_wechat_refuses_pauses_the_campaign_and_nothing_is_lost(hub) -> None:
    services, fake, _ = hub
    state = fake.app[fake_api.FAKE_STATE]
    state.template_ids.clear()  # the template was deleted in the official-account console: 40037
    cid = await approved(services, BUSINESS[0])
    report = await services.mass_send.run_once()
    assert report["notices_halt"] >= 1 and report["notices_sent"] == 0
    view = await broadcasts(services).view(cid)
    assert view["state"] == CampaignState.PAUSED and "40037" in view["state_reason"]
    progress = await broadcasts(services).progress(cid)
    assert progress["wechat"]["pending"] == 3 and progress["wechat"]["failed"] == 0
    state.template_ids.add(TEMPLATE)  # mended; staff resume
    await broadcasts(services).resume(cid, "bob")
    assert (await services.mass_send.run_once())["notices_sent"] == 3
    assert (await broadcasts(services).view(cid))["state"] == CampaignState.COMPLETED


async def test_nothing_is_sent_while_paused_or_outside_the_window(hub) -> None:
    services, fake, _ = hub
    svc = broadcasts(services)
    cid = await approved(services, BUSINESS[0])
    await svc.pause(cid, "bob")
    assert (await services.mass_send.run_once())["notices_sent"] == 0
    await svc.resume(cid, "bob")
    now = datetime.now(UTC).astimezone(svc.settings.tz)
    minute = now.hour * 60 + now.minute
    closed = (minute + 60) % 1380, (minute + 60) % 1380 + 30  # a window that is not now
    async with services.sessions.begin() as s:
        await s.execute(update(BroadcastCampaign).values(window_start=closed[0], window_end=closed[1]))
    assert (await services.mass_send.run_once())["notices_sent"] == 0
    assert template_sends(fake) == []
    async with services.sessions() as s:
        states = set((await s.execute(select(BroadcastWeChatNotice.state))).scalars())
    assert states <= {"pending"}


@pytest.mark.parametrize(
    ("label", "text", "item", "configured", "blocker"),
    [
        ("too long", "本中心自12月9日起调整办公时间，周六上午照常办公", BUSINESS[0], True, "最多 20 个字"),
        ("a variable", "{姓名}您好，请补交材料", BUSINESS[0], True, "不能含变量"),
        ("no template", NOTICE, BUSINESS[0], False, "WECHAT_NOTICE_TEMPLATE_ID"),
        ("nobody bound", NOTICE, "QZ-999", True, "没有绑定了办件并接收通知的关注者"),
    ],
)
async def test_a_notice_campaign_is_blocked_until_it_can_be_sent(
    hub, label: str, text: str, item: str, configured: bool, blocker: str
) -> None:
    services, _, _ = hub
    svc = broadcasts(services)
    svc.notice_template_ready = configured
    c = await svc.create(name="x", template=text, created_by="alice", channel="wechat")
    await svc.choose_cases(c["id"], item, actor="alice")
    preview = await svc.preview(c["id"])
    assert any(blocker in b for b in preview.blockers), (label, preview.blockers)
    with pytest.raises(BroadcastError, match="存在阻止发送的问题"):
        await svc.submit(c["id"], "alice")


async def test_only_a_wechat_draft_takes_a_case_audience(hub) -> None:
    services, _, _ = hub
    svc = broadcasts(services)
    sms = await svc.create(name="短信", template="通知：办公时间调整。", created_by="alice")
    with pytest.raises(BroadcastError, match="只有公众号群发"):
        await svc.choose_cases(sms["id"], None, actor="alice")
    cid = await approved(services, BUSINESS[0])
    with pytest.raises(BroadcastError, match="只有草稿"):
        await svc.choose_cases(cid, None, actor="alice")


async def test_the_console_chooses_bound_citizens_and_shows_each_notice(hub) -> None:
    services, _, client = hub
    assert services.staff is not None
    await services.staff.accounts.create("op", "运营", PASSWORD, ["broadcast_operator"], "办公室", False)
    await client.post("/console/login", data={"username": "op", "password": PASSWORD})
    page = await (await client.get("/console/broadcasts/new")).text()
    form = {"name": "窗口调整", "template": NOTICE, "channel": "wechat", "purpose": "通知",
            "window": "00:00-24:00", "csrf_token": csrf_of(page)}  # fmt: skip
    created = await client.post("/console/broadcasts", data=form, allow_redirects=False)
    assert created.status == 303
    url = created.headers["Location"]
    page = await (await client.get(url)).text()
    assert "按办件发送模板通知" in page and f"{BUSINESS[1]}（{BUSINESS[0]}，3 人）" in page
    chosen = await client.post(
        f"{url}/wechat-cases", data={"item_code": BUSINESS[0], "csrf_token": csrf_of(page)}
    )
    page = await chosen.text()
    assert (
        chosen.status == 200
        and "绑定了办件并接收通知的关注者（事项 QZ-101，3 人）" in page
        and "检查通过" in page
    )
    cid = url.rsplit("/", 1)[1]
    for step, actor in (("submit", "运营"), ("approve", "审核"), ("start", "审核")):
        await getattr(broadcasts(services), step)(cid, actor)
    await services.mass_send.run_once()
    await outcomes(services, cid, 3)
    progress = await (await client.get(f"{url}/progress")).text()
    assert "办件模板通知（每人一条）" in progress and "<td>3</td>" in progress


def fail_next(fake: TestServer, errcode: int, times: int = 1) -> None:
    from bot.adapters.wechat.fake_api import _FailRule

    rule = _FailRule("/cgi-bin/message/template/send", errcode, None, 0.0, times)
    fake.app[fake_api.FAKE_STATE].failures.append(rule)


async def test_the_notice_time_is_beijing_time_of_the_start(hub) -> None:
    services, fake, _ = hub
    cid = await approved(services, BUSINESS[0])
    started = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
    async with services.sessions.begin() as s:
        await s.execute(update(BroadcastCampaign).values(started_at=started))
    await services.mass_send.run_once()
    sends = template_sends(fake)
    assert {s["payload"]["data"]["time4"]["value"] for s in sends} == {"2026年12月07日 09:30"}
    assert (await broadcasts(services).view(cid))["state"] == CampaignState.COMPLETED


async def test_wechat_busy_or_the_daily_quota_keeps_notices_waiting(hub) -> None:
    services, fake, _ = hub
    cid = await approved(services, BUSINESS[0])
    fail_next(fake, 45009)  # the account's daily quota
    report = await services.mass_send.run_once()
    assert report["notices_waiting"] >= 1 and report["notices_failed"] == 0
    progress = await broadcasts(services).progress(cid)
    assert progress["wechat"]["pending"] + progress["wechat"]["sent"] == 3
    assert (await broadcasts(services).view(cid))["state"] == CampaignState.SENDING  # not failed, not paused
    services.mass_send.notices._quiet_until = 0.0  # as if the next day had come
    assert (await services.mass_send.run_once())["notices_sent"] + progress["wechat"]["sent"] == 3
    assert (await broadcasts(services).view(cid))["state"] == CampaignState.COMPLETED


async def test_values_the_template_refuses_pause_instead_of_failing_everyone(hub) -> None:
    services, fake, _ = hub
    cid = await approved(services, BUSINESS[0])
    fail_next(fake, 47003, times=10)  # argument invalid: the fields map does not fit the template
    report = await services.mass_send.run_once()
    assert report["notices_halt"] >= 1 and report["notices_failed"] == 0
    view = await broadcasts(services).view(cid)
    assert view["state"] == CampaignState.PAUSED and "47003" in view["state_reason"]


async def test_a_campaign_without_a_template_id_pauses_with_the_reason(hub) -> None:
    services, fake, _ = hub
    cid = await approved(services, BUSINESS[0])
    assert services.mass_send.notices is not None
    services.mass_send.notices.settings = NoticeSettings(template_id="")  # unset after approval
    assert (await services.mass_send.run_once())["notices_halt"] == 1
    view = await broadcasts(services).view(cid)
    assert view["state"] == CampaignState.PAUSED and "WECHAT_NOTICE_TEMPLATE_ID" in view["state_reason"]
    assert template_sends(fake) == []


async def test_cancelling_skips_what_was_not_sent_and_a_stale_claim_records_nothing(hub) -> None:
    services, fake, _ = hub
    svc = broadcasts(services)
    cid = await approved(services, None)
    await svc.wechat_notices.plan(cid)
    first = await svc.wechat_notices.claim(cid, 1, lease=60)
    assert len(first) == 1
    assert await svc.wechat_notices.claim(cid, 10, lease=60) != []  # the others
    again = await svc.wechat_notices.claim(cid, 10, lease=60)
    assert again == []  # leases running: nobody takes them
    async with services.sessions.begin() as s:  # the first claim's lease lapses; another runner takes it
        await s.execute(
            update(BroadcastWeChatNotice)
            .where(BroadcastWeChatNotice.id == first[0].id)
            .values(lease_until=datetime.now(UTC) - timedelta(minutes=1))
        )
    (second,) = await svc.wechat_notices.claim(cid, 10, lease=60)
    assert second.id == first[0].id and second.attempt == first[0].attempt + 1
    assert not await svc.wechat_notices.release(first[0], -1, "late")  # the stale claim changes nothing
    assert await svc.wechat_notices.sent(second, 123)
    async with services.sessions.begin() as s:  # a runner died holding one notice
        await s.execute(
            update(BroadcastWeChatNotice)
            .where(BroadcastWeChatNotice.state == "sending")
            .values(lease_until=datetime.now(UTC) - timedelta(minutes=1))
        )
    await svc.cancel(cid, "bob", "通知有误")
    rows = (await svc.wechat_notices.rows(cid)).values()
    assert sorted(n.state for n in rows) == ["sent", "skipped", "skipped", "skipped"]
    assert {n.status_text for n in rows if n.state == "skipped"} == {"campaign_cancelled"}
    assert (await services.mass_send.run_once())["notices_sent"] == 0 and template_sends(fake) == []
