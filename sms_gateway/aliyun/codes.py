"""What each Alibaba Cloud SMS answer code means for the ledger (``sms_gateway/provider.py``'s neutral
outcomes), from dysmsapi's error-code list.  Errors arrive as HTTP 200 with ``Code`` in the body; HTTP
errors come as the SDK's exceptions carrying the same kind of code.

* ``OK`` — accepted (a ``BizId``).
* per-number flow control — **defer** past its window (``isv.BUSINESS_LIMIT_CONTROL``: minute, hour or day,
  named in the message, e.g. "触发天级流控Permits:50").
* bad input, content or configuration — **permanent** for that message (never resent).
* account out of money or service — **stop** sending and alert (``RetryLater`` for the message).
* API throttling — **back off** and retry.
* server errors (``isp.SYSTEM_ERROR``, 5xx) — **ambiguous**: Aliyun may have accepted it; reconcile with
  ``QuerySendDetails`` before any resend (sends are not idempotent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DEFER = "defer"  # flow control: send again after ``defer_seconds``
    INVALID_NUMBER = "invalid_number"  # permanent, and the number is bad
    PERMANENT = "permanent"  # permanent for this message (content, template, signature, parameters)
    STOP = "stop"  # the account cannot send (balance, service): stop and alert an operator
    BACK_OFF = "back_off"  # API throttling: retry later
    AMBIGUOUS = "ambiguous"  # may have been accepted: reconcile before resending


@dataclass(frozen=True)
class Meaning:
    outcome: Outcome
    defer_seconds: int = 0


PERMANENT_CODES = frozenset(
    {
        "isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_JSON_PARAM", "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
        "isv.SMS_CONTENT_ILLEGAL", "isv.EXTEND_CODE_ERROR", "isv.DENY_IP_RANGE", "isv.INVALID_PARAMETERS",
        "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL", "isv.MOBILE_COUNT_OVER_LIMIT",
    }
)  # fmt: skip
INVALID_NUMBER_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})
STOP_CODES = frozenset({"isv.AMOUNT_NOT_ENOUGH", "isv.OUT_OF_SERVICE", "isv.ACCOUNT_NOT_EXISTS",
                        "isv.ACCOUNT_ABNORMAL"})  # fmt: skip
BACK_OFF_CODES = frozenset({"Throttling.User", "Throttling.Api", "Throttling", "isv.SMS_FREQUENCY_LIMIT"})
AMBIGUOUS_CODES = frozenset({"isp.SYSTEM_ERROR", "isp.RAM_PERMISSION_DENY", "InternalError",
                             "ServiceUnavailable"})  # fmt: skip

_WINDOWS = (("分钟", 60), ("小时", 3600), ("天", 86400))


def defer_window(message: str) -> int:
    """Seconds to wait after a flow-control refusal: the window its message names (a day when unnamed)."""
    for word, seconds in _WINDOWS:
        if re.search(rf"{word}级", message or ""):
            return seconds
    return 86400


def meaning(code: str, message: str = "", http_status: int = 200) -> Meaning:
    """The ledger's reading of one answer (``http_status``: the HTTP status the code came with)."""
    if code == "OK":
        return Meaning(Outcome.ACCEPTED)
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        return Meaning(Outcome.DEFER, defer_window(message))
    if code in INVALID_NUMBER_CODES:
        return Meaning(Outcome.INVALID_NUMBER)
    if code in STOP_CODES:
        return Meaning(Outcome.STOP)
    if code in BACK_OFF_CODES or http_status == 429:
        return Meaning(Outcome.BACK_OFF)
    if code in AMBIGUOUS_CODES or http_status >= 500:
        return Meaning(Outcome.AMBIGUOUS)
    if code in PERMANENT_CODES or code.startswith("isv."):
        return Meaning(Outcome.PERMANENT)
    return Meaning(Outcome.AMBIGUOUS)  # an unknown answer: never assume it was not sent
