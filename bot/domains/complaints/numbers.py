"""Complaint numbers: ``TS`` + 9 random symbols + 1 check symbol, e.g. ``TS7KQ2M9XHD4R``.

The alphabet has 31 symbols (no 0/O, 1/I/L); 31 is prime, so the weighted check symbol
``sum((i + 1) * value) mod 31`` catches every single wrong symbol and every swap of two neighbours.
Numbers come from :mod:`secrets` and are never sequential (31**9 ≈ 2.6e13 possibilities).
"""

from __future__ import annotations

import re
import secrets
import unicodedata

PREFIX = "TS"
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
BODY_LENGTH = 9
NUMBER_LENGTH = len(PREFIX) + BODY_LENGTH + 1
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_CANDIDATE = re.compile(r"(?=(TS[0-9A-Z]{10}))")  # overlapping: "PARTSTS7KQ…" holds one at its second TS
_SYMBOL = re.compile(r"[0-9A-Z]")


def check_symbol(body: str) -> str:
    return ALPHABET[sum((i + 1) * _VALUE[ch] for i, ch in enumerate(body)) % len(ALPHABET)]


def new_number() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return PREFIX + body + check_symbol(body)


def is_valid(number: str) -> bool:
    if len(number) != NUMBER_LENGTH or not number.startswith(PREFIX):
        return False
    body, check = number[len(PREFIX) : -1], number[-1]
    if any(ch not in _VALUE for ch in body + check):
        return False
    return check_symbol(body) == check


def parse(text: str) -> str | None:
    """The first valid complaint number in ``text`` (any case, spaces/hyphens allowed), else ``None``."""
    cleaned = re.sub(r"[\s\-－—_]", "", unicodedata.normalize("NFKC", text or "")).upper()
    found = [(m.start(), m.group(1)) for m in _CANDIDATE.finditer(cleaned) if is_valid(m.group(1))]
    for start, number in found:  # one that ends where the letters and digits end, before one inside a run
        if not _SYMBOL.match(cleaned, start + NUMBER_LENGTH):
            return number
    return found[0][1] if found else None
