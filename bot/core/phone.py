"""Phone numbers, one vocabulary for the whole system (on Google's libphonenumber, ``phonenumbers``).

* :func:`parse_phone` reads what people and providers write — ``13812345678``, ``138-1234-5678``,
  ``+86 138 1234 5678``, ``0086…``, ``8613812345678``, ``(0571)87654321``, full-width digits — with
  mainland China as the default region, and tells a mainland mobile from a landline.
* :func:`to_e164` is the form providers, the SMS ledger and the opt-out table use (``+8613812345678``);
  it accepts only numbers that can receive SMS.
* :func:`contact_phone` is the form a complaint records: a mainland mobile (``13812345678``) or landline
  (``0571-87654321``), else nothing.
* :func:`national_digits` is the form the approval system's applicant phone is compared in.

Masking for logs and replies is :func:`bot.core.masking.mask_phone`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from bot.core.masking import mask_phone

DEFAULT_REGION = "CN"
_SEPARATORS = re.compile(r"[\s\-().（）]")
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_LANDLINE_TYPES = {PhoneNumberType.FIXED_LINE}

Kind = Literal["mobile", "landline", "other"]


@dataclass(frozen=True)
class Phone:
    """A parsed number.  ``kind`` is ``mobile`` / ``landline`` for valid mainland numbers, else ``other``."""

    e164: str
    kind: Kind
    national: str  # mainland: 13812345678 or 0571-87654321; elsewhere the E.164 form

    @property
    def is_mainland_mobile(self) -> bool:
        return self.kind == "mobile"


def _clean(raw: str) -> str:
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw or "").strip())
    if text.startswith("86") and len(text) == 13 and text[2] == "1":
        text = "+" + text  # 8613812345678: a mainland mobile written with its country code, no +
    return text


def parse_phone(raw: str, region: str = DEFAULT_REGION) -> Phone | None:
    """The number in ``raw``, or None when it is not a possible phone number."""
    text = _clean(raw)
    if not text or not re.fullmatch(r"\+?\d+", text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if number.country_code == 86 and phonenumbers.is_valid_number(number):
        kind = phonenumbers.number_type(number)
        national = str(number.national_number)
        if kind in _MOBILE_TYPES and national.startswith("1"):
            return Phone(e164, "mobile", national)
        if kind in _LANDLINE_TYPES:
            area = phonenumbers.length_of_geographical_area_code(number)
            return Phone(e164, "landline", f"0{national[:area]}-{national[area:]}")
    return Phone(e164, "other", e164)


def to_e164(raw: str) -> str:
    """The E.164 form of a number that can receive SMS: a mainland mobile (``13812345678`` /
    ``86 138-1234-5678`` / ``+8613812345678`` → ``+8613812345678``), or a number abroad written with its
    country code (``+14155551234``).

    Raises ``ValueError`` (with the number masked) for anything else, mainland landlines included."""
    phone = parse_phone(raw)
    abroad = phone is not None and phone.kind == "other" and not phone.e164.startswith("+86")
    if phone is None or not (phone.is_mainland_mobile or (abroad and _clean(raw).startswith(("+", "00")))):
        raise ValueError(f"not a phone number: {mask_phone((raw or '').strip())}")
    return phone.e164


def contact_phone(raw: str) -> str | None:
    """A mainland mobile (``13812345678``) or landline (``0571-87654321``) number, else ``None``."""
    phone = parse_phone(raw)
    return phone.national if phone is not None and phone.kind != "other" else None


def national_digits(raw: str) -> str:
    """The digits of a mainland number without the country code (``+86 138-1234-5678`` →
    ``13812345678``, ``0571-87654321`` → ``057187654321``); other input → its digits."""
    phone = parse_phone(raw)
    if phone is not None and phone.kind != "other":
        return phone.national.replace("-", "")
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", raw or ""))
    return digits[4:] if digits.startswith("0086") else digits


def sms_address(raw: str) -> str:
    """Where an SMS to this number goes: E.164 for a mainland mobile, else ``raw`` unchanged."""
    phone = parse_phone(raw)
    return phone.e164 if phone is not None and phone.is_mainland_mobile else raw
