"""Alibaba Cloud SMS: what each answer code means for the ledger, and the SmsUp / SmsReport batch pushes
read into the provider-neutral inbound messages and status updates — table-driven."""

from __future__ import annotations

import json

import pytest

from sms_gateway.aliyun.codes import Outcome, meaning
from sms_gateway.aliyun.pushes import dedup_keys, out_id, parse_sms_report, parse_sms_up, token_ok
from sms_gateway.provider import DeliveryState, Failure, MalformedWebhook


@pytest.mark.parametrize(
    ("code", "message", "status", "outcome", "defer"),
    [
        ("OK", "OK", 200, Outcome.ACCEPTED, 0),
        ("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1", 200, Outcome.DEFER, 60),
        ("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5", 200, Outcome.DEFER, 3600),
        ("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:50", 200, Outcome.DEFER, 86400),
        ("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号", 200, Outcome.INVALID_NUMBER, 0),
        ("isv.AMOUNT_NOT_ENOUGH", "账户余额不足", 200, Outcome.STOP, 0),
        ("isv.OUT_OF_SERVICE", "业务停机", 200, Outcome.STOP, 0),
        ("isv.TEMPLATE_MISSING_PARAMETERS", "", 200, Outcome.PERMANENT, 0),
        ("isv.PARAM_LENGTH_LIMIT", "", 200, Outcome.PERMANENT, 0),
        ("isv.BLACK_KEY_CONTROL_LIMIT", "", 200, Outcome.PERMANENT, 0),
        ("isv.SMS_TEMPLATE_ILLEGAL", "", 200, Outcome.PERMANENT, 0),
        ("isv.SOMETHING_NEW", "", 200, Outcome.PERMANENT, 0),
        ("Throttling.User", "Request was denied due to user flow control.", 400, Outcome.BACK_OFF, 0),
        ("isp.SYSTEM_ERROR", "", 200, Outcome.AMBIGUOUS, 0),
        ("InternalError", "", 500, Outcome.AMBIGUOUS, 0),
        ("SomethingElse", "", 503, Outcome.AMBIGUOUS, 0),
    ],
)
def test_what_each_code_means(code: str, message: str, status: int, outcome: Outcome, defer: int) -> None:
    m = meaning(code, message, status)
    assert (m.outcome, m.defer_seconds) == (outcome, defer)


def up(**record: object) -> dict[str, object]:
    return {"phone_number": "13800000001", "content": "查询", "send_time": "2026-12-07 10:00:00",
            "dest_code": "1234", "sequence_id": 1001, **record}  # fmt: skip


@pytest.mark.parametrize(
    ("label", "body", "senders", "set_aside"),
    [
        ("one reply", [up()], ["+8613800000001"], 0),
        ("a batch, sequence ids as string and number",
         [up(), up(sequence_id="1002", phone_number="+8613900000002")],
         ["+8613800000001", "+8613900000002"], 0),
        ("a single object", up(), ["+8613800000001"], 0),
        ("an older record with sign_name", [up(sign_name="信丰县政务服务")], ["+8613800000001"], 0),
        ("one unreadable record in a batch", [up(), up(phone_number="abc"), "x"], ["+8613800000001"], 2),
        ("no sequence id", [up(sequence_id=None)], [], 1),
    ],
)  # fmt: skip
def test_sms_up(label: str, body: object, senders: list[str], set_aside: int) -> None:
    parsed = parse_sms_up(json.dumps(body, ensure_ascii=False).encode())
    assert [m.sender for m in parsed.inbound] == senders, label
    assert len(parsed.set_aside) == set_aside, label
    assert all(m.message_id.startswith("aliyun-up-") for m in parsed.inbound)


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b'"text"', b"42"])
def test_a_push_that_is_no_json_array_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        parse_sms_up(body)
    with pytest.raises(MalformedWebhook):
        parse_sms_report(body)


def report(**record: object) -> dict[str, object]:
    return {"phone_number": "13800000001", "send_time": "2026-12-07 10:00:00",
            "report_time": "2026-12-07 10:00:05", "success": True, "err_code": "DELIVERED",
            "err_msg": "用户接收成功", "sms_size": "1", "biz_id": "932702304080415357^0",
            "out_id": out_id("L42", 1), **record}  # fmt: skip


@pytest.mark.parametrize(
    ("label", "record", "state", "failure"),
    [
        ("delivered", report(), DeliveryState.DELIVERED, None),
        ("success as a string", report(success="true"), DeliveryState.DELIVERED, None),
        ("refused by the user", report(success=False, err_code="USER_REJECT"), DeliveryState.FAILED,
         Failure.OPTED_OUT),
        ("no such number", report(success=False, err_code="MOBILE_NOT_ON_SERVICE"), DeliveryState.FAILED,
         Failure.PERMANENT),
        ("handset off", report(success=False, err_code="MK:0001"), DeliveryState.FAILED, Failure.TRANSIENT),
    ],
)  # fmt: skip
def test_sms_report(
    label: str, record: dict[str, object], state: DeliveryState, failure: Failure | None
) -> None:
    parsed = parse_sms_report(json.dumps([record], ensure_ascii=False).encode())
    (update,) = parsed.reports
    assert (update.state, update.failure) == (state, failure), label
    assert (update.ledger_id, update.attempt, update.recipient) == ("L42", 1, "+8613800000001")


def test_a_repeated_push_has_the_same_dedup_keys() -> None:
    body = json.dumps([report(), report(phone_number="13900000002")]).encode()
    assert dedup_keys(parse_sms_report(body)) == dedup_keys(parse_sms_report(body))
    assert len(set(dedup_keys(parse_sms_report(body)))) == 2


def test_the_path_token_is_compared_in_constant_time_and_never_empty() -> None:
    assert token_ok("s3cret-token", "s3cret-token")
    assert not token_ok("s3cret-tokeN", "s3cret-token") and not token_ok("", "")
