"""Fuzzing the parsing of ticket numbers (受理号, ``bot.adapters.approval.ticket``) and complaint numbers
(``bot.domains.complaints.numbers``): what citizens type reaches both.

Properties: nothing a citizen can type makes them raise; a number found is always a valid one (or, for
tickets, flagged invalid without echoing other digits); every number we issue is found again however it is
written (spaces, dashes, full-width digits, lower case, a prefix); the check symbol catches every single
wrong symbol and every swap of two different neighbours.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from bot.adapters.approval.ticket import (
    TICKET_LENGTH,
    PhoneProof,
    TicketKind,
    check_digit,
    find_phone_proof,
    find_ticket,
    format_ticket,
    is_valid_ticket,
    make_ticket,
    mask_ticket,
    strip_ticket,
)
from bot.domains.complaints import numbers
from tests.fuzz import fuzz_settings

TODAY = date(2026, 6, 1)
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

days = st.dates(date(2000, 1, 1), TODAY + timedelta(days=1))
sequences = st.integers(1, 999_999)
separators = st.sampled_from(["", " ", "-", "  ", " - ", "－", "—", "_"])
# Text around a number: anything, including digits and the separators the parsers skip.
noise = st.text(max_size=30)
digit_noise = st.text(st.sampled_from("0123456789 -_－—–"), max_size=20)
any_text = st.one_of(noise, digit_noise, st.lists(st.one_of(noise, digit_noise), max_size=4).map("".join))


@fuzz_settings(300)
@given(text=any_text, today=st.one_of(st.none(), st.dates()))
def test_find_ticket_never_raises_and_only_finds_ticket_shapes(text, today) -> None:
    parse = find_ticket(text, today)
    if parse.kind is TicketKind.VALID:
        assert parse.ticket is not None and is_valid_ticket(parse.ticket, today)
    if parse.ticket is not None:
        assert len(parse.ticket) == TICKET_LENGTH
    else:
        assert parse.kind is not TicketKind.VALID
    strip_ticket(text)
    proof = find_phone_proof(text)
    if proof is not None:
        assert proof.digits.isdigit() and len(proof.digits) in (4, 11)
        proof.matches(text)


@fuzz_settings(200)
@given(
    day=days,
    sequence=sequences,
    sep1=separators,
    sep2=separators,
    before=st.sampled_from(["", "受理号", "办件编号：", "我的流水号是 ", "查一下"]),
    after=st.sampled_from(["", "。", " 1234", "，谢谢", "的进度"]),
    full_width=st.booleans(),
)
def test_every_ticket_is_found_however_written(day, sequence, sep1, sep2, before, after, full_width) -> None:
    ticket = make_ticket(day, sequence)
    assert is_valid_ticket(ticket, TODAY) and len(ticket) == TICKET_LENGTH
    written = f"{ticket[:8]}{sep1}{ticket[8:14]}{sep2}{ticket[14:]}"
    if full_width:
        written = written.translate(FULL_WIDTH)
    assert find_ticket(f"{before}{written}{after}", TODAY).ticket == ticket
    assert find_ticket(format_ticket(ticket), TODAY).kind is TicketKind.VALID
    masked = mask_ticket(ticket)
    assert ticket not in masked and masked.count("*") == 4


@fuzz_settings(200)
@given(day=days, sequence=sequences, position=st.integers(0, TICKET_LENGTH - 1), digit=st.integers(0, 9))
def test_the_check_digit_catches_any_single_wrong_digit(day, sequence, position, digit) -> None:
    ticket = make_ticket(day, sequence)
    assume(ticket[position] != str(digit))
    wrong = ticket[:position] + str(digit) + ticket[position + 1 :]
    assert not is_valid_ticket(wrong)
    assert find_ticket(wrong).kind is TicketKind.INVALID


@fuzz_settings(100)
@given(body=st.text(max_size=20))
def test_check_digit_refuses_anything_but_ascii_digits(body) -> None:
    try:
        digit = check_digit(body)
    except ValueError:
        assert not (body and body.isascii() and body.isdigit())
    else:
        assert 0 <= digit <= 9


@fuzz_settings(100)
@given(recorded=any_text, given_digits=st.from_regex(r"[0-9]{4}|1[3-9][0-9]{9}", fullmatch=True))
def test_phone_proof_never_raises(recorded, given_digits) -> None:
    assert PhoneProof(given_digits).matches(recorded) in (True, False)


# ---------------------------------------------------------------------------------------------- complaints


@fuzz_settings(300)
@given(text=st.one_of(any_text, st.text(st.sampled_from(numbers.ALPHABET + "TSts01OIL -_"), max_size=30)))
def test_complaint_number_parse_never_raises(text) -> None:
    found = numbers.parse(text)
    assert found is None or numbers.is_valid(found)


@fuzz_settings(200)
@given(
    data=st.data(),
    case=st.sampled_from([str.upper, str.lower]),
    sep=separators,
    before=st.sampled_from(["", "投诉编号", "我的编号是 ", "TS"]),
)
def test_every_complaint_number_is_found_however_written(data, case, sep, before) -> None:
    body = data.draw(st.text(st.sampled_from(numbers.ALPHABET), min_size=numbers.BODY_LENGTH,
                             max_size=numbers.BODY_LENGTH))  # fmt: skip
    number = numbers.PREFIX + body + numbers.check_symbol(body)
    assert numbers.is_valid(number)
    written = case(number[:6] + sep + number[6:])
    assert numbers.parse(before + written + "。") == number


@fuzz_settings(200)
@given(data=st.data())
def test_the_check_symbol_catches_one_wrong_symbol_or_a_swap(data) -> None:
    body = data.draw(st.text(st.sampled_from(numbers.ALPHABET), min_size=numbers.BODY_LENGTH,
                             max_size=numbers.BODY_LENGTH))  # fmt: skip
    number = numbers.PREFIX + body + numbers.check_symbol(body)
    i = data.draw(st.integers(len(numbers.PREFIX), len(number) - 1))
    symbol = data.draw(st.sampled_from(numbers.ALPHABET))
    if symbol != number[i]:
        assert not numbers.is_valid(number[:i] + symbol + number[i + 1 :])
    if i + 1 < len(number) and number[i] != number[i + 1]:
        assert not numbers.is_valid(number[:i] + number[i + 1] + number[i] + number[i + 2 :])


def _number(body: str) -> str:
    return numbers.PREFIX + body + numbers.check_symbol(body)


def test_a_complaint_number_right_after_ts() -> None:
    """Found by the fuzzer: after a false candidate ("PARTSTS7KQ…" → "TSTS7KQ…") the search went on behind
    it and missed the real number; and when both are valid (1 in 31) the one ending the run is meant."""
    number = _number("7KQ2M9XHD")
    assert numbers.parse("parts " + number) == number
    assert numbers.parse("TS-" + number + "。") == number
    both = next(
        n for n in (_number(f"{a}{b}EBE4AJW") for a in numbers.ALPHABET for b in numbers.ALPHABET)
        if numbers.is_valid("TS" + n[:-2])
    )  # fmt: skip
    assert numbers.parse("TS" + both + "，谢谢") == both
