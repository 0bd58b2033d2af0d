"""Alibaba Cloud SMS as an ``SmsProvider`` (dysmsapi 2017-05-25): the only module that calls its SDK.

Aliyun sends no free text, only approved templates.  The ledger keeps the text a citizen receives; this
provider finds the registered template that text was rendered from (:mod:`sms_gateway.aliyun.templates`:
each template's wording with its ``${var}`` slots read back) and sends ``TemplateCode`` + ``TemplateParam``.
A text no template renders is refused as permanent with a reason staff can act on — the composer must
render Aliyun messages from the registry.

* Sending: ``SendSms`` through the SDK's async client; the ``OutId`` is ``<ledger id>:<attempt>``, so a
  delivery report finds its row.  Answer codes → the ledger's outcomes (:mod:`sms_gateway.aliyun.codes`):
  flow control → ``Deferred`` past its window; throttling → ``RetryLater``; a bad number → ``Rejected``
  (permanent); balance or service → ``RetryLater`` (and logged as an error for the operator); server
  errors, timeouts → ``Ambiguous`` (reconciled with ``QuerySendDetails`` before any resend: sends are not
  idempotent).
* Reconciliation: ``QuerySendDetails`` for the number and the day, matched on the exact content.
* Webhooks: the SmsUp / SmsReport pushes (:mod:`sms_gateway.aliyun.pushes`), their path token checked in
  constant time; the answer is always ``{"code": 0, "msg": "接收成功"}`` (no synchronous replies).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.utils_models import Config

from bot.core.clock import utcnow
from sms_gateway.aliyun.codes import Outcome, meaning
from sms_gateway.aliyun.pushes import (
    ACK,
    Parsed,
    campaign_out_id,
    out_id,
    parse_sms_report,
    parse_sms_up,
    report_failure,
    token_ok,
)
from sms_gateway.aliyun.templates import Template, TemplateRegistry
from sms_gateway.config import SmsSettings
from sms_gateway.provider import (
    Ambiguous,
    Deferred,
    DeliveryState,
    Failure,
    HttpReply,
    InboundSms,
    OutboundRequest,
    Rejected,
    RetryLater,
    SendError,
    SendReceipt,
    StatusUpdate,
    SyncReply,
    WebhookRejected,
    WebhookRequest,
)

log = logging.getLogger(__name__)
_SIGNATURE = re.compile(r"^【[^】]{1,12}】")
_NATIONAL = re.compile(r"^\+86(1[3-9]\d{9})$")
BATCH_LIMIT = 100  # numbers per SendBatchSms call
# refusals of a whole batch call caused by one of its numbers (which one, Aliyun does not say)
PER_NUMBER_CODES = frozenset(
    {"isv.MOBILE_NUMBER_ILLEGAL", "isv.BUSINESS_LIMIT_CONTROL", "isv.BLACK_KEY_CONTROL_LIMIT"}
)
_SEND_STATUS = {1: DeliveryState.ACCEPTED, 2: DeliveryState.FAILED, 3: DeliveryState.DELIVERED}


class AliyunProvider:
    name = "aliyun"
    supports_sync_reply = False

    def __init__(
        self,
        client: Client,
        registry: TemplateRegistry,
        sign_name: str,
        push_token: str,
    ) -> None:
        self._client = client
        self._sign = sign_name
        self._token = push_token
        self._patterns = [(t, t.pattern) for t in registry.templates.values() if t.status == "approved"]

    @classmethod
    def connect(
        cls,
        key_id: str,
        secret: str,
        endpoint: str,
        registry: TemplateRegistry,
        sign_name: str,
        push_token: str,
    ) -> AliyunProvider:
        """``endpoint``: ``dysmsapi.aliyuncs.com`` (HTTPS), or ``http://host:port`` for the local fake."""
        protocol = "http" if endpoint.startswith("http://") else "https"
        host = re.sub(r"^https?://", "", endpoint).rstrip("/")
        config = Config(access_key_id=key_id, access_key_secret=secret, endpoint=host, protocol=protocol)
        return cls(Client(config), registry, sign_name, push_token)

    @classmethod
    def from_settings(cls, settings: SmsSettings) -> AliyunProvider:
        registry = TemplateRegistry.load(settings.aliyun_templates)
        return cls.connect(
            settings.aliyun_access_key_id,
            settings.aliyun_access_key_secret.get_secret_value(),
            settings.aliyun_endpoint,
            registry,
            settings.signature,
            settings.aliyun_push_token.get_secret_value(),
        )

    # ------------------------------------------------------------------------------------------ sending

    def match(self, text: str) -> tuple[Template, dict[str, str]] | None:
        """The approved template ``text`` was rendered from, and its variables' values."""
        body = _SIGNATURE.sub("", text, count=1)
        for template, pattern in self._patterns:
            found = pattern.match(body)
            if found is not None:
                return template, {k: v for k, v in found.groupdict().items()}
        return None

    async def send(self, request: OutboundRequest) -> SendReceipt:
        matched = self.match(request.body)
        if matched is None:
            raise Rejected(
                "短信内容不符合任何已审核的阿里云模板，请用模板清单中的模板撰写", None, Failure.PERMANENT
            )
        national = _NATIONAL.match(request.to)
        if national is None:
            raise Rejected(f"阿里云短信只发往大陆手机号：{request.to[:4]}…", None, Failure.PERMANENT)
        template, params = matched
        call = models.SendSmsRequest(
            phone_numbers=national.group(1), sign_name=self._sign, template_code=template.code,
            template_param=json.dumps(params, ensure_ascii=False),
            out_id=out_id(request.ledger_id, request.attempt),
        )  # fmt: skip
        return self._receipt(*await _answer(self._client.send_sms_async(call)))

    async def send_batch(self, requests: Sequence[OutboundRequest]) -> list[SendReceipt | SendError]:
        """A campaign's rows in ``SendBatchSms`` calls of at most 100 numbers per template.  Aliyun refuses
        a whole call for one bad number or one number over its flow-control limit, without saying which:
        such a call is split into ``SendSms`` per number, so each row gets its own outcome."""
        results: dict[int, SendReceipt | SendError] = {}
        groups: dict[tuple[str, str], list[tuple[int, OutboundRequest, str, dict[str, str]]]] = {}
        for n, request in enumerate(requests):
            matched, national = self.match(request.body), _NATIONAL.match(request.to)
            if matched is None or national is None or not request.campaign_id:
                results[n] = await self._outcome(self.send(request))
                continue
            template, params = matched
            groups.setdefault((template.code, request.campaign_id), []).append(
                (n, request, national.group(1), params)
            )
        for (code, campaign), rows in groups.items():
            for start in range(0, len(rows), BATCH_LIMIT):
                chunk = rows[start : start + BATCH_LIMIT]
                for (n, _, _, _), outcome in zip(
                    chunk, await self._send_chunk(code, campaign, chunk), strict=True
                ):
                    results[n] = outcome
        return [results[n] for n in range(len(requests))]

    async def _send_chunk(
        self, code: str, campaign: str, chunk: list[tuple[int, OutboundRequest, str, dict[str, str]]]
    ) -> list[SendReceipt | SendError]:
        call = models.SendBatchSmsRequest(
            phone_number_json=json.dumps([phone for _, _, phone, _ in chunk]),
            sign_name_json=json.dumps([self._sign] * len(chunk), ensure_ascii=False),
            template_code=code,
            template_param_json=json.dumps([params for _, _, _, params in chunk], ensure_ascii=False),
            out_id=campaign_out_id(campaign),
        )
        try:
            answer = await _answer(self._client.send_batch_sms_async(call))
        except Ambiguous as exc:
            return [exc] * len(chunk)
        if answer[0] in PER_NUMBER_CODES and len(chunk) > 1:  # which number is unknown: one call each
            return [await self._outcome(self.send(request)) for _, request, _, _ in chunk]
        outcome: SendReceipt | SendError
        try:
            outcome = self._receipt(*answer)
        except SendError as exc:
            outcome = exc
        return [outcome] * len(chunk)

    @staticmethod
    async def _outcome(send: Awaitable[SendReceipt]) -> SendReceipt | SendError:
        try:
            return await send
        except SendError as exc:
            return exc

    @staticmethod
    def _receipt(code: str, message: str, status: int, biz_id: str) -> SendReceipt:
        verdict = meaning(code, message, status)
        if verdict.outcome is Outcome.ACCEPTED:
            return SendReceipt(biz_id, DeliveryState.ACCEPTED, "OK")
        if verdict.outcome in (Outcome.INVALID_NUMBER, Outcome.PERMANENT):
            raise Rejected(f"aliyun {code}: {message}", None, Failure.PERMANENT)
        if verdict.outcome is Outcome.STOP:
            log.error("aliyun account cannot send; stop and alert", extra={"code": code})
            raise RetryLater(f"aliyun {code}: {message}")
        if verdict.outcome is Outcome.DEFER:  # this number's flow-control window: not before it has passed
            until = utcnow() + timedelta(seconds=verdict.defer_seconds)
            raise Deferred(f"aliyun {code}: {message}", until)
        if verdict.outcome is Outcome.BACK_OFF:
            raise RetryLater(f"aliyun {code}: {message}")
        raise Ambiguous(f"aliyun {code}: {message}")

    async def find_sent(
        self, to: str, body: str, since: datetime, exclude: Collection[str]
    ) -> SendReceipt | None:
        national = _NATIONAL.match(to)
        if national is None:
            return None
        wanted = f"【{self._sign}】{_SIGNATURE.sub('', body, count=1)}"
        day = since
        while day.date() <= (since + timedelta(days=1)).date():
            query = models.QuerySendDetailsRequest(
                phone_number=national.group(1), send_date=day.strftime("%Y%m%d"), page_size=50, current_page=1
            )
            try:
                response = await self._client.query_send_details_async(query)
            except Exception as exc:
                raise SendError(f"aliyun QuerySendDetails: {type(exc).__name__}") from exc
            if response.body.code != "OK":
                raise SendError(f"aliyun QuerySendDetails: {response.body.code}")
            dtos = response.body.sms_send_detail_dtos
            for row in (dtos.sms_send_detail_dto if dtos else None) or []:
                if row.content == wanted and (row.out_id or "") not in exclude:
                    # the details carry no BizId: the OutId (ledger id and attempt) stands for it, and the
                    # delivery reports find the row by it too
                    state = _SEND_STATUS.get(row.send_status or 1, DeliveryState.ACCEPTED)
                    failure = (
                        report_failure(str(row.err_code or "")) if state is DeliveryState.FAILED else None
                    )
                    return SendReceipt(row.out_id or "", state, str(row.err_code or ""), failure=failure)
            day += timedelta(days=1)
        return None

    # ------------------------------------------------------------------------------------------ webhooks

    def paths(self) -> tuple[str, str]:
        """SmsUp and SmsReport push paths; ``{token}`` is ``ALIYUN_SMS_PUSH_TOKEN`` (pushes are unsigned)."""
        return f"/sms/{self.name}/{{token}}/up", f"/sms/{self.name}/{{token}}/report"

    def parse_inbound(self, request: WebhookRequest) -> Sequence[InboundSms]:
        return self._read(request, parse_sms_up, "SmsUp").inbound

    def parse_status(self, request: WebhookRequest) -> Sequence[StatusUpdate]:
        return self._read(request, parse_sms_report, "SmsReport").reports

    def _read(self, request: WebhookRequest, parse: Callable[[bytes], Parsed], kind: str) -> Parsed:
        if not token_ok(request.path_params.get("token", ""), self._token):
            raise WebhookRejected("push token missing or wrong")
        parsed = parse(request.body)
        for reason in parsed.set_aside:
            log.warning(f"aliyun {kind} record set aside", extra={"reason": reason})
        return parsed

    def sync_reply(self, messages: Sequence[SyncReply]) -> HttpReply:
        return HttpReply(200, "application/json", json.dumps(ACK, ensure_ascii=False))

    def status_ack(self) -> HttpReply:
        return HttpReply(200, "application/json", json.dumps(ACK, ensure_ascii=False))

    async def close(self) -> None:
        return None


async def _answer(call: Awaitable[Any]) -> tuple[str, str, int, str]:
    """Aliyun's answer to a send call as (Code, Message, HTTP status, BizId): errors arrive as HTTP 200 with a
    Code, or as the SDK's exceptions carrying one.  No answer at all (timeout, connection error) is
    ``Ambiguous``: the message may or may not have been accepted."""
    try:
        response = await call
    except Exception as exc:  # the SDK's Client/Server/Throttling exceptions, timeouts, connection errors
        code = str(getattr(exc, "code", "") or "")
        if not code:
            raise Ambiguous(f"aliyun: {type(exc).__name__}") from exc
        return code, str(exc)[:200], int(getattr(exc, "status_code", 0) or 0), ""
    body = response.body
    return body.code or "", body.message or "", response.status_code or 200, body.biz_id or ""
