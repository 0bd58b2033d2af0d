"""Twilio as an ``SmsProvider``: the only module of the SMS channel that imports the ``twilio`` package.

* Sending: one ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` on the gateway's shared aiohttp
  session, with the form fields, headers and error parsing of ``Client.messages.create_async`` — but
  without the SDK's request and resource layers, which cost more CPU per message than the HTTP call itself
  (it matters at 1,000 broadcast messages a second).  Never retried here: a retried POST could send a
  message twice; the ledger decides about retries.  ``TWILIO_API_BASE`` replaces
  ``https://api.twilio.com`` (the fake, or a regional edge).
* Reconciliation: ``messages.list_async(to=...)``, newest first, matched on the exact body.
* Webhooks: ``RequestValidator`` over the public URL and the form fields; ``MessagingResponse`` (TwiML) for
  synchronous replies, each ``<Message action=...>`` carrying our status URL so the reply's status
  callbacks reach the ledger row.
* Error codes → ``Failure``: 21610 opted out; 21211/21612/21614/30004/30005/30006/30007 permanent;
  30001/30003/30008 transient (capped retries).  HTTP 429, 401/403/404 → ``RetryLater`` (not processed);
  5xx, timeouts and connection errors → ``Ambiguous`` (reconcile before any resend).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import platform
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio import __version__ as twilio_version
from twilio.base.deserialize import rfc2822_datetime
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from sms_gateway.config import SmsSettings
from sms_gateway.provider import (
    Ambiguous,
    DeliveryState,
    Failure,
    HttpReply,
    InboundSms,
    MalformedWebhook,
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

try:  # twilio >= 9.x with SharedKey webhook signatures
    from twilio.base.exceptions import TwilioServiceException
except ImportError:  # pragma: no cover - older twilio
    TwilioServiceException = TwilioRestException
try:
    from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, get_signature_algorithm
except ImportError:  # pragma: no cover - older twilio
    SIGNATURE_SETTINGS_HEADER = ""
    get_signature_algorithm = None

SIGNATURE_HEADER = "X-Twilio-Signature"
# The twilio HTTP client logs every request line (with phone numbers in query strings) at INFO: keep it
# at WARNING so no unmasked number reaches the logs.
_HTTP_LOG = logging.getLogger("sms_gateway.twilio.http")
_HTTP_LOG.setLevel(logging.WARNING)

FAILURES: dict[int, Failure] = {
    21610: Failure.OPTED_OUT,  # Attempt to send to unsubscribed recipient
    21211: Failure.PERMANENT,  # Invalid 'To' Phone Number
    21408: Failure.PERMANENT,  # Permission to send to this region is not enabled
    21612: Failure.PERMANENT,  # The 'To' phone number is not currently reachable via SMS
    21614: Failure.PERMANENT,  # 'To' number is not a valid mobile number
    30004: Failure.PERMANENT,  # Message blocked
    30005: Failure.PERMANENT,  # Unknown destination handset
    30006: Failure.PERMANENT,  # Landline or unreachable carrier
    30007: Failure.PERMANENT,  # Message filtered (carrier)
    30001: Failure.TRANSIENT,  # Queue overflow
    30003: Failure.TRANSIENT,  # Unreachable destination handset
    30008: Failure.TRANSIENT,  # Unknown error
}

STATES: dict[str, DeliveryState | None] = {
    "accepted": DeliveryState.ACCEPTED,
    "scheduled": DeliveryState.ACCEPTED,
    "queued": DeliveryState.ACCEPTED,
    "sending": DeliveryState.ACCEPTED,
    "sent": DeliveryState.SENT,
    "partially_delivered": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED,
    "undelivered": DeliveryState.FAILED,
    "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,
    "receiving": None,
    "received": None,
}


def failure_for(code: int | None) -> Failure:
    return FAILURES.get(code, Failure.PERMANENT) if code is not None else Failure.PERMANENT


def _int(value: Any) -> int | None:
    """A number Twilio sent (error code, segments, our attempt number), or None when it is none: not a
    number, or out of the 32-bit range of the columns it goes to (a 500 from the database otherwise)."""
    try:
        number = int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and -(2**31) <= number < 2**31 else None


class SharedSessionTwilioHttpClient(AsyncTwilioHttpClient):
    """``AsyncTwilioHttpClient`` on a shared aiohttp session: no retries, the timeout applied to every
    request (the stock client only uses a per-call timeout, so without one a call could hang forever), and
    a quiet logger (its request logging would write phone numbers)."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        super().__init__(pool_connections=False, timeout=timeout, logger=_HTTP_LOG, max_retries=None)
        self.session = session

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the twilio HttpClient signature
        allow_redirects: bool = False,
    ) -> Response:
        if auth is not None:  # as a header: aiohttp 3.14 deprecates BasicAuth objects
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        return await super().request(
            method, url, params, data, headers, None, timeout or self.timeout, allow_redirects
        )

    async def close(self) -> None:
        """The session belongs to the gateway."""


class TwilioProvider:
    name = "twilio"
    supports_sync_reply = True

    def __init__(self, settings: SmsSettings, http: aiohttp.ClientSession) -> None:
        self._s = settings
        self._validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
        self._timeout = settings.send_timeout
        self._http = SharedSessionTwilioHttpClient(http, settings.send_timeout)
        self._client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=self._http,
            # not os.environ: TWILIO_EDGE/TWILIO_REGION there would rewrite the API host
            environment={"TWILIO_ACCOUNT_SID": settings.twilio_account_sid},
        )
        self._client.api.base_url = settings.twilio_api_base
        self._session = http
        account = settings.twilio_account_sid
        base = settings.twilio_api_base.rstrip("/")
        self._messages_url = f"{base}/2010-04-01/Accounts/{account}/Messages.json"
        token = base64.b64encode(
            f"{account}:{settings.twilio_auth_token.get_secret_value()}".encode()
        ).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {token}",
            "User-Agent": f"twilio-python/{twilio_version} (govbot) Python/{platform.python_version()}",
            "X-Twilio-Client": f"python-{twilio_version}",
            "Accept-Charset": "utf-8",
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        self._http_timeout = aiohttp.ClientTimeout(total=settings.send_timeout)

    # ------------------------------------------------------------------------------------------ sending

    async def send(self, request: OutboundRequest) -> SendReceipt:
        form = {"To": request.to, "Body": request.body, "StatusCallback": request.status_callback}
        if request.attempt is not None:
            form["Attempt"] = str(request.attempt)
        if self._s.twilio_messaging_service_sid:
            form["MessagingServiceSid"] = self._s.twilio_messaging_service_sid
        if self._s.twilio_from_number:
            form["From"] = self._s.twilio_from_number
        try:
            async with asyncio.timeout(self._timeout + 1):
                async with self._session.post(
                    self._messages_url,
                    data=urlencode(form).encode(),
                    headers=self._headers,
                    timeout=self._http_timeout,
                ) as resp:
                    status, text = resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Ambiguous(f"{type(exc).__name__}: {exc}") from exc
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if not 200 <= status < 300:
            details = payload if isinstance(payload, dict) else {}
            raise _classify_status(status, _int(details.get("code")))
        if not isinstance(payload, dict) or not payload.get("sid"):
            raise Ambiguous(f"HTTP {status} without a message resource")
        created = payload.get("date_created")
        return _receipt_of(
            payload["sid"],
            payload.get("status"),
            payload.get("num_segments"),
            payload.get("error_code"),
            rfc2822_datetime(created) if created else None,
        )

    async def find_sent(
        self, to: str, body: str, since: datetime, exclude: Collection[str]
    ) -> SendReceipt | None:
        try:
            async with asyncio.timeout(self._timeout * 2 + 1):
                messages = await self._client.messages.list_async(to=to, limit=50, page_size=50)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise SendError(f"lookup failed: HTTP {exc.status}", _int(exc.code)) from exc
        except (TwilioException, aiohttp.ClientError, TimeoutError, OSError) as exc:  # e.g. a failed page
            raise SendError(f"lookup failed: {type(exc).__name__}") from exc
        for message in messages:
            if message.sid in exclude or not str(message.direction or "").startswith("outbound"):
                continue
            if message.body != body:
                continue
            if message.date_created is not None and message.date_created < since:
                continue
            return _receipt(message)
        return None

    # ------------------------------------------------------------------------------------------ webhooks

    def _verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected(f"missing {SIGNATURE_HEADER}")
        if get_signature_algorithm is not None:
            algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
            valid = self._validator.validate(request.url, request.form, signature, algorithm)
        else:  # pragma: no cover - older twilio
            valid = self._validator.validate(request.url, request.form, signature)
        if not valid:
            raise WebhookRejected("invalid X-Twilio-Signature")
        account = request.form.get("AccountSid")
        if account and account != self._s.twilio_account_sid:
            raise WebhookRejected("webhook for another account")

    def paths(self) -> tuple[str, str]:
        return f"/sms/{self.name}", f"/sms/{self.name}/status"

    def parse_inbound(self, request: WebhookRequest) -> Sequence[InboundSms]:
        self._verify(request)
        form = request.form
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
        sender = form.get("From")
        if not sid or not sender:
            raise MalformedWebhook("MessageSid and From are required")
        metadata = {
            "num_segments": _int(form.get("NumSegments")),
            "num_media": _int(form.get("NumMedia")) or 0,
            "from_country": form.get("FromCountry") or None,
        }
        return [InboundSms(sid, sender, form.get("To", ""), form.get("Body", ""), metadata)]

    def parse_status(self, request: WebhookRequest) -> Sequence[StatusUpdate]:
        self._verify(request)
        form = request.form
        sid = form.get("MessageSid") or form.get("SmsSid")
        status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        if not sid or not status:
            raise MalformedWebhook("MessageSid and MessageStatus are required")
        code = _int(form.get("ErrorCode"))
        state = STATES.get(status)
        return [
            StatusUpdate(
                provider_sid=sid,
                state=state,
                provider_status=status,
                ledger_id=request.query.get("lid") or None,
                attempt=_int(request.query.get("n")),
                error_code=code,
                failure=failure_for(code) if state is DeliveryState.FAILED else None,
                recipient=form.get("To") or None,
            )
        ]

    def sync_reply(self, messages: Sequence[SyncReply]) -> HttpReply:
        response = MessagingResponse()
        for message in messages:
            response.message(message.body, action=message.status_callback, method="POST")
        return HttpReply(200, "application/xml", str(response))

    def status_ack(self) -> HttpReply:
        return HttpReply(200, "text/plain", "")

    async def close(self) -> None:
        await self._http.close()


def _classify(exc: TwilioRestException | TwilioServiceException) -> SendError:
    return _classify_status(int(getattr(exc, "status", 0) or 0), _int(getattr(exc, "code", None)))


def _classify_status(status: int, code: int | None) -> SendError:
    message = f"HTTP {status}" + (f" code {code}" if code else "")
    if status == 429 or code == 20429:
        return RetryLater(message, code or 20429)
    if status >= 500:
        return Ambiguous(message, code)
    if status in (401, 403, 404):
        return RetryLater(message, code)  # account or credentials: nothing was processed
    return Rejected(message, code, failure_for(code))


def _receipt(message: Any) -> SendReceipt:
    """From the SDK's ``MessageInstance`` (lookups)."""
    m = message
    return _receipt_of(m.sid, m.status, m.num_segments, m.error_code, m.date_created)


def _receipt_of(
    sid: Any, status: Any, segments: Any, error_code: Any, created: datetime | None
) -> SendReceipt:
    provider_status = str(status or "queued").lower()
    state = STATES.get(provider_status) or DeliveryState.ACCEPTED
    code = _int(error_code)
    return SendReceipt(
        provider_sid=str(sid),
        state=state,
        provider_status=provider_status,
        segments=_int(segments),
        error_code=code,
        failure=failure_for(code) if state is DeliveryState.FAILED else None,
        created_at=created,
    )
