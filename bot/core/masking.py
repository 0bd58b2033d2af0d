"""Masking of personal data (phones, ID numbers, names) for replies and logs.

Phones keep the first 3 and last 4 digits (138****1234), 18-digit resident ID numbers are reduced to
their first and last character, and Chinese personal names keep the first and last character (张*三).
"""

from __future__ import annotations

import re

_ID_NUMBER = re.compile(r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx](?!\d)")
_MOBILE = re.compile(r"(?<!\d)((?:\+|00)?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})-?(\d{3,4})(\d{4})(?!\d)")
_OPENID = re.compile(r"\b(o[\w-]{5})[\w-]{16,}\b")
# Full-width digits (a Chinese input method's) are read as digits: "１３８１２３４５６７８" is a phone number.
_HALF_WIDTH = str.maketrans("０１２３４５６７８９＋－Ｘｘ", "0123456789+-Xx")


def mask_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", half_width_digits(phone))
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_name(name: str) -> str:
    name = name.strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_id_number(value: str) -> str:
    return value[0] + "*" * (len(value) - 2) + value[-1]


def half_width_digits(text: str) -> str:
    """``text`` with full-width digits, ＋, － and Ｘ as their ASCII forms (one character each)."""
    return text.translate(_HALF_WIDTH)


def mask_text(text: str) -> str:
    """Mask every ID number, mobile number, landline number and WeChat openid found in free text."""
    if not text:
        return text
    text = half_width_digits(text)
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _MOBILE.sub(lambda m: f"{m.group(2)}****{m.group(4)}", text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
    return _OPENID.sub(lambda m: m.group(1) + "***", text)


def mask_sender(sender_id: str) -> str:
    """``wx:oAbc...`` → ``wx:oAbcd***``; ``sms:+8613812341234`` → ``sms:138****1234``."""
    channel, _, ident = sender_id.partition(":")
    if not ident:
        return mask_text(sender_id)
    if channel == "sms":
        return f"sms:{mask_phone(ident)}"
    return f"{channel}:{ident[:5]}***"
