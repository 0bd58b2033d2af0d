"""SMS encoding and segment counting (3GPP TS 23.038), as carriers and Twilio bill it.

* GSM-7 when every character is in the GSM 03.38 default alphabet or its extension table (extension
  characters such as ``€ [ ] { } ~ ^ | \\`` cost two septets); otherwise UCS-2, where characters outside
  the Basic Multilingual Plane (most emoji) cost two UTF-16 code units.  One CJK character or full-width
  mark makes the whole message UCS-2, and so does the 【签名】 signature.
* A single message holds 160 septets (GSM-7) or 70 code units (UCS-2).  A longer message is sent as a
  concatenated SMS whose segments carry a 6-byte header and hold 153 septets or 67 code units each; an
  escape pair or a surrogate pair is never split across two segments, so a segment may hold one unit less.

Counts always include the signature, because the recipient's handset receives it as part of the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class SegmentInfo:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def encoding_of(text: str) -> Encoding:
    return Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2


def _costs(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count(text: str) -> SegmentInfo:
    """Encoding, units and number of segments of ``text`` (signature included by the caller)."""
    encoding = encoding_of(text)
    costs = _costs(text, encoding)
    units = sum(costs)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding is Encoding.GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    if units == 0:
        return SegmentInfo(encoding, 0, 0)
    if units <= single:
        return SegmentInfo(encoding, units, 1)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:  # an escape or surrogate pair never straddles two segments
            segments += 1
            used = 0
        used += cost
    return SegmentInfo(encoding, units, segments)


def fits(text: str, max_segments: int) -> bool:
    return count(text).segments <= max_segments
