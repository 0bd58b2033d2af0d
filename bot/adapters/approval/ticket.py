"""Ticket numbers (受理号): format, check digit, and finding one in a citizen's free text.

Format: 15 decimal digits = ``YYYYMMDD`` (the day the case was registered) + a 6-digit sequence of that day
+ 1 check digit.  Citizens may write it with spaces or dashes (``20260213 000012 6``,
``20260213-000012-6``), in full-width digits, and after a prefix such as 受理号/办件编号/流水号.

Check digit: ISO/IEC 7064 MOD 11,10 (the hybrid system of GB/T 17710-2008) over the first 14 digits::

    p = 10
    for each digit d, left to right:   s = (p + d) mod 10, with 0 read as 10;   p = (2 * s) mod 11
    check digit = (11 - p) mod 10

It is always a decimal digit (unlike MOD 11-2, which needs "X"), detects every single-digit error and
almost every transposition of two adjacent digits.  Example: ``20260213000012`` → ``6``, so the ticket is
``202602130000126``.  The check digit only catches typos; it is no secret: privacy never relies on a ticket
number being hard to guess (see ``bot.domains.progress.service``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

# Re-exported: they belong with the ticket helpers, but the adapter (which must not import domain code)
# needs them too.
from bot.adapters.approval.model import mask_ticket as mask_ticket
from bot.core.phone import national_digits

TICKET_LENGTH = 15

# The shape the Rasa regex entity recognises, tolerant of spaces/dashes between the three groups.
_TICKET_RE = re.compile(r"(?<!\d)(\d{8})[\s\-_－—–]*(\d{6})[\s\-_－—–]*(\d)(?!\d)")
# Any long run of digits (with single spaces/dashes inside): a mistyped ticket number, an ID number, …
_DIGIT_RUN_RE = re.compile(r"\d(?:[\s\-_－—–]?\d)*")
_MOBILE_RE = re.compile(r"^(?:86)?1[3-9]\d{9}$")
_SEPARATORS_RE = re.compile(r"[\s\-_－—–]")


def check_digit(body: str) -> int:
    """ISO/IEC 7064 MOD 11,10 check digit of a string of decimal digits."""
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError("the body must be ASCII decimal digits")
    p = 10
    for ch in body:
        s = (p + int(ch)) % 10 or 10
        p = (2 * s) % 11
    return (11 - p) % 10


def make_ticket(day: date, sequence: int) -> str:
    """The ticket number of the ``sequence``-th case registered on ``day`` (1 ≤ sequence ≤ 999999)."""
    if not 1 <= sequence <= 999_999:
        raise ValueError("the daily sequence must be between 1 and 999999")
    body = f"{day:%Y%m%d}{sequence:06d}"
    return body + str(check_digit(body))


def ticket_date(ticket: str) -> date | None:
    try:
        return date(int(ticket[:4]), int(ticket[4:6]), int(ticket[6:8]))
    except ValueError:
        return None


def is_valid_ticket(ticket: str, today: date | None = None) -> bool:
    """15 digits, a real date from 2000 on (and not after ``today`` + 1 day), and a correct check digit."""
    if len(ticket) != TICKET_LENGTH or not ticket.isascii() or not ticket.isdigit():
        return False
    day = ticket_date(ticket)
    if day is None or day.year < 2000:
        return False
    if today is not None and day > today + timedelta(days=1):
        return False
    return check_digit(ticket[:-1]) == int(ticket[-1])


def format_ticket(ticket: str) -> str:
    """As printed on the receipt, grouped for reading: ``20260213 000012 6``."""
    return f"{ticket[:8]} {ticket[8:14]} {ticket[14:]}" if len(ticket) == TICKET_LENGTH else ticket


class TicketKind(StrEnum):
    VALID = "valid"
    INVALID = "invalid"  # looks like a ticket attempt but is not a valid ticket number
    NONE = "none"


@dataclass(frozen=True)
class TicketParse:
    kind: TicketKind
    ticket: str | None = None  # the 15 digits when the shape is right (valid or not); never other digits


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "")


def find_ticket(text: str, today: date | None = None) -> TicketParse:
    """The ticket number in ``text``, if any.

    A 15-digit number in the ticket shape is VALID or INVALID (wrong check digit or date).  Any other run of
    12 or more digits that is not a mobile number (a mistyped ticket, an ID number…) is INVALID without
    a ticket, so such digits are never stored or echoed.
    """
    folded = _fold(text)
    invalid: TicketParse | None = None
    for m in _TICKET_RE.finditer(folded):
        candidate = "".join(m.groups())
        if is_valid_ticket(candidate, today):
            return TicketParse(TicketKind.VALID, candidate)
        invalid = invalid or TicketParse(TicketKind.INVALID, candidate)
    if invalid is not None:
        return invalid
    for m in _DIGIT_RUN_RE.finditer(folded):
        digits = _SEPARATORS_RE.sub("", m.group(0))
        if len(digits) >= 12 and not _MOBILE_RE.match(digits):
            return TicketParse(TicketKind.INVALID)
    return TicketParse(TicketKind.NONE)


def strip_ticket(text: str) -> str:
    """``text`` without its ticket-shaped number (to read "202602130000126 1234" as ticket + digits)."""
    return _TICKET_RE.sub(" ", _fold(text), count=1)


@dataclass(frozen=True)
class PhoneProof:
    """What a citizen sent to prove they are the applicant: the last 4 digits, or the whole mobile."""

    digits: str

    def matches(self, phone_on_record: str) -> bool:
        recorded = national_digits(phone_on_record)
        if len(recorded) < 4:
            return False
        if len(self.digits) == 4:
            return recorded[-4:] == self.digits
        return recorded == self.digits


def find_phone_proof(text: str) -> PhoneProof | None:
    """A message that is only the last 4 phone digits ("1234", "尾号 1234", "后四位是１２３４") or only a
    mobile number; None for anything else (two numbers, a ticket, a 5-digit number …)."""
    folded = _fold(text)
    runs = [_SEPARATORS_RE.sub("", m.group(0)) for m in _DIGIT_RUN_RE.finditer(folded)]
    if len(runs) != 1:
        return None
    digits = runs[0]
    if len(digits) == 4:
        return PhoneProof(digits)
    national = national_digits(digits)
    if re.fullmatch(r"1[3-9]\d{9}", national):
        return PhoneProof(national)
    return None
