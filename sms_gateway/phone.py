"""Phone numbers in E.164 (the form providers use and the ledger and opt-out table store)."""

from __future__ import annotations

import re

from bot.masking import mask_phone

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def to_e164(raw: str) -> str:
    """``13812345678`` / ``86 138-1234-5678`` / ``+8613812345678`` → ``+8613812345678``.

    Raises ``ValueError`` for anything that is not a plausible E.164 number."""
    text = (raw or "").strip()
    digits = re.sub(r"[\s\-().]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if _CN_MOBILE.match(digits):
        digits = "+86" + digits
    elif digits.startswith("86") and _CN_MOBILE.match(digits[2:]):
        digits = "+" + digits
    if not _E164.match(digits):
        raise ValueError(f"not a phone number: {mask_phone(text)}")
    return digits


def masked(phone: str) -> str:
    """For logs: ``+8613812345678`` → ``138****5678``; other countries keep their last 4 digits."""
    return mask_phone(phone)
