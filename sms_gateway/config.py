"""SMS settings from the environment (names are part of the project's interface; see sms_gateway/README.md).

``SmsSettings.from_env(env)`` reads every SMS variable through :class:`bot.core.env.Env`; unset or empty
variables take the defaults below.  The demo values in ``.env.example`` point the Twilio client at the local
fake (``python -m sms_gateway.twilio.fake``), so ``make run`` works without a Twilio account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.env import Env, Secret

PROVIDERS = frozenset({"twilio", "aliyun"})
ALIYUN_ENDPOINT = "dysmsapi.aliyuncs.com"
ALIYUN_TEMPLATES_EXAMPLE = Path(__file__).resolve().parent / "aliyun" / "templates.example.json"
DISABLED = frozenset({"", "none", "off", "disabled"})
# 10 GSM-7 segments (1530 characters) stay under Twilio's 1600-character body limit (error 21617).
MAX_SEGMENTS = 10
_SIGNATURE_BRACKETS = re.compile(r"^【(.*)】$")


def parse_signature(raw: str) -> str:
    """The signature without brackets (``"【县行政服务中心】"`` → ``"县行政服务中心"``).

    Chinese carriers require 2-8 characters and no 【】 inside; an empty value switches the prefix off
    (only for numbers outside mainland China).
    """
    text = raw.strip()
    m = _SIGNATURE_BRACKETS.match(text)
    if m:
        text = m.group(1).strip()
    if not text:
        return ""
    if "【" in text or "】" in text:
        raise ValueError("SMS_SIGNATURE must not contain 【 or 】 inside the signature")
    if not 2 <= len(text) <= 8:
        raise ValueError(f"SMS_SIGNATURE must be 2-8 characters, got {len(text)}: {text!r}")
    return text


def _delays(raw: str) -> tuple[float, ...]:
    values = tuple(float(x) for x in raw.replace(";", ",").split(",") if x.strip())
    if any(v < 0 for v in values):
        raise ValueError("SMS_RETRY_DELAYS must be non-negative seconds")
    return values


@dataclass(frozen=True)
class SmsSettings:
    provider: str = "twilio"  # SMS_PROVIDER: twilio | aliyun | none
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: Secret = field(default_factory=Secret)
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    aliyun_access_key_id: str = ""  # ALIBABA_CLOUD_ACCESS_KEY_ID
    aliyun_access_key_secret: Secret = field(default_factory=Secret)  # ALIBABA_CLOUD_ACCESS_KEY_SECRET
    aliyun_endpoint: str = ALIYUN_ENDPOINT  # ALIYUN_SMS_ENDPOINT (http://host:port for the local fake)
    aliyun_templates_file: str = ""  # ALIYUN_SMS_TEMPLATES: the template registry (JSON); "" = the example
    aliyun_push_token: Secret = field(default_factory=Secret)  # ALIYUN_SMS_PUSH_TOKEN: the pushes' path token
    signature: str = "县行政服务中心"  # SMS_SIGNATURE, without 【】
    public_base_url: str = "http://127.0.0.1:8080"
    center_phone: str = "0797-3322110"  # CENTER_PHONE (shared with the rest of the gateway)
    reply_segment_budget: int = 3  # SMS_REPLY_SEGMENT_BUDGET
    max_segments_per_message: int = 8  # SMS_MAX_SEGMENTS_PER_MESSAGE
    sync_reply_deadline: float = 5.0  # SMS_SYNC_REPLY_DEADLINE (Twilio waits 15 s for a webhook)
    send_timeout: float = 10.0  # SMS_SEND_TIMEOUT, one provider HTTP call
    retry_delays: tuple[float, ...] = (300.0, 600.0)  # SMS_RETRY_DELAYS: 30003/30008 (at most two)
    reconcile_delay: float = 10.0  # SMS_RECONCILE_DELAY: wait before looking up an ambiguous send
    throttle_backoff: float = 2.0  # SMS_THROTTLE_BACKOFF: first 429 back-off, doubled per retry
    throttle_max_retries: int = 6  # SMS_THROTTLE_MAX_RETRIES
    max_attempts: int = 6  # SMS_MAX_ATTEMPTS: provider calls per ledger row, all causes
    worker_interval: float = 2.0  # SMS_WORKER_INTERVAL: how often due/stuck rows are picked up
    inbound_dedup_ttl: int = 48 * 3600  # SMS_INBOUND_DEDUP_TTL (seconds a MessageSid is remembered)
    report_wait: float = 1800.0  # SMS_REPORT_WAIT: seconds without a delivery report before a lookup

    @property
    def enabled(self) -> bool:
        return self.provider not in DISABLED

    @property
    def aliyun_templates(self) -> Path:
        """The template registry file (``ALIYUN_SMS_TEMPLATES``, else the example beside the adapter)."""
        return Path(self.aliyun_templates_file) if self.aliyun_templates_file else ALIYUN_TEMPLATES_EXAMPLE

    @property
    def configured(self) -> bool:
        """Whether the named provider has its credentials (the channel stays off, with a warning, if not)."""
        if self.provider == "twilio":
            return bool(self.twilio_auth_token)
        if self.provider == "aliyun":
            return bool(
                self.aliyun_access_key_id and self.aliyun_access_key_secret and self.aliyun_push_token
            )
        return False

    @property
    def signature_prefix(self) -> str:
        return f"【{self.signature}】" if self.signature else ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | Env | None = None) -> SmsSettings:
        e = Env.of(env)
        d = cls()
        provider = e.text("SMS_PROVIDER", d.provider).lower()
        if provider in DISABLED:
            provider = "none"
        elif provider not in PROVIDERS:
            raise ValueError(f"SMS_PROVIDER must be one of {sorted(PROVIDERS)} or none, not {provider!r}")
        budget = e.integer("SMS_REPLY_SEGMENT_BUDGET", d.reply_segment_budget)
        per_message = e.integer("SMS_MAX_SEGMENTS_PER_MESSAGE", d.max_segments_per_message)
        if not (1 <= budget <= MAX_SEGMENTS and 1 <= per_message <= MAX_SEGMENTS):
            raise ValueError(
                f"SMS_REPLY_SEGMENT_BUDGET and SMS_MAX_SEGMENTS_PER_MESSAGE must be 1-{MAX_SEGMENTS}"
            )
        raw_delays = e.raw("SMS_RETRY_DELAYS")
        delays = _delays(raw_delays) if raw_delays else d.retry_delays
        if len(delays) > 2:
            raise ValueError("SMS_RETRY_DELAYS allows at most two delayed retries")
        signature = e.given("SMS_SIGNATURE")
        settings = cls(
            provider=provider,
            twilio_account_sid=e.text("TWILIO_ACCOUNT_SID", d.twilio_account_sid),
            twilio_auth_token=e.secret("TWILIO_AUTH_TOKEN"),
            twilio_from_number=e.text("TWILIO_FROM_NUMBER", d.twilio_from_number),
            twilio_messaging_service_sid=e.text(
                "TWILIO_MESSAGING_SERVICE_SID", d.twilio_messaging_service_sid
            ),
            twilio_api_base=e.text("TWILIO_API_BASE", d.twilio_api_base).rstrip("/"),
            aliyun_access_key_id=e.text("ALIBABA_CLOUD_ACCESS_KEY_ID", d.aliyun_access_key_id),
            aliyun_access_key_secret=e.secret("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
            aliyun_endpoint=e.text("ALIYUN_SMS_ENDPOINT", d.aliyun_endpoint).rstrip("/"),
            aliyun_templates_file=e.text("ALIYUN_SMS_TEMPLATES", d.aliyun_templates_file),
            aliyun_push_token=e.secret("ALIYUN_SMS_PUSH_TOKEN"),
            signature=parse_signature(signature) if signature is not None else d.signature,
            public_base_url=e.text("PUBLIC_BASE_URL", d.public_base_url).rstrip("/"),
            center_phone=e.text("CENTER_PHONE", d.center_phone),
            reply_segment_budget=budget,
            max_segments_per_message=max(per_message, budget),
            sync_reply_deadline=e.number("SMS_SYNC_REPLY_DEADLINE", d.sync_reply_deadline),
            send_timeout=e.number("SMS_SEND_TIMEOUT", d.send_timeout),
            retry_delays=delays,
            reconcile_delay=e.number("SMS_RECONCILE_DELAY", d.reconcile_delay),
            throttle_backoff=e.number("SMS_THROTTLE_BACKOFF", d.throttle_backoff),
            throttle_max_retries=e.integer("SMS_THROTTLE_MAX_RETRIES", d.throttle_max_retries),
            max_attempts=max(1, e.integer("SMS_MAX_ATTEMPTS", d.max_attempts)),
            worker_interval=e.number("SMS_WORKER_INTERVAL", d.worker_interval),
            inbound_dedup_ttl=e.integer("SMS_INBOUND_DEDUP_TTL", d.inbound_dedup_ttl),
            report_wait=e.number("SMS_REPORT_WAIT", d.report_wait),
        )
        if settings.enabled and settings.twilio_messaging_service_sid:
            settings.check_format()
        return settings

    def check_format(self) -> None:
        if self.twilio_messaging_service_sid and not re.fullmatch(
            r"MG[0-9a-fA-F]{32}", self.twilio_messaging_service_sid
        ):
            raise ValueError("TWILIO_MESSAGING_SERVICE_SID must look like MG + 32 hex digits")

    def check(self) -> None:
        """Raise ``ValueError`` for a configuration the channel cannot run with (``build_sms_channel``
        calls it; ``from_env`` only parses, so an unconfigured environment can still be loaded)."""
        if not self.enabled:
            return
        if self.provider == "twilio":
            if not re.fullmatch(r"AC[0-9a-fA-F]{32}", self.twilio_account_sid):
                raise ValueError("TWILIO_ACCOUNT_SID must look like AC + 32 hex digits")
            if not self.twilio_auth_token:
                raise ValueError("TWILIO_AUTH_TOKEN is required (webhook signatures are checked with it)")
            if not (self.twilio_from_number or self.twilio_messaging_service_sid):
                raise ValueError("set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
            self.check_format()
        if self.provider == "aliyun":
            if not (self.aliyun_access_key_id and self.aliyun_access_key_secret):
                raise ValueError(
                    "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET are required"
                )
            token = self.aliyun_push_token.get_secret_value()
            if not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", token):
                raise ValueError(
                    "ALIYUN_SMS_PUSH_TOKEN must be 16-128 letters, digits, - or _ (part of the push URLs)"
                )
            if not self.signature:
                raise ValueError(
                    "SMS_SIGNATURE must be the approved Aliyun signature (Aliyun sends none without)"
                )
        if not self.public_base_url.startswith(("http://", "https://")):
            raise ValueError("PUBLIC_BASE_URL must be an absolute http(s) URL")
