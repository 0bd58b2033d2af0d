"""Delivering notices to the citizen: the :class:`ReplySender` protocol and its WeChat and SMS adapters.

The service writes every notice to ``complaint_notices`` first and then the :class:`.outbox.Outbox` calls a
``ReplySender``; a failed send stays in the outbox and the sweep retries it.  ``key`` is stable per notice,
so an adapter can make a retry idempotent (WeChat template ``client_msg_id``, SMS ledger key).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from bot.adapters.wechat.api_client import WeChatAPI, WeChatAPIError
from bot.adapters.wechat.templates import template_data, time_value
from bot.domains.complaints.config import DEFAULT_TEMPLATE_FIELDS
from sms_gateway.compose import Templated

log = logging.getLogger(__name__)

#: WeChat errcodes meaning "customer-service messages cannot reach this user now".
CS_CLOSED_ERRCODES = frozenset({45015, 45047})


@dataclass(frozen=True)
class Recipient:
    number: str
    channel: str  # "wechat" | "sms" | "open311" | ...
    sender_id: str  # "wx:<openid>", "sms:+86...", ...
    phone: str | None


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class ReplySender(Protocol):
    async def send(self, recipient: Recipient, text: str, *, key: str) -> str:
        """Deliver ``text``; return how it went (e.g. ``"wechat_cs"``); raise :class:`DeliveryError`."""
        ...


def _openid(recipient: Recipient) -> str | None:
    channel, _, ident = recipient.sender_id.partition(":")
    return ident if channel == "wx" and ident else None


TEMPLATE_RESULT_HINT = "已答复，回复“查询投诉”查看"  # a thing value: at most 20 characters
TZ = ZoneInfo("Asia/Shanghai")


class WeChatReplySender:
    """Customer-service text first; outside the 48-hour window a template message (when configured).

    A template cannot carry the reply itself (``thing`` values hold 20 characters): it tells the citizen
    that the complaint was answered; the full text is theirs when they reply “查询投诉 编号” (which also
    reopens the customer-service window), or on the detail page at ``detail_url``."""

    def __init__(
        self,
        api: WeChatAPI,
        template_id: str | None = None,
        detail_url: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        self._api = api
        self._template_id = template_id
        self._url = detail_url
        self._fields = dict(fields or DEFAULT_TEMPLATE_FIELDS)

    async def send(self, recipient: Recipient, text: str, *, key: str) -> str:
        openid = _openid(recipient)
        if openid is None:
            raise DeliveryError("not a WeChat recipient", retryable=False)
        try:
            await self._api.send_text(openid, text)
            return "wechat_cs"
        except WeChatAPIError as exc:
            if exc.errcode not in CS_CLOSED_ERRCODES or not self._template_id:
                raise DeliveryError(f"wechat errcode {exc.errcode}", retryable=exc.errcode < 0) from exc
        values = {
            "number": recipient.number,
            "status": "已答复",
            "result": text if len(text) <= 20 else TEMPLATE_RESULT_HINT,
            "time": time_value(datetime.now(TZ)),
        }
        data = template_data(values, self._fields)
        try:
            await self._api.send_template(openid, self._template_id, data, url=self._url, client_msg_id=key)
        except WeChatAPIError as exc:
            raise DeliveryError(f"wechat template errcode {exc.errcode}", retryable=exc.errcode < 0) from exc
        return "wechat_template"


class SmsOutboxLike(Protocol):
    async def send(
        self,
        to: str,
        texts: str | Sequence[str],
        *,
        purpose: Any,
        key: str | None = None,
        templated: Templated | None = None,
    ) -> list[Any]: ...


class SmsReplySender:
    """Through the SMS outbox (``sms_gateway.outbox.SmsOutbox``): idempotent by ``key``, honours opt-outs."""

    def __init__(self, outbox: SmsOutboxLike) -> None:
        self._outbox = outbox

    async def send(self, recipient: Recipient, text: str, *, key: str) -> str:
        from sms_gateway.models import LedgerStatus, Purpose

        channel, _, ident = recipient.sender_id.partition(":")
        phone = ident if channel == "sms" and ident else recipient.phone
        if not phone:
            raise DeliveryError("no phone number", retryable=False)
        entries = await self._outbox.send(
            phone,
            text,
            purpose=Purpose.NOTIFICATION,
            key=f"complaint:{key}",
            templated=_templated(recipient, text, key),
        )
        statuses = {str(getattr(e, "status", "")) for e in entries}
        if LedgerStatus.SUPPRESSED in statuses:
            raise DeliveryError("recipient opted out of SMS", retryable=False)
        if statuses and statuses <= {LedgerStatus.FAILED}:
            raise DeliveryError("SMS rejected by the provider", retryable=False)
        return "sms"


def _templated(recipient: Recipient, text: str, key: str) -> Templated | None:
    """A staff reply in the ``complaint_reply`` template's terms (for SMS providers that send only templates;
    a reply longer than the template's variable is sent whole as chat replies instead)."""
    if key.split(":")[1:2] != ["reply"] or "已答复：\n" not in text:
        return None
    answer = text.split("已答复：\n", 1)[1].rsplit("\n", 1)[0].strip()
    return Templated("complaint_reply", {"number": recipient.number, "summary": answer})


class ChannelReplySender:
    """Sends on the channel the complaint came from; falls back to SMS when WeChat cannot reach the citizen
    and a phone is on file."""

    def __init__(self, wechat: ReplySender | None = None, sms: ReplySender | None = None) -> None:
        self._wechat = wechat
        self._sms = sms

    async def send(self, recipient: Recipient, text: str, *, key: str) -> str:
        primary = self._wechat if recipient.sender_id.startswith("wx:") else self._sms
        if recipient.sender_id.startswith("wx:") or recipient.sender_id.startswith("sms:"):
            if primary is not None:
                try:
                    return await primary.send(recipient, text, key=key)
                except DeliveryError as exc:
                    if primary is self._sms or self._sms is None or not recipient.phone:
                        raise
                    log.info("WeChat delivery of %s failed (%s); falling back to SMS", recipient.number, exc)
        if self._sms is not None and recipient.phone:
            return await self._sms.send(recipient, text, key=key)
        raise DeliveryError("no channel can reach this citizen", retryable=False)
