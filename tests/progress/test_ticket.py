"""Ticket numbers: the ISO 7064 MOD 11,10 check digit, finding a ticket in free text, the phone proof."""

from __future__ import annotations

import random
from datetime import date

import pytest

from bot.adapters.approval.ticket import (
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

TODAY = date(2026, 2, 25)
TICKET = "202602130000126"


def test_documented_example_and_vectors() -> None:
    # The example in the module docstring (and in the report for dialogues/README.md).
    assert check_digit("20260213000012") == 6
    assert make_ticket(date(2026, 2, 13), 12) == TICKET
    assert is_valid_ticket(TICKET, TODAY)


def test_hand_computed_vectors() -> None:
    # ISO 7064 MOD 11,10 by hand.
    # p0 = 10; d=0: s=(10+0)%10 → 0 → 10, p=20%11=9; check=(11-9)%10=2
    assert check_digit("0") == 2
    # d=1: s=(10+1)%10=1, p=2; check=(11-2)%10=9
    assert check_digit("1") == 9
    # d=9: s=(10+9)%10=9, p=18%11=7; check=(11-7)%10=4
    assert check_digit("9") == 4


def test_every_single_digit_error_is_detected() -> None:
    rng = random.Random(7)
    for _ in range(300):
        body = "".join(rng.choice("0123456789") for _ in range(14))
        ticket = body + str(check_digit(body))
        for pos in range(15):
            for digit in "0123456789":
                if digit == ticket[pos]:
                    continue
                wrong = ticket[:pos] + digit + ticket[pos + 1 :]
                assert check_digit(wrong[:-1]) != int(wrong[-1]), (ticket, wrong)


def test_most_adjacent_transpositions_are_detected() -> None:
    rng = random.Random(11)
    total = detected = 0
    for _ in range(1000):
        body = "".join(rng.choice("0123456789") for _ in range(14))
        ticket = body + str(check_digit(body))
        for pos in range(14):
            if ticket[pos] == ticket[pos + 1]:
                continue
            swapped = ticket[:pos] + ticket[pos + 1] + ticket[pos] + ticket[pos + 2 :]
            total += 1
            detected += check_digit(swapped[:-1]) != int(swapped[-1])
    assert detected / total > 0.95


def test_check_digit_rejects_non_digits() -> None:
    with pytest.raises(ValueError):
        check_digit("2026021300001X")
    with pytest.raises(ValueError):
        check_digit("")
    with pytest.raises(ValueError):
        make_ticket(date(2026, 2, 13), 0)


@pytest.mark.parametrize(
    ("ticket", "valid"),
    [
        (TICKET, True),
        ("202602130000127", False),  # wrong check digit
        ("202602300000125", False),  # 30 February
        ("19990101" + "000001" + str(check_digit("19990101000001")), False),  # before 2000
        ("20260227" + "000001" + str(check_digit("20260227000001")), False),  # two days after today
        ("20260226" + "000001" + str(check_digit("20260226000001")), True),  # tomorrow is tolerated
        ("20260213000012", False),  # 14 digits
        ("２０２６０２１３００００１２６", False),  # full width is folded by find_ticket, not here
    ],
)
def test_is_valid_ticket(ticket: str, valid: bool) -> None:
    assert is_valid_ticket(ticket, TODAY) is valid


@pytest.mark.parametrize(
    "text",
    [
        TICKET,
        f"受理号：{TICKET}",
        "办件编号 20260213 000012 6",
        "流水号20260213-000012-6，麻烦查一下",
        "２０２６０２１３－００００１２－６",
        "我的件202602130000126办到哪了",
        "20260213—000012—6",
    ],
)
def test_find_ticket_in_free_text(text: str) -> None:
    assert find_ticket(text, TODAY).kind is TicketKind.VALID
    assert find_ticket(text, TODAY).ticket == TICKET


def test_find_ticket_invalid_shapes_are_not_echoed() -> None:
    wrong = find_ticket("受理号 202602130000127", TODAY)
    assert wrong.kind is TicketKind.INVALID and wrong.ticket == "202602130000127"
    # An ID number or a 12-digit number is a failed attempt, but the digits are not kept.
    assert find_ticket("360722199001011237", TODAY) == find_ticket("123456789012", TODAY)
    assert find_ticket("我的身份证 360722199001011237", TODAY).kind is TicketKind.INVALID
    assert find_ticket("我的身份证 360722199001011237", TODAY).ticket is None
    # A mobile number or short numbers are not ticket attempts.
    for text in ("13812345678", "+86 138 1234 5678", "1234", "我的件办到哪了", "2026年2月13日"):
        assert find_ticket(text, TODAY).kind is TicketKind.NONE, text


def test_helpers() -> None:
    assert mask_ticket(TICKET) == "20260213****126"
    assert format_ticket(TICKET) == "20260213 000012 6"
    assert "1234" in strip_ticket(f"{TICKET} 1234") and TICKET not in strip_ticket(f"{TICKET} 1234")


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("1234", "1234"),
        ("１２３４", "1234"),
        ("尾号 1234", "1234"),
        ("后四位是5678", "5678"),
        ("1 2 3 4", "1234"),
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("12345", None),
        ("1234 5678", None),
        ("123", None),
        ("好的", None),
    ],
)
def test_find_phone_proof(text: str, digits: str | None) -> None:
    proof = find_phone_proof(text)
    assert (proof.digits if proof else None) == digits


def test_phone_proof_matches() -> None:
    assert PhoneProof("5678").matches("13812345678")
    assert PhoneProof("5678").matches("+86 138 1234 5678")
    assert not PhoneProof("5679").matches("13812345678")
    assert PhoneProof("13812345678").matches("+8613812345678")
    assert not PhoneProof("13812340000").matches("13899995678")
    assert not PhoneProof("5678").matches("")
