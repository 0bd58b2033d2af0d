"""Requests signed exactly as Twilio signs them (``RequestValidator.compute_signature``), for tests."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def inbound_params(
    *, account_sid: str, sender: str, to: str, body: str, message_sid: str, num_segments: int = 1
) -> dict[str, str]:
    """The form fields of Twilio's incoming-message webhook."""
    return {
        "ToCountry": "US",
        "ToState": "",
        "SmsMessageSid": message_sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": message_sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "CN",
        "To": to,
        "ToZip": "",
        "NumSegments": str(num_segments),
        "MessageSid": message_sid,
        "AccountSid": account_sid,
        "From": sender,
        "ApiVersion": API_VERSION,
    }


def status_params(
    *, account_sid: str, message_sid: str, status: str, to: str, from_: str, error_code: int | None = None
) -> dict[str, str]:
    """The form fields of Twilio's status callback."""
    params = {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "From": from_,
        "To": to,
        "MessageSid": message_sid,
        "SmsSid": message_sid,
        "MessageStatus": status,
        "SmsStatus": status,
    }
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    return params
