"""The Aliyun SMS fake answers the official SDK's real requests (``alibabacloud_dysmsapi20170525``) as
Alibaba Cloud does: signatures checked, refusals as HTTP 200 with a Code, flow control, batch sends and the
send-details query — table-driven, one request per case."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config

from sms_gateway.aliyun.fake import DAILY_LIMIT, FakeAliyun, Template, build_app

KEY_ID, SECRET = "LTAI5tFakeKeyId0000000000", "fake-secret-0000000000000000000"
SIGN = "信丰县政务服务"
NOTICE = "SMS_480001"  # 您好，您的办件${ticket}当前状态：${status}。详询0797-3322110
TEMPLATES = {
    NOTICE: Template("您好，您的办件${ticket}当前状态：${status}。详询0797-3322110"),
    "SMS_480002": Template("您好，${name}，会议改期至${date}。", status="pending"),
}


@pytest.fixture
async def aliyun(aiohttp_server):
    fake = FakeAliyun({KEY_ID: SECRET}, signs={SIGN}, templates=dict(TEMPLATES))
    server = await aiohttp_server(build_app(fake))

    def client(secret: str = SECRET) -> Client:
        config = Config(access_key_id=KEY_ID, access_key_secret=secret,
                        endpoint=f"127.0.0.1:{server.port}", protocol="http")  # fmt: skip
        return Client(config)

    return fake, client


def send(
    phones: str, params: dict[str, Any], template: str = NOTICE, sign: str = SIGN
) -> models.SendSmsRequest:
    return models.SendSmsRequest(
        phone_numbers=phones, sign_name=sign, template_code=template,
        template_param=json.dumps(params, ensure_ascii=False), out_id="L1",
    )  # fmt: skip


@dataclass
class Case:
    label: str
    request: models.SendSmsRequest
    code: str


OK_PARAMS = {"ticket": "202611030000152", "status": "已受理"}
CASES = [
    Case("accepted", send("13800000001", OK_PARAMS), "OK"),
    Case("+86 prefixes", send("+8613800000001,008613800000002,8613800000003", OK_PARAMS), "OK"),
    Case("not a mobile", send("07973322110", OK_PARAMS), "isv.MOBILE_NUMBER_ILLEGAL"),
    Case("unknown signature", send("13800000001", OK_PARAMS, sign="某某公司"), "isv.SMS_SIGNATURE_ILLEGAL"),
    Case("template pending approval", send("13800000001", {"name": "张", "date": "明天"}, "SMS_480002"),
         "isv.SMS_TEMPLATE_ILLEGAL"),
    Case("a variable missing", send("13800000001", {"ticket": "1"}), "isv.TEMPLATE_MISSING_PARAMETERS"),
    Case("a variable over 35 characters", send("13800000001", {**OK_PARAMS, "status": "办" * 36}),
         "isv.PARAM_LENGTH_LIMIT"),
    Case("a URL in a variable", send("13800000001", {**OK_PARAMS, "status": "见 http://x.cn"}),
         "isv.PARAM_NOT_SUPPORT_URL"),
    Case("a number for a variable", send("13800000001", {**OK_PARAMS, "status": 3}),
         "isv.INVALID_JSON_PARAM"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
async def test_send_sms(aliyun, case: Case) -> None:
    fake, client = aliyun
    response = await client().send_sms_async(case.request)
    assert response.status_code == 200  # refusals too: Aliyun answers them with a Code, not an HTTP error
    assert response.body.code == case.code, response.body.to_map()
    if case.code == "OK":
        assert response.body.biz_id and fake.sent[-1].biz_id == response.body.biz_id
        assert (
            fake.sent[-1].content
            == f"【{SIGN}】您好，您的办件202611030000152当前状态：已受理。详询0797-3322110"
        )
    else:
        assert fake.sent == []


async def test_a_wrong_secret_is_refused_as_aliyun_refuses_it(aliyun) -> None:
    fake, client = aliyun
    with pytest.raises(ClientException) as refused:
        await client("not-the-secret").send_sms_async(send("13800000001", OK_PARAMS))
    assert refused.value.code == "SignatureDoesNotMatch" and refused.value.status_code == 400
    assert fake.sent == []


async def test_per_number_flow_control(aliyun) -> None:
    _, client = aliyun
    for _ in range(DAILY_LIMIT):
        assert (await client().send_sms_async(send("13800000009", OK_PARAMS))).body.code == "OK"
    over = await client().send_sms_async(send("13800000009", OK_PARAMS))
    assert over.body.code == "isv.BUSINESS_LIMIT_CONTROL"
    other = await client().send_sms_async(send("13800000010", OK_PARAMS))
    assert other.body.code == "OK"  # the limit is per number


async def test_batch_send_and_the_details_query(aliyun) -> None:
    fake, client = aliyun
    batch = models.SendBatchSmsRequest(
        phone_number_json=json.dumps(["13800000001", "13800000002"]),
        sign_name_json=json.dumps([SIGN, SIGN], ensure_ascii=False),
        template_code=NOTICE,
        template_param_json=json.dumps([OK_PARAMS, {**OK_PARAMS, "status": "已办结"}], ensure_ascii=False),
    )
    response = await client().send_batch_sms_async(batch)
    assert response.body.code == "OK" and [s.phone for s in fake.sent] == ["13800000001", "13800000002"]
    assert "已办结" in fake.sent[1].content
    today = datetime.now(UTC).strftime("%Y%m%d")
    details = await client().query_send_details_async(
        models.QuerySendDetailsRequest(phone_number="13800000002", send_date=today, page_size=10,
                                       current_page=1, biz_id=response.body.biz_id)
    )  # fmt: skip
    rows = details.body.sms_send_detail_dtos.sms_send_detail_dto
    assert details.body.code == "OK" and len(rows) == 1
    assert rows[0].send_status == 3 and "已办结" in rows[0].content and rows[0].err_code == "DELIVERED"


async def test_injected_errors_come_back_as_aliyun_sends_them(aliyun) -> None:
    fake, client = aliyun
    fake.injected.extend([("isv.AMOUNT_NOT_ENOUGH", 200), ("isp.SYSTEM_ERROR", 500)])
    first = await client().send_sms_async(send("13800000001", OK_PARAMS))
    assert first.status_code == 200 and first.body.code == "isv.AMOUNT_NOT_ENOUGH"
    with pytest.raises(Exception) as server_error:
        await client().send_sms_async(send("13800000001", OK_PARAMS))
    assert getattr(server_error.value, "code", "") == "isp.SYSTEM_ERROR"
    assert (await client().send_sms_async(send("13800000001", OK_PARAMS))).body.code == "OK"


async def test_every_approved_example_template_fills_and_sends_through_the_fake(aiohttp_server) -> None:
    """The registry's composer and the fake's checks agree: what the composer lets through is accepted."""
    from sms_gateway.aliyun.fake import Template as FakeTemplate
    from sms_gateway.aliyun.templates import TemplateRegistry

    registry = TemplateRegistry.load()
    fake = FakeAliyun(
        {KEY_ID: SECRET}, signs={SIGN},
        templates={t.code: FakeTemplate(t.content, status=t.status) for t in registry.templates.values()},
    )  # fmt: skip
    server = await aiohttp_server(build_app(fake))
    client = Client(Config(access_key_id=KEY_ID, access_key_secret=SECRET,
                           endpoint=f"127.0.0.1:{server.port}", protocol="http"))  # fmt: skip
    values = {"ticket": "202611030000152", "status": "已受理", "number": "TS7KQ2", "days": "5",
              "summary": "已责成窗口整改", "item": "普通护照", "answer": "120元/本",
              "window": "10号窗口", "phone": "0797-3322110", "name": "张三", "matter": "营业执照年报",
              "deadline": "12月31日", "reply": "好的，请问还有什么可以帮您"}  # fmt: skip
    for kind, template in registry.templates.items():
        if template.status != "approved":
            continue
        message = registry.fill(kind, values)
        request = send("13800000001", message.params, template=message.code)
        response = await client.send_sms_async(request)
        assert response.body.code == "OK", (kind, response.body.to_map())
        assert fake.sent[-1].content == f"【{SIGN}】{message.text}"


async def test_reports_and_replies_are_pushed_and_retried_until_answered_with_code_0(aiohttp_server) -> None:
    """The fake pushes as Aliyun does: a JSON array per POST, again while the answer is not {"code": 0};
    what it pushes is what our push parser reads."""
    from aiohttp import web

    from sms_gateway.aliyun.pushes import ACK, parse_sms_report, parse_sms_up

    received: list[tuple[str, bytes]] = []

    async def endpoint(request: web.Request) -> web.Response:
        received.append((request.match_info["kind"], await request.read()))
        if len(received) == 1:
            return web.json_response({"code": 1, "msg": "busy"})  # Aliyun will try again
        return web.json_response(ACK)

    receiver = web.Application()
    receiver.router.add_post("/sms/aliyun/{kind}", endpoint)
    ours = await aiohttp_server(receiver)
    fake = FakeAliyun({KEY_ID: SECRET}, signs={SIGN}, templates=dict(TEMPLATES),
                      report_url=str(ours.make_url("/sms/aliyun/report")),
                      up_url=str(ours.make_url("/sms/aliyun/up")), push_delays=(0.0, 0.05, 0.05))  # fmt: skip
    server = await aiohttp_server(build_app(fake))
    client = Client(Config(access_key_id=KEY_ID, access_key_secret=SECRET,
                           endpoint=f"127.0.0.1:{server.port}", protocol="http"))  # fmt: skip
    sent = await client.send_sms_async(send("13800000001", OK_PARAMS))
    for _ in range(100):
        if fake.pushes:
            break
        await asyncio.sleep(0.02)
    assert fake.pushes and fake.pushes[0][0] == "SmsReport" and fake.pushes[0][2] == 2  # refused once, then 0
    assert received[0][1] == received[1][1]  # the same batch again
    (report,) = parse_sms_report(received[1][1]).reports
    assert report.provider_sid == sent.body.biz_id and report.recipient == "+8613800000001"
    async with aiohttp.ClientSession() as http:
        reply = {"phone": "13800000001", "content": "查询"}
        async with http.post(server.make_url("/_fake/reply"), json=reply) as r:
            assert r.status == 200
    for _ in range(100):
        if len(fake.pushes) == 2:
            break
        await asyncio.sleep(0.02)
    (inbound,) = parse_sms_up(received[-1][1]).inbound
    assert (inbound.sender, inbound.text) == ("+8613800000001", "查询")


def test_the_fake_runs_as_its_own_process_with_its_key_from_the_environment(tmp_path) -> None:
    import os
    import subprocess
    import sys
    import time

    from aiohttp.test_utils import unused_port

    from bot.core.config import ROOT

    port = unused_port()
    env = {**os.environ, "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
    args = [sys.executable, "-m", "sms_gateway.aliyun.fake", "--port", str(port), "--sign", SIGN]
    log = open(tmp_path / "fake.log", "wb")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        client = Client(Config(access_key_id=KEY_ID, access_key_secret=SECRET,
                               endpoint=f"127.0.0.1:{port}", protocol="http"))  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                response = client.send_sms(send("13800000001", OK_PARAMS, template="SMS_480001"))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert response.body.code == "OK"
        assert SECRET not in " ".join(proc.args)  # type: ignore[arg-type]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
