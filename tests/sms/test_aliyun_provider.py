"""The Alibaba Cloud provider against the Aliyun fake, through the official SDK: a text rendered from a
registered template is sent as that template, every answer code reaches the ledger as its outcome, a lost
answer is reconciled with QuerySendDetails, and the pushes are read behind their URL token."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sms_gateway.aliyun.fake import FakeAliyun, Template, build_app
from sms_gateway.aliyun.provider import AliyunProvider
from sms_gateway.aliyun.templates import TemplateRegistry
from sms_gateway.provider import (
    Ambiguous,
    Deferred,
    DeliveryState,
    Failure,
    OutboundRequest,
    Rejected,
    RetryLater,
    WebhookRejected,
    WebhookRequest,
)

KEY_ID, SECRET, SIGN, TOKEN = (
    "LTAI5tProviderTest00000",
    "provider-test-secret",
    "县行政服务中心",
    "push-token-1",
)
REGISTRY = TemplateRegistry.load()
STATUS_TEXT = "【县行政服务中心】您好，您的办件202611030000152当前状态：已受理。详询0797-3322110"


@pytest.fixture
async def aliyun(aiohttp_server):
    fake = FakeAliyun(
        {KEY_ID: SECRET}, signs={SIGN},
        templates={t.code: Template(t.content, status=t.status) for t in REGISTRY.templates.values()},
    )  # fmt: skip
    server = await aiohttp_server(build_app(fake))
    provider = AliyunProvider.connect(
        KEY_ID, SECRET, f"http://127.0.0.1:{server.port}", REGISTRY, SIGN, TOKEN
    )
    return fake, provider


def outbound(body: str = STATUS_TEXT, to: str = "+8613800000001", attempt: int = 1) -> OutboundRequest:
    return OutboundRequest("L7", attempt, to, body, "http://127.0.0.1/sms/aliyun/status?lid=L7&n=1")


async def test_a_templated_text_is_sent_as_its_template(aliyun) -> None:
    fake, provider = aliyun
    receipt = await provider.send(outbound())
    assert receipt.state is DeliveryState.ACCEPTED and receipt.provider_sid == fake.sent[0].biz_id
    sent = fake.sent[0]
    assert (sent.template_code, sent.phone, sent.out_id) == ("SMS_480001", "13800000001", "L7:1")
    assert sent.content == STATUS_TEXT  # what the citizen gets is what the ledger holds


@pytest.mark.parametrize(
    ("label", "request_", "raises", "failure"),
    [
        ("free text no template renders", outbound("【县行政服务中心】随便写的一段通知"), Rejected,
         Failure.PERMANENT),
        ("not a mainland mobile", outbound(to="+15005550006"), Rejected, Failure.PERMANENT),
    ],
)  # fmt: skip
async def test_what_cannot_go_as_a_template_is_refused_before_the_call(
    aliyun, label: str, request_: OutboundRequest, raises: type[Exception], failure: Failure
) -> None:
    fake, provider = aliyun
    with pytest.raises(raises) as refused:
        await provider.send(request_)
    assert refused.value.failure is failure, label  # type: ignore[attr-defined]
    assert fake.sent == []


@pytest.mark.parametrize(
    ("code", "http_status", "raises"),
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", 200, Rejected),
        ("isv.TEMPLATE_MISSING_PARAMETERS", 200, Rejected),
        ("isv.BUSINESS_LIMIT_CONTROL", 200, Deferred),
        ("isv.AMOUNT_NOT_ENOUGH", 200, RetryLater),
        ("Throttling.User", 400, RetryLater),
        ("isp.SYSTEM_ERROR", 200, Ambiguous),
        ("InternalError", 500, Ambiguous),
    ],
)
async def test_each_answer_code_reaches_the_ledger_as_its_outcome(
    aliyun, code: str, http_status: int, raises: type[Exception]
) -> None:
    fake, provider = aliyun
    fake.injected.append((code, http_status))
    with pytest.raises(raises):
        await provider.send(outbound())


async def test_a_lost_answer_is_reconciled_by_the_details_query(aliyun) -> None:
    _, provider = aliyun
    await provider.send(outbound())
    since = datetime.now(UTC) - timedelta(minutes=1)
    found = await provider.find_sent("+8613800000001", STATUS_TEXT, since, exclude=set())
    assert found is not None and found.provider_sid == "L7:1" and found.state is DeliveryState.DELIVERED
    assert await provider.find_sent("+8613800000001", STATUS_TEXT, since, exclude={"L7:1"}) is None
    assert await provider.find_sent("+8613800000002", STATUS_TEXT, since, exclude=set()) is None


def push(body: object, token: str = TOKEN) -> WebhookRequest:
    return WebhookRequest(
        url="https://gov.example/sms/aliyun", headers={}, form={}, body=json.dumps(body).encode(),
        path_params={"token": token},
    )  # fmt: skip


async def test_pushes_are_read_behind_their_token(aliyun) -> None:
    _, provider = aliyun
    up = [
        {
            "phone_number": "13800000001",
            "content": "查询",
            "send_time": "",
            "dest_code": "1",
            "sequence_id": 7,
        }
    ]
    (message,) = provider.parse_inbound(push(up))
    assert (message.sender, message.text) == ("+8613800000001", "查询")
    with pytest.raises(WebhookRejected):
        provider.parse_inbound(push(up, token="guess"))
    report = [{"phone_number": "13800000001", "success": True, "err_code": "DELIVERED", "biz_id": "9^0",
               "out_id": "L7:1"}]  # fmt: skip
    (update,) = provider.parse_status(push(report))
    assert (update.ledger_id, update.attempt, update.state) == ("L7", 1, DeliveryState.DELIVERED)
    assert json.loads(provider.status_ack().body) == {"code": 0, "msg": "接收成功"}


NOTICE = "【县行政服务中心】张三您好：营业执照年报，请于6月30日前到县行政服务中心办理。详询0797-3322110"


def notice(n: int, to: str | None = None) -> OutboundRequest:
    return OutboundRequest(f"L{n}", 1, to or f"+86139{n:08d}", NOTICE, "", campaign_id="c1")


async def test_a_campaign_goes_in_send_batch_calls_of_at_most_100(aliyun) -> None:
    fake, provider = aliyun
    results = await provider.send_batch([notice(n) for n in range(150)])
    assert all(r.state is DeliveryState.ACCEPTED for r in results)
    assert len({r.provider_sid for r in results}) == 2  # two calls: 100 + 50
    assert len(fake.sent) == 150 and {s.out_id for s in fake.sent} == {"bc.c1"}


async def test_a_batch_refused_for_one_number_is_sent_number_by_number(aliyun) -> None:
    fake, provider = aliyun
    fake.earlier_today[("县行政服务中心", "SMS_480008", "13900000003")] = 50  # at its daily limit
    requests = [notice(n) for n in range(6)]
    requests[1] = notice(1, to="+8612345")  # not a mobile: refused before any call
    results = await provider.send_batch(requests)
    assert isinstance(results[1], Rejected) and isinstance(results[3], Deferred)
    assert [type(r).__name__ for r in results] == [
        "SendReceipt", "Rejected", "SendReceipt", "Deferred", "SendReceipt", "SendReceipt"
    ]  # fmt: skip
    assert sorted(s.phone for s in fake.sent) == ["13900000000", "13900000002", "13900000004", "13900000005"]


async def test_a_batch_whose_answer_is_lost_is_ambiguous_for_every_row(aliyun) -> None:
    fake, provider = aliyun
    fake.injected.append(("isp.SYSTEM_ERROR", 200))
    results = await provider.send_batch([notice(n) for n in range(3)])
    assert all(isinstance(r, Ambiguous) for r in results)
