"""A faithful fake of Twilio's Messages API (``api.twilio.com/2010-04-01``) for tests, benchmarks and the
demo mode of ``make run``, as an aiohttp app.

In-process: ``build_app(...)`` (e.g. with pytest-aiohttp's ``aiohttp_server``); ``app[FAKE_STATE]`` is the
state.  As its own process (defaults from the TWILIO_* environment variables)::

    python -m sms_gateway.twilio.fake --host 127.0.0.1 --port 8182 --account-sid AC... --auth-token ... \\
        [--from-number +15005550006 ...] [--messaging-service-sid MG...] \\
        [--inbound-url http://127.0.0.1:8080/sms/twilio] [--callback-delay 0.2] [--callback-on-queued] \\
        [--callbacks-before-response]

Twilio API (fields, status values and the resource shape follow Twilio's OpenAPI description, a copy of
which is in ``spec/``; ``tests/sms/test_fake_conformance.py`` keeps the two in step):

* Basic auth (AccountSid / AuthToken) on every call: 401 ``20003`` otherwise; another account's path: 404.
* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form): ``To`` required (21604) and E.164
  (21211); ``From`` (one of ``--from-number`` when given, else 21606) or ``MessagingServiceSid`` (the
  configured one, else 21701), neither: 21603; ``Body``/``MediaUrl``/``ContentSid`` (21602), Body at most
  1600 characters (21617); ``StatusCallback`` must be an http(s) URL (21609); ``ScheduleType=fixed`` needs
  ``MessagingServiceSid`` and a ``SendAt`` 15 minutes to 35 days ahead (35114) and creates a ``scheduled``
  message.  A number that texted STOP (Twilio's default opt-out) or is set up to fail at once gets 21610
  or 21614.  Every other request field of the spec is accepted.  201 with the Message resource
  (``status: queued``).
* ``GET .../Messages.json`` with ``To``, ``From``, ``DateSent``, ``DateSent<``, ``DateSent>``, ``PageSize``
  (default 50, at most 1000), ``Page``/``PageToken``; newest first, Twilio's page envelope.
* ``GET .../Messages/{Sid}.json``: the resource, or 404 ``20404``.
* Status callbacks: the message moves queued → sent → delivered (or undelivered/failed with the set-up
  ``ErrorCode``: 30003, 30005, 30006, 30008, ...), ``--callback-delay`` seconds apart, and each change is
  POSTed to ``StatusCallback`` with Twilio's form fields and a valid ``X-Twilio-Signature``.  The initial
  ``queued`` status gets no callback (as on Twilio) unless ``--callback-on-queued``.
  ``--callbacks-before-response`` runs the whole progression before the create call answers.

Control endpoints (unauthenticated: bind the fake to localhost only):

* ``GET /_fake/messages`` (``?to=``, ``?direction=``): every message with its ``status_callback``,
  ``attempt`` and request ``params``; ``GET /_fake/callbacks``: every callback POST and our answer;
  ``GET /_fake/stats``: call counts.
* ``POST /_fake/fail`` ``{"op": "create"|"list"|"fetch"|null, "status": 429|500|503|null, "code": null,
  "delay": 0, "create": false, "times": 1}``: the next ``times`` calls wait ``delay`` seconds and/or answer
  ``status``; with ``"create": true`` the message is created (and progresses) before the failure or the
  delay: Twilio accepted it but the client cannot know (a 5xx after processing, or a timeout).
* ``POST /_fake/numbers`` ``{"number", "error_code", "status": "undelivered", "times": null}``: messages to
  ``number`` fail: 21610/21614 at create time, other codes in the callback (``times`` messages, or all).
* ``POST /_fake/config`` ``{"callback_delay", "callback_on_queued", "callbacks_before_response",
  "duplicate_callbacks", "inbound_url"}``; ``POST /_fake/reset``.
* ``POST /_fake/inbound`` ``{"from", "body", "to"?, "message_sid"?}``: Twilio receiving an SMS: a signed
  webhook to ``inbound_url``; the TwiML ``<Message>`` elements of the answer are sent (direction
  ``outbound-reply``, status callbacks to each ``action``).  Answers ``{"status", "body", "replies"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import logging
import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from bot.core.env import Env
from bot.core.eventloop import new_event_loop
from sms_gateway.segments import count as count_segments

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC00000000000000000000000000000000"
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"
DEFAULT_FROM = "+15005550006"

# Every status value this fake can put on a message (all in the spec's message_enum_status).
STATUSES = ("queued", "scheduled", "sent", "delivered", "undelivered", "failed", "received")
DIRECTIONS = ("inbound", "outbound-api", "outbound-reply")
# The create request fields of the spec; all accepted (unknown fields are ignored, as Twilio does).
REQUEST_FIELDS = frozenset(
    {
        "To", "StatusCallback", "ApplicationSid", "MaxPrice", "ProvideFeedback", "Attempt", "ValidityPeriod",
        "ForceDelivery", "ContentRetention", "AddressRetention", "SmartEncoded", "PersistentAction",
        "TrafficType", "ShortenUrls", "ScheduleType", "SendAt", "SendAsMms", "ContentVariables", "RiskCheck",
        "From", "FallbackFrom", "MessagingServiceSid", "Body", "MediaUrl", "ContentSid",
    }
)  # fmt: skip
LIST_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>", "PageSize", "Page", "PageToken")
TWILIO_OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
TWILIO_OPT_IN = frozenset({"START", "YES", "UNSTOP"})

ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "Invalid 'To' Phone Number: {to}"),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The From phone number {from_} is not a valid, SMS-capable inbound phone number or short code "
        "for your account.",
    ),
    21609: (400, "Invalid StatusCallback url"),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21701: (400, "The Messaging Service Sid {sid} is invalid."),
    35114: (400, "Scheduling does not support this timestamp."),
}
CALLBACK_ERRORS: dict[int, str] = {
    30001: "Queue overflow",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Carrier violation",
    30008: "Unknown error",
}
CREATE_TIME_ERRORS = frozenset({21610, 21614, 21211})
_STATUS_FOR_HTTP = {429: 20429, 500: 20500, 502: 20500, 503: 20503, 504: 20503}
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class TwilioError(Exception):
    def __init__(self, code: int, status: int | None = None, **fmt: str) -> None:
        super().__init__(code)
        self.code = code
        http_status, template = ERRORS.get(code, (status or 400, "Error"))
        self.status = status or http_status
        self.message = template.format(**fmt) if fmt else re.sub(r"\{\w+\}", "", template).strip()


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def rfc2822(value: datetime | None) -> str | None:
    return format_datetime(value) if value is not None else None


@dataclass
class FakeMessage:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    direction: str
    status: str
    date_created: datetime
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    attempt: int | None = None
    date_sent: datetime | None = None
    date_updated: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    num_media: int = 0
    price: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        """The Message resource exactly as the spec's ``api.v2010.account.message`` schema."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated or self.date_created),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(self.num_media),
            "num_segments": str(count_segments(self.body).segments or 1),
            "price": self.price,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": uri,
        }

    def control_view(self) -> dict[str, Any]:
        return {
            **self.resource(),
            "status_callback": self.status_callback,
            "attempt": self.attempt,
            "params": self.params,
        }


@dataclass
class HttpFailure:
    op: str | None
    status: int | None
    code: int | None
    delay: float
    create: bool
    times: int


@dataclass
class NumberRule:
    error_code: int
    status: str = "undelivered"
    times: int | None = None


class FakeTwilio:
    """The fake's state (``app[FAKE_STATE]``)."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_numbers: tuple[str, ...] = (),
        messaging_service_sid: str | None = None,
        inbound_url: str | None = None,
        callback_delay: float = 0.05,
        callback_on_queued: bool = False,
        callbacks_before_response: bool = False,
        duplicate_callbacks: bool = False,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.validator = RequestValidator(auth_token)
        self.from_numbers = from_numbers
        self.messaging_service_sid = messaging_service_sid
        self.inbound_url = inbound_url
        self.callback_delay = callback_delay
        self.callback_on_queued = callback_on_queued
        self.callbacks_before_response = callbacks_before_response
        self.duplicate_callbacks = duplicate_callbacks
        self.http: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.reset()

    def reset(self) -> None:
        self.messages: dict[str, FakeMessage] = {}
        self.callbacks: list[dict[str, Any]] = []
        self.failures: list[HttpFailure] = []
        self.numbers: dict[str, NumberRule] = {}
        self.unsubscribed: set[str] = set()
        self.stats: Counter[str] = Counter()

    # ------------------------------------------------------------------------------------------ rules

    def check_auth(self, request: web.Request, account_sid: str) -> None:
        header = request.headers.get("Authorization", "")
        user = password = ""
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                pass
        if not (
            secrets.compare_digest(user, self.account_sid)
            and secrets.compare_digest(password.encode(), self.auth_token.encode())
        ):
            raise TwilioError(20003)
        if account_sid != self.account_sid:
            raise TwilioError(20404, path=request.path)

    def take_failure(self, op: str) -> HttpFailure | None:
        for rule in self.failures:
            if rule.op in (None, op):
                rule.times -= 1
                if rule.times <= 0:
                    self.failures.remove(rule)
                self.stats["injected_failures"] += 1
                return rule
        return None

    def take_number_rule(self, number: str) -> NumberRule | None:
        rule = self.numbers.get(number)
        if rule is None:
            return None
        if rule.times is not None:
            rule.times -= 1
            if rule.times <= 0:
                del self.numbers[number]
        return rule

    # ------------------------------------------------------------------------------------------ create

    def create(self, form: Mapping[str, str], *, direction: str = "outbound-api") -> tuple[FakeMessage, Any]:
        """Validate like Twilio and store the message; returns it and its fate (a NumberRule or None)."""
        to = (form.get("To") or "").strip()
        from_ = (form.get("From") or "").strip() or None
        service = (form.get("MessagingServiceSid") or "").strip() or None
        body = form.get("Body") or ""
        if not to:
            raise TwilioError(21604)
        if not from_ and not service:
            raise TwilioError(21603)
        if service and service != self.messaging_service_sid:
            raise TwilioError(21701, sid=service)
        if from_ and self.from_numbers and from_ not in self.from_numbers:
            raise TwilioError(21606, from_=from_)
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            raise TwilioError(21602)
        if len(body) > 1600:
            raise TwilioError(21617)
        if not _E164.match(to):
            raise TwilioError(21211, to=to)
        callback = form.get("StatusCallback")
        if callback and not re.match(r"^https?://[^\s/]+", callback):
            raise TwilioError(21609)
        now = datetime.now(UTC)
        status = "queued"
        if form.get("ScheduleType"):
            send_at = _parse_iso(form.get("SendAt") or "")
            if (
                form.get("ScheduleType") != "fixed"
                or not service
                or send_at is None
                or not now + timedelta(minutes=15) <= send_at <= now + timedelta(days=35)
            ):
                raise TwilioError(35114)
            status = "scheduled"
        if to in self.unsubscribed:
            raise TwilioError(21610)
        fate = self.take_number_rule(to)
        if fate is not None and fate.error_code in CREATE_TIME_ERRORS:
            raise TwilioError(fate.error_code, to=to)
        attempt = form.get("Attempt")
        message = FakeMessage(
            sid=new_sid(),
            account_sid=self.account_sid,
            to=to,
            from_=from_ or (self.from_numbers[0] if self.from_numbers else None),
            body=body,
            direction=direction,
            status=status,
            date_created=now,
            messaging_service_sid=service,
            status_callback=callback or None,
            attempt=int(attempt) if attempt and attempt.isdigit() else None,
            num_media=len(form.getall("MediaUrl", [])) if hasattr(form, "getall") else 0,
            params={k: v for k, v in form.items()},
        )
        self.messages[message.sid] = message
        self.stats["messages_created"] += 1
        return message, fate

    # ------------------------------------------------------------------------------------------ progress

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def progress(self, message: FakeMessage, fate: NumberRule | None) -> None:
        """queued → sent → delivered (or the failure set up for the number), one callback per change."""
        if message.status == "scheduled":
            return
        if self.callback_on_queued:
            await self.post_callback(message)
        await asyncio.sleep(self.callback_delay)
        now = datetime.now(UTC)
        message.status, message.date_sent, message.date_updated = "sent", now, now
        message.price = "-0.04000"
        await self.post_callback(message)
        await asyncio.sleep(self.callback_delay)
        message.date_updated = datetime.now(UTC)
        if fate is not None:
            message.status = fate.status
            message.error_code = fate.error_code
            message.error_message = CALLBACK_ERRORS.get(fate.error_code, "Unknown error")
        else:
            message.status = "delivered"
        await self.post_callback(message)

    async def post_callback(self, message: FakeMessage) -> None:
        url = message.status_callback
        if not url:
            return
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_ or "",
            "To": message.to,
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "MessageStatus": message.status,
            "SmsStatus": message.status,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(url, params),
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            "User-Agent": "TwilioProxy/1.1",
        }
        for _ in range(2 if self.duplicate_callbacks else 1):
            record: dict[str, Any] = {"url": url, "params": params, "time": time.time()}
            try:
                assert self.http is not None
                async with self.http.post(
                    url, data=params, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
                ) as resp:
                    record["response_status"] = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                record["response_status"] = None
                record["error"] = type(exc).__name__
            self.callbacks.append(record)
            self.stats["callbacks"] += 1

    # ------------------------------------------------------------------------------------------ inbound

    async def inbound(self, sender: str, body: str, to: str | None, sid: str | None) -> dict[str, Any]:
        if not self.inbound_url:
            raise web.HTTPBadRequest(text="no inbound_url configured")
        to = to or (self.from_numbers[0] if self.from_numbers else DEFAULT_FROM)
        sid = sid or new_sid()
        if sid not in self.messages:
            self.messages[sid] = FakeMessage(
                sid=sid,
                account_sid=self.account_sid,
                to=to,
                from_=sender,
                body=body,
                direction="inbound",
                status="received",
                date_created=datetime.now(UTC),
                messaging_service_sid=self.messaging_service_sid,
            )
        word = body.strip().upper()
        if word in TWILIO_OPT_OUT:
            self.unsubscribed.add(sender)
        elif word in TWILIO_OPT_IN:
            self.unsubscribed.discard(sender)
        params = {
            "ToCountry": "US",
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "CN" if sender.startswith("+86") else "",
            "To": to,
            "ToZip": "",
            "NumSegments": str(count_segments(body).segments or 1),
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": API_VERSION,
        }
        if self.messaging_service_sid:
            params["MessagingServiceSid"] = self.messaging_service_sid
        headers = {"X-Twilio-Signature": self.validator.compute_signature(self.inbound_url, params)}
        assert self.http is not None
        async with self.http.post(
            self.inbound_url, data=params, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
        ) as resp:
            status, text = resp.status, await resp.text()
        replies: list[str] = []
        if status == 200 and text.strip().startswith(("<?xml", "<Response")):
            for element in ET.fromstring(text.encode("utf-8")).iter("Message"):
                body_el = element.find("Body")
                reply_body = body_el.text if body_el is not None else element.text
                message, fate = self.create(
                    {
                        "To": sender,
                        "From": to,
                        "Body": reply_body or "",
                        "StatusCallback": element.get("action") or element.get("statusCallback") or "",
                    },
                    direction="outbound-reply",
                )
                replies.append(message.sid)
                self.spawn(self.progress(message, fate))
        return {"status": status, "body": text, "replies": replies, "message_sid": sid}

    def snapshot_stats(self) -> dict[str, Any]:
        return {**self.stats, "messages": len(self.messages), "unsubscribed": sorted(self.unsubscribed)}


FAKE_STATE = web.AppKey("fake_twilio_state", FakeTwilio)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _parse_iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _error(code: int, status: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return web.json_response(body, status=status, headers=headers)


def _http_failure(rule: HttpFailure) -> web.Response:
    status = rule.status or 503
    code = rule.code or _STATUS_FOR_HTTP.get(status, 20500)
    return _error(code, status, ERRORS.get(code, (status, "Error"))[1])


@web.middleware
async def _twilio_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except TwilioError as exc:
        request.app[FAKE_STATE].stats[f"error_{exc.code}"] += 1
        return _error(exc.code, exc.status, exc.message)


def _messages_path(account: str = "{AccountSid}") -> str:
    return f"/{API_VERSION}/Accounts/{account}/Messages.json"


async def create_message(request: web.Request) -> web.Response:
    state = request.app[FAKE_STATE]
    state.check_auth(request, request.match_info["AccountSid"])
    form = await request.post()
    state.stats["create"] += 1
    failure = state.take_failure("create")
    if failure is not None and not failure.create:
        if failure.delay:
            await asyncio.sleep(failure.delay)
        return _http_failure(failure)
    message, fate = state.create(form)  # type: ignore[arg-type]
    resource = message.resource()  # as created ("queued"), even if callbacks run before the answer
    if state.callbacks_before_response:
        await state.progress(message, fate)
    else:
        state.spawn(state.progress(message, fate))
    if failure is not None:  # accepted, but the client will not learn it
        if failure.delay:
            await asyncio.sleep(failure.delay)
        if failure.status:
            return _http_failure(failure)
    return web.json_response(resource, status=201)


async def list_messages(request: web.Request) -> web.Response:
    state = request.app[FAKE_STATE]
    account = request.match_info["AccountSid"]
    state.check_auth(request, account)
    state.stats["list"] += 1
    failure = state.take_failure("list")
    if failure is not None:
        if failure.delay:
            await asyncio.sleep(failure.delay)
        if failure.status:
            return _http_failure(failure)
    q = request.query
    items = sorted(state.messages.values(), key=lambda m: m.date_created, reverse=True)
    if q.get("To"):
        items = [m for m in items if m.to == q["To"]]
    if q.get("From"):
        items = [m for m in items if m.from_ == q["From"]]
    for name, keep in (
        ("DateSent", lambda d, ref: d == ref),
        ("DateSent<", lambda d, ref: d <= ref),
        ("DateSent>", lambda d, ref: d >= ref),
    ):
        if q.get(name):
            ref = _parse_date(q[name])
            items = [m for m in items if m.date_sent is not None and keep(m.date_sent.date(), ref)]
    try:
        page_size = min(1000, max(1, int(q.get("PageSize", "50"))))
        page = max(0, int(q.get("Page", "0")))
    except ValueError:
        raise TwilioError(20001, status=400) from None
    start = page * page_size
    chunk = items[start : start + page_size]
    base = _messages_path(account)
    filters = {k: v for k, v in q.items() if k in ("To", "From", "DateSent", "DateSent<", "DateSent>")}

    def page_uri(n: int) -> str:
        return base + "?" + urlencode({**filters, "PageSize": page_size, "Page": n, "PageToken": f"PA{n}"})

    return web.json_response(
        {
            "end": start + len(chunk) - 1 if chunk else start,
            "first_page_uri": base + "?" + urlencode({**filters, "PageSize": page_size, "Page": 0}),
            "messages": [m.resource() for m in chunk],
            "next_page_uri": page_uri(page + 1) if start + page_size < len(items) else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": request.path_qs,
        }
    )


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise TwilioError(20001, status=400) from None


async def fetch_message(request: web.Request) -> web.Response:
    state = request.app[FAKE_STATE]
    state.check_auth(request, request.match_info["AccountSid"])
    state.stats["fetch"] += 1
    failure = state.take_failure("fetch")
    if failure is not None:
        if failure.delay:
            await asyncio.sleep(failure.delay)
        if failure.status:
            return _http_failure(failure)
    message = state.messages.get(request.match_info["Sid"])
    if message is None:
        raise TwilioError(20404, path=request.path)
    return web.json_response(message.resource())


# ---------------------------------------------------------------------------------------------- control


async def control_messages(request: web.Request) -> web.Response:
    state = request.app[FAKE_STATE]
    items = sorted(state.messages.values(), key=lambda m: m.date_created)
    if request.query.get("to"):
        items = [m for m in items if m.to == request.query["to"]]
    if request.query.get("direction"):
        items = [m for m in items if m.direction == request.query["direction"]]
    return web.json_response([m.control_view() for m in items])


async def control_callbacks(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAKE_STATE].callbacks)


async def control_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAKE_STATE].snapshot_stats())


async def control_fail(request: web.Request) -> web.Response:
    body = await request.json()
    rule = HttpFailure(
        op=body.get("op"),
        status=body.get("status"),
        code=body.get("code"),
        delay=float(body.get("delay", 0)),
        create=bool(body.get("create", False)),
        times=int(body.get("times", 1)),
    )
    request.app[FAKE_STATE].failures.append(rule)
    return web.json_response({"ok": True})


async def control_numbers(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[FAKE_STATE].numbers[body["number"]] = NumberRule(
        int(body["error_code"]), body.get("status", "undelivered"), body.get("times")
    )
    return web.json_response({"ok": True})


async def control_config(request: web.Request) -> web.Response:
    state = request.app[FAKE_STATE]
    body = await request.json()
    for name in ("callback_delay", "callback_on_queued", "callbacks_before_response", "duplicate_callbacks"):
        if name in body:
            setattr(state, name, type(getattr(state, name))(body[name]))
    if "inbound_url" in body:
        state.inbound_url = body["inbound_url"]
    return web.json_response({"ok": True})


async def control_reset(request: web.Request) -> web.Response:
    request.app[FAKE_STATE].reset()
    return web.json_response({"ok": True})


async def control_inbound(request: web.Request) -> web.Response:
    body = await request.json()
    result = await request.app[FAKE_STATE].inbound(
        body["from"], body.get("body", ""), body.get("to"), body.get("message_sid")
    )
    return web.json_response(result)


def build_app(
    account_sid: str = DEFAULT_ACCOUNT_SID,
    auth_token: str = DEFAULT_AUTH_TOKEN,
    *,
    from_numbers: tuple[str, ...] = (DEFAULT_FROM,),
    messaging_service_sid: str | None = None,
    inbound_url: str | None = None,
    callback_delay: float = 0.05,
    callback_on_queued: bool = False,
    callbacks_before_response: bool = False,
) -> web.Application:
    state = FakeTwilio(
        account_sid,
        auth_token,
        from_numbers=from_numbers,
        messaging_service_sid=messaging_service_sid,
        inbound_url=inbound_url,
        callback_delay=callback_delay,
        callback_on_queued=callback_on_queued,
        callbacks_before_response=callbacks_before_response,
    )
    app = web.Application(middlewares=[_twilio_errors])
    app[FAKE_STATE] = state
    base = f"/{API_VERSION}/Accounts/{{AccountSid}}"
    app.add_routes(
        [
            web.post(f"{base}/Messages.json", create_message),
            web.get(f"{base}/Messages.json", list_messages),
            web.get(f"{base}/Messages/{{Sid}}.json", fetch_message),
            web.get("/_fake/messages", control_messages),
            web.get("/_fake/callbacks", control_callbacks),
            web.get("/_fake/stats", control_stats),
            web.post("/_fake/fail", control_fail),
            web.post("/_fake/numbers", control_numbers),
            web.post("/_fake/config", control_config),
            web.post("/_fake/reset", control_reset),
            web.post("/_fake/inbound", control_inbound),
        ]
    )

    async def _startup(_app: web.Application) -> None:
        state.http = aiohttp.ClientSession()

    async def _cleanup(_app: web.Application) -> None:
        for task in list(state.tasks):
            task.cancel()
        if state.tasks:
            await asyncio.wait(state.tasks, timeout=5)
        if state.http is not None:
            await state.http.close()

    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app


def main(argv: list[str] | None = None) -> None:
    env = Env()
    parser = argparse.ArgumentParser(description="Fake Twilio Messages API for tests and demos")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8182)
    parser.add_argument("--account-sid", default=env.text("TWILIO_ACCOUNT_SID", DEFAULT_ACCOUNT_SID))
    parser.add_argument("--auth-token", default=env.text("TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN))
    parser.add_argument("--from-number", action="append", default=None)
    parser.add_argument("--messaging-service-sid", default=env.raw("TWILIO_MESSAGING_SERVICE_SID"))
    parser.add_argument("--inbound-url", default=None, help="where inbound SMS are posted (our /sms/twilio)")
    parser.add_argument("--callback-delay", type=float, default=0.2)
    parser.add_argument("--callback-on-queued", action="store_true")
    parser.add_argument("--callbacks-before-response", action="store_true")
    args = parser.parse_args(argv)
    from_numbers = tuple(args.from_number or [env.text("TWILIO_FROM_NUMBER", DEFAULT_FROM)])
    inbound_url = args.inbound_url
    public_base_url = env.raw("PUBLIC_BASE_URL")
    if inbound_url is None and public_base_url:
        inbound_url = public_base_url.rstrip("/") + "/sms/twilio"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fake-twilio %(levelname)s %(message)s")
    app = build_app(
        args.account_sid,
        args.auth_token,
        from_numbers=from_numbers,
        messaging_service_sid=args.messaging_service_sid,
        inbound_url=inbound_url,
        callback_delay=args.callback_delay,
        callback_on_queued=args.callback_on_queued,
        callbacks_before_response=args.callbacks_before_response,
    )
    print(f"fake Twilio on http://{args.host}:{args.port} (account {args.account_sid})", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None, loop=new_event_loop())


if __name__ == "__main__":
    main()
