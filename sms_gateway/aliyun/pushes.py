"""Alibaba Cloud's HTTP batch pushes: citizens' replies (SmsUp) and delivery reports (SmsReport).

Each push is a JSON array of records in one POST; pushes are retried while we answer anything but
``{"code": 0}`` and may repeat, and they are **not signed** — the endpoint's secret path token is the only
proof of origin, checked in constant time.  A record that cannot be read is set aside (logged by the
caller) rather than failing its batch: answering non-zero would only make Aliyun resend the same bytes.

* SmsUp: ``phone_number``, ``content``, ``send_time``, ``dest_code``, ``sequence_id`` (a string or a
  number; older pages add ``sign_name``).  A reply carries no BizId: it is tied to the sender's number.
  Dedup key: ``sequence_id``.
* SmsReport: ``phone_number``, ``send_time``, ``report_time``, ``success``, ``err_code``, ``err_msg``,
  ``sms_size``, ``biz_id``, ``out_id``.  Our ``OutId`` is ``<ledger id>:<attempt>``, so a report finds its
  ledger row even when the BizId was never stored; a campaign's SendBatchSms call carries ``bc.<campaign>``
  and its reports find the row by campaign and number.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sms_gateway.provider import DeliveryState, Failure, InboundSms, MalformedWebhook, StatusUpdate

ACK = {"code": 0, "msg": "接收成功"}
_MOBILE = re.compile(r"^(?:\+?86|0086)?(1[3-9]\d{9})$")
_OUT_ID = re.compile(r"^([\w-]{1,64}):(\d{1,4})$")
_CAMPAIGN_OUT_ID = re.compile(r"^bc\.([\w-]{1,64})$")
_OPTED_OUT = re.compile(r"REJECT|BLACK|UNSUBSCRIB|退订", re.IGNORECASE)
_NO_SUCH_NUMBER = re.compile(
    r"NOT_EXIST|NOT_ON_SERVICE|IS_CLOSE|EMPTY|NUMBER_ILLEGAL|空号|停机", re.IGNORECASE
)


@dataclass
class Parsed:
    inbound: list[InboundSms] = field(default_factory=list)
    reports: list[StatusUpdate] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)  # why each unreadable record was left out


def token_ok(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _records(body: bytes) -> list[Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedWebhook(f"not JSON: {type(exc).__name__}") from None
    if isinstance(data, dict):  # a single record, as some pages show it
        data = [data]
    if not isinstance(data, list):
        raise MalformedWebhook("not a JSON array of records")
    return data


def _e164(value: Any) -> str | None:
    match = _MOBILE.match(str(value or "").strip())
    return f"+86{match.group(1)}" if match else None


def _text(record: dict[str, Any], name: str, limit: int = 2000) -> str:
    value = record.get(name)
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value)[:limit]


def parse_sms_up(body: bytes) -> Parsed:
    out = Parsed()
    for n, record in enumerate(_records(body)):
        if not isinstance(record, dict):
            out.set_aside.append(f"record {n}: not an object")
            continue
        sender = _e164(record.get("phone_number"))
        sequence = record.get("sequence_id")
        if sender is None or sequence in (None, "") or isinstance(sequence, (dict, list, bool)):
            out.set_aside.append(f"record {n}: no phone_number or sequence_id")
            continue
        out.inbound.append(
            InboundSms(
                message_id=f"aliyun-up-{sequence}",
                sender=sender,
                recipient=_text(record, "dest_code", 32),
                text=_text(record, "content"),
                metadata={
                    "send_time": _text(record, "send_time", 32),
                    "sign_name": _text(record, "sign_name", 32),
                },
            )
        )
    return out


def report_failure(err_code: str) -> Failure:
    if _OPTED_OUT.search(err_code):
        return Failure.OPTED_OUT
    if _NO_SUCH_NUMBER.search(err_code):
        return Failure.PERMANENT
    return Failure.TRANSIENT


def parse_sms_report(body: bytes) -> Parsed:
    out = Parsed()
    for n, record in enumerate(_records(body)):
        if not isinstance(record, dict):
            out.set_aside.append(f"record {n}: not an object")
            continue
        biz_id, success = _text(record, "biz_id", 64), record.get("success")
        if not biz_id or not isinstance(success, (bool, str)):
            out.set_aside.append(f"record {n}: no biz_id or success")
            continue
        delivered = success is True or str(success).lower() == "true"
        err_code = _text(record, "err_code", 64) or ("DELIVERED" if delivered else "UNKNOWN")
        ledger = _OUT_ID.match(_text(record, "out_id", 80))
        campaign = _CAMPAIGN_OUT_ID.match(_text(record, "out_id", 80))
        out.reports.append(
            StatusUpdate(
                provider_sid=biz_id,
                state=DeliveryState.DELIVERED if delivered else DeliveryState.FAILED,
                provider_status=err_code,
                ledger_id=ledger.group(1) if ledger else None,
                attempt=int(ledger.group(2)) if ledger else None,
                failure=None if delivered else report_failure(err_code),
                recipient=_e164(record.get("phone_number")),
                campaign_id=campaign.group(1) if campaign else None,
            )
        )
    return out


def out_id(ledger_id: str, attempt: int) -> str:
    """The ``OutId`` we send with a message (what its report brings back)."""
    return f"{ledger_id}:{attempt}"


def campaign_out_id(campaign_id: str) -> str:
    """The ``OutId`` of a SendBatchSms call for one campaign (one OutId per call: the report finds the
    row by campaign and number, the ledger's one row per campaign and recipient)."""
    return f"bc.{campaign_id}"


def dedup_keys(parsed: Parsed) -> Sequence[str]:
    """Keys a repeated push is recognised by: the SmsUp sequence id, or BizId + number for a report."""
    return [m.message_id for m in parsed.inbound] + [
        f"aliyun-report-{r.provider_sid}-{r.recipient}-{r.state}" for r in parsed.reports
    ]
