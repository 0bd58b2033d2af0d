"""The provider interface: everything the SMS channel and the ledger need from an SMS provider.

Domain code (channel, outbox, opt-out) depends only on this module; each provider is one adapter package
(``sms_gateway/twilio/``) and the only place that imports its SDK.  A provider:

* sends one message carrying the ledger id (and attempt number) so its status reports can be matched to
  the ledger row even when the provider's own message id was never stored;
* looks a message up (reconciliation after a timeout, 5xx or crash: never resend blindly);
* verifies and parses inbound webhooks (one or several messages per request) and status reports;
* renders the HTTP answers its webhooks expect (a synchronous reply when it supports one).

Provider error codes are mapped to the neutral ``Failure`` kinds here, so the ledger's rules (opt-out,
permanent failure, capped retry, back-off, reconcile) are provider-independent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class DeliveryState(StrEnum):
    """A provider status reduced to what the ledger tracks (ordered by progress)."""

    ACCEPTED = "accepted"  # queued at the provider
    SENT = "sent"  # handed to the carrier
    DELIVERED = "delivered"  # delivery receipt from the handset
    FAILED = "failed"  # failed or undelivered: see ``Failure``


class Failure(StrEnum):
    OPTED_OUT = "opted_out"  # the recipient unsubscribed at the provider/carrier: mark opted out
    PERMANENT = "permanent"  # not a mobile, unknown handset, landline, blocked content: never retry
    TRANSIENT = "transient"  # handset unreachable, unknown carrier error: at most two delayed retries


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's HTTP request to us, provider-neutral.  ``url`` is the public URL the provider called
    (``PUBLIC_BASE_URL`` + path and query as received), which is what webhook signatures cover."""

    url: str
    headers: Mapping[str, str]
    form: Any  # a multi-dict of form fields (aiohttp ``MultiDictProxy``); empty for JSON pushes
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    path_params: Mapping[str, str] = field(default_factory=dict)  # variables of the route (a path token)


@dataclass(frozen=True)
class HttpReply:
    status: int = 200
    content_type: str = "text/plain"
    body: str = ""


@dataclass(frozen=True)
class InboundSms:
    message_id: str  # the provider's id (Twilio MessageSid, Aliyun sequence_id): the dedup key
    sender: str  # E.164
    recipient: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundRequest:
    ledger_id: str
    attempt: int
    to: str  # E.164
    body: str  # the full text, signature included
    status_callback: str  # our status URL carrying the ledger id and attempt
    campaign_id: str | None = None  # a broadcast's campaign (one row per campaign and recipient)


@dataclass(frozen=True)
class SendReceipt:
    provider_sid: str
    state: DeliveryState
    provider_status: str
    segments: int | None = None
    error_code: int | None = None
    failure: Failure | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class StatusUpdate:
    provider_sid: str
    state: DeliveryState | None  # None: a status the ledger ignores (e.g. inbound "received")
    provider_status: str
    ledger_id: str | None = None
    attempt: int | None = None
    error_code: int | None = None
    failure: Failure | None = None
    recipient: str | None = None
    campaign_id: str | None = None  # a report of a batch send names the campaign, not the row


@dataclass(frozen=True)
class SyncReply:
    body: str
    status_callback: str


class WebhookRejected(Exception):
    """A webhook that does not come from the provider (bad or missing signature): answer 403."""


class MalformedWebhook(Exception):
    """A signed webhook that lacks required fields: answer 400."""


class SendError(Exception):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Rejected(SendError):
    """The provider refused the message and will never send it (e.g. 21610, 21614, 21211)."""

    def __init__(self, message: str, code: int | None, failure: Failure) -> None:
        super().__init__(message, code)
        self.failure = failure


class RetryLater(SendError):
    """The request was certainly not processed (429, or the account is unusable right now): back off."""


class Deferred(RetryLater):
    """Refused for now by a limit with a known window (Aliyun's per-number flow control): certainly not sent;
    send again at ``until`` (not a throttling retry: it does not use up ``SMS_THROTTLE_MAX_RETRIES``)."""

    def __init__(self, message: str, until: datetime, code: int | None = None) -> None:
        super().__init__(message, code)
        self.until = until


class Ambiguous(SendError):
    """Timeout, connection error or 5xx: the provider may or may not have accepted the message."""


@runtime_checkable
class BatchSender(Protocol):
    """A provider that sends many messages in one call (Aliyun's SendBatchSms): the ledger's bulk path
    (``Sender.send_claimed`` with several rows) uses it when the provider has it."""

    async def send_batch(self, requests: Sequence[OutboundRequest]) -> list[SendReceipt | SendError]:
        """One outcome per request, in order: its receipt, or the ``SendError`` a ``send`` would raise."""
        ...


class SmsProvider(Protocol):
    name: str
    supports_sync_reply: bool

    def paths(self) -> tuple[str, str]:
        """The inbound and status webhook paths (aiohttp route patterns, e.g. with a ``{token}``)."""
        ...

    async def send(self, request: OutboundRequest) -> SendReceipt:
        """Send one message.  Raises ``Rejected``, ``RetryLater`` or ``Ambiguous``; never retries itself."""
        ...

    async def find_sent(
        self, to: str, body: str, since: datetime, exclude: Collection[str]
    ) -> SendReceipt | None:
        """A message to ``to`` with exactly ``body`` created at or after ``since`` whose id is not in
        ``exclude``, or None.  Raises ``SendError`` when the lookup itself fails."""
        ...

    def parse_inbound(self, request: WebhookRequest) -> Sequence[InboundSms]:
        """Verify and parse an inbound webhook (raises ``WebhookRejected`` / ``MalformedWebhook``)."""
        ...

    def parse_status(self, request: WebhookRequest) -> Sequence[StatusUpdate]:
        """Verify and parse a status report (raises ``WebhookRejected`` / ``MalformedWebhook``)."""
        ...

    def sync_reply(self, messages: Sequence[SyncReply]) -> HttpReply:
        """The webhook answer carrying ``messages`` (empty: acknowledge without a reply)."""
        ...

    def status_ack(self) -> HttpReply: ...

    async def close(self) -> None: ...
