"""WeChat as a broadcast channel, end to end over HTTP: the gateway (its real WeChat API client and its
/wechat endpoint) and the WeChat fake with mass sending.  A campaign to a follower tag and one to an
uploaded openid list go through preview, approval and start; the runner submits the mass-send jobs; the
fake pushes MASSSENDJOBFINISH (signed and encrypted as WeChat does) and its counts become the progress."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from bot.adapters.wechat import fake_api
from bot.adapters.wechat.fake_mass import MASS, MONTHLY_LIMIT
from bot.gateway.app import Services, build_app, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from sms_gateway.broadcast.models import BroadcastCampaign, BroadcastWeChatJob, CampaignState
from sms_gateway.broadcast.service import BroadcastError
from tests.support.broadcast import csv_bytes
from tests.support.sms import sms_on_unreachable_twilio
from tests.support.staff import PASSWORD
from tests.support.web import csrf_of
from tests.support.wechat import AES_KEY, APP_ID, APP_SECRET, TOKEN, settings_for

FOLLOWERS = [f"oFollower{n:020d}" for n in range(6)]
NOTICE = "【通知】县行政服务中心12月9日起延长办公时间至18:00，欢迎前来办理。"


@pytest.fixture
async def hub(aiohttp_client, redis_client, sqlite_url):
    fake = TestServer(fake_api.build_app(APP_ID, APP_SECRET))
    await fake.start_server()
    settings = settings_for("safe", str(fake.make_url("")).rstrip("/"), sqlite_url)
    services = await build_services(
        settings, redis=redis_client, dialogue=ScriptedDialogue(), sms_settings=sms_on_unreachable_twilio()
    )
    assert services.mass_send is not None  # the real WeChat client can mass-send
    services.mass_send.interval = 3600  # the test runs the rounds itself
    client: TestClient = await aiohttp_client(TestServer(build_app(services)))
    mass = fake.app[MASS]
    mass.server = {
        "url": str(client.make_url("/wechat")),
        "token": TOKEN,
        "aes_key": AES_KEY,
        "app_id": APP_ID,
    }
    mass.tags[101] = {"name": "个体工商户", "openids": FOLLOWERS[:4]}
    yield services, fake, mass, client
    await fake.close()


async def approved(services: Services, audience: dict[str, Any], template: str = NOTICE) -> str:
    svc = services.broadcasts
    assert svc is not None
    c = await svc.create(name="延长办公时间", template=template, created_by="alice", channel="wechat")
    if "tag" in audience:
        await svc.set_wechat_tag(
            c["id"], tag_id=audience["tag"], tag_name="个体工商户", followers=4, actor="alice"
        )
    else:
        data = csv_bytes([["openid"], *[[o] for o in audience["openids"]]])
        await svc.set_recipients(c["id"], actor="alice", upload=("openids.csv", data))
    preview = await svc.preview(c["id"])
    assert preview.blockers == [], preview.blockers
    await svc.submit(c["id"], "alice")
    await svc.approve(c["id"], "bob")
    await svc.start(c["id"], "bob")
    return str(c["id"])


async def finished(services: Services, cid: str, within: float = 5.0) -> dict[str, Any]:
    assert services.broadcasts is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        view = await services.broadcasts.view(cid)
        if view["state"] in (CampaignState.COMPLETED, CampaignState.FAILED):
            return await services.broadcasts.progress(cid)
        await asyncio.sleep(0.05)
    raise AssertionError(f"campaign {cid} did not finish: {await services.broadcasts.progress(cid)}")


async def test_a_campaign_to_a_tag(hub) -> None:
    services, _, mass, _ = hub
    cid = await approved(services, {"tag": 101})
    report = await services.mass_send.run_once()
    assert report["submitted"] == 1
    (job,) = mass.jobs.values()
    assert (job.tag_id, job.content, job.clientmsgid) == (101, NOTICE, f"{cid}:1")
    progress = await finished(services, cid)
    assert progress["wechat"]["sent"] == 4 and progress["wechat"]["total"] == 4
    assert (await services.broadcasts.view(cid))["state"] == CampaignState.COMPLETED
    assert job.event_tries == 1  # the gateway answered the signed, encrypted event at once


async def test_a_campaign_to_an_openid_list_counts_what_wechat_filtered(hub, tmp_path) -> None:
    services, fake, mass, _ = hub
    fake.app[fake_api.FAKE_STATE].unsubscribed.add(FOLLOWERS[4])  # unfollowed since the list was made
    month = time.strftime("%Y%m", time.gmtime(time.time() + 8 * 3600))
    mass.received[(FOLLOWERS[5], month)] = MONTHLY_LIMIT  # already got this month's four
    cid = await approved(services, {"openids": [*FOLLOWERS, "not-an-openid", FOLLOWERS[0]]})
    await services.mass_send.run_once()
    progress = (await finished(services, cid))["wechat"]
    assert (progress["total"], progress["filtered"], progress["sent"]) == (6, 2, 4)
    (job,) = mass.jobs.values()
    assert sorted(job.reached) == sorted(FOLLOWERS[:4])
    rows = await services.broadcasts.results(cid)
    assert [r["result"] for r in rows] == ["微信已完成群发"] * 6 + ["号码无效", "号码重复"]
    assert rows[0]["msg_id"] == job.msg_id
    import openpyxl

    from sms_gateway.broadcast.export import write_xlsx

    assert write_xlsx(rows, tmp_path / "r.xlsx") == 8  # the per-recipient export
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    assert sheet is not None
    assert [c.value for c in sheet[1]][3:6] == ["openid", "结果", "微信任务号"]
    assert sheet["D2"].value == FOLLOWERS[0] and sheet["F2"].value == job.msg_id


async def test_a_job_submitted_again_after_a_crash_is_not_sent_twice(hub) -> None:
    services, _, mass, _ = hub
    cid = await approved(services, {"tag": 101})
    await services.mass_send.run_once()
    await finished(services, cid)
    async with services.sessions.begin() as s:  # as if we died after WeChat took it, before recording it
        await s.execute(update(BroadcastWeChatJob).values(state="pending", msg_id=None))
        await s.execute(update(BroadcastCampaign).values(state=CampaignState.SENDING))
    report = await services.mass_send.run_once()
    assert report["submitted"] == 1 and len(mass.jobs) == 1  # 45065: WeChat returned the first msg_id
    progress = await services.broadcasts.progress(cid)
    assert progress["wechat"]["jobs"][0]["msg_id"] == next(iter(mass.jobs))


async def test_what_wechat_refuses_for_good_fails_the_campaign_with_the_reason(hub) -> None:
    services, _, mass, _ = hub
    cid = await approved(services, {"tag": 101})
    del mass.tags[101]  # the tag was deleted in the WeChat console meanwhile
    report = await services.mass_send.run_once()
    assert report["failed"] == 1
    view = await services.broadcasts.view(cid)
    assert view["state"] == CampaignState.FAILED
    progress = await services.broadcasts.progress(cid)
    assert progress["wechat"]["jobs"][0]["status"].startswith("40050")


@pytest.mark.parametrize(
    ("label", "template", "openids", "blocker"),
    [
        ("a variable", "{姓名}您好：办公时间延长。", FOLLOWERS[:3], "不能含变量：{姓名}"),
        ("one openid", NOTICE, FOLLOWERS[:1], "至少 2 个有效 openid"),
        ("too long", "通知" * 400, FOLLOWERS[:3], "最多 2048 字节"),
    ],
)
async def test_a_wechat_campaign_is_blocked_until_it_can_be_sent(
    hub, label: str, template: str, openids: list[str], blocker: str
) -> None:
    services, _, _, _ = hub
    svc = services.broadcasts
    c = await svc.create(name="x", template=template, created_by="alice", channel="wechat")
    header = ["openid", "姓名"] if "{" in template else ["openid"]
    rows = [[o, "张三"][: len(header)] for o in openids]
    await svc.set_recipients(c["id"], actor="alice", upload=("o.csv", csv_bytes([header, *rows])))
    preview = await svc.preview(c["id"])
    assert any(blocker in b for b in preview.blockers), (label, preview.blockers)
    with pytest.raises(BroadcastError, match="存在阻止发送的问题"):
        await svc.submit(c["id"], "alice")


async def test_the_console_composes_a_wechat_campaign_to_a_tag_and_shows_its_counts(hub) -> None:
    services, _, _, client = hub
    assert services.staff is not None
    await services.staff.accounts.create("op", "运营", PASSWORD, ["broadcast_operator"], "办公室", False)
    await client.post("/console/login", data={"username": "op", "password": PASSWORD})
    page = await (await client.get("/console/broadcasts/new")).text()
    assert 'id="channel"' in page and "公众号群发" in page
    form = {"name": "延长办公时间", "template": NOTICE, "channel": "wechat", "purpose": "通知",
            "csrf_token": csrf_of(page)}  # fmt: skip
    created = await client.post("/console/broadcasts", data=form, allow_redirects=False)
    assert created.status == 303
    url = created.headers["Location"]
    page = await (await client.get(url)).text()
    assert "按关注者标签群发" in page and "个体工商户（4 人）" in page  # the tags, read from WeChat
    chosen = await client.post(f"{url}/wechat-tag", data={"tag_id": "101", "csrf_token": csrf_of(page)})
    page = await chosen.text()
    assert chosen.status == 200 and "标签“个体工商户”的关注者" in page and "检查通过" in page
    cid = url.rsplit("/", 1)[1]
    await services.broadcasts.submit(cid, "运营")
    await services.broadcasts.approve(cid, "审核")
    await services.broadcasts.start(cid, "审核")
    await services.mass_send.run_once()
    await finished(services, cid)
    progress = await (await client.get(f"{url}/progress")).text()
    assert "公众号群发：已提交 1 / 1 批" in progress and "<td>4</td>" in progress


async def test_a_list_over_the_per_call_limit_goes_in_several_jobs_each_finished_by_its_event(
    hub, monkeypatch
) -> None:
    from sms_gateway.broadcast import wechat_jobs

    services, _, mass, _ = hub
    monkeypatch.setattr(wechat_jobs, "MAX_OPENIDS", 2)  # WeChat's is 10,000 per call
    cid = await approved(services, {"openids": FOLLOWERS})
    assert (await services.mass_send.run_once())["submitted"] == 3
    progress = (await finished(services, cid))["wechat"]  # three events, likely within one second
    assert progress["finished"] == 3 and progress["sent"] == 6
    overall = await services.broadcasts.progress(cid)
    assert (overall["percent"], overall["queued"], overall["in_flight"], overall["sent"]) == (100.0, 0, 0, 6)
    assert sorted(o for job in mass.jobs.values() for o in job.reached) == sorted(FOLLOWERS)
    rows = await services.broadcasts.results(cid)  # each openid with the job that carried it
    carried = {o: job.msg_id for job in mass.jobs.values() for o in job.targets}
    assert [r["msg_id"] for r in rows] == [carried[o] for o in FOLLOWERS]
