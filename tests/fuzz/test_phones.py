"""Fuzzing phone numbers (``bot.core.phone``) and the masking of personal data (``bot.core.masking``, and the
SMS composer's ``mask_body``).

Properties: the parsers never raise on any text (``to_e164``: only ``ValueError``); every mainland mobile is
read as the same number however it is written (spaces, dashes, +86, 86, 0086, full-width digits), and a
parsed number parsed again is the same number; masking never lets a mobile number's 11 digits or an ID
number's 18 characters through, whatever text is around them and however the number is written.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from hypothesis import example, given
from hypothesis import strategies as st

from bot.core.masking import mask_phone, mask_sender, mask_text
from bot.core.phone import contact_phone, national_digits, parse_phone, sms_address, to_e164
from sms_gateway.compose import mask_body
from tests.fuzz import fuzz_settings

FULL_WIDTH = str.maketrans("0123456789+-", "０１２３４５６７８９＋－")


def _mobile(number: str) -> bool:
    phone = parse_phone(number)
    return phone is not None and phone.is_mainland_mobile


mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True).filter(_mobile)
text = st.text(max_size=40)
phone_like = st.from_regex(r"[+(（]?[0-9０-９ \-()+]{0,20}", fullmatch=True)


def _no_digits(ch: str) -> bool:
    """Text around a number that adds no digits of its own (not even after NFKC: ①, ２)."""
    return not any(unicodedata.category(c) in ("Nd", "No", "Nl") for c in unicodedata.normalize("NFKC", ch))


filler = st.text(st.characters(exclude_categories=["Cs"]).filter(_no_digits), max_size=15)


@st.composite
def written_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """(a mainland mobile's 11 digits, the way someone wrote it)."""
    number = draw(mobiles)
    sep = draw(st.sampled_from(["", " ", "-"]))
    body = f"{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}"
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "86", "0086", "0086 ", "+86-"]))
    written = prefix + body
    if draw(st.booleans()):
        written = written.translate(FULL_WIDTH)
    return number, written


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """18-character resident ID numbers (region, birth date, sequence, check character)."""
    region = draw(st.from_regex(r"[1-9][0-9]{5}", fullmatch=True))
    born = draw(st.dates(date(1900, 1, 1), date(2099, 12, 31)))
    sequence = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    return f"{region}{born:%Y%m%d}{sequence}{draw(st.sampled_from('0123456789Xx'))}"


def folded(value: str) -> str:
    return unicodedata.normalize("NFKC", value).upper()


# ---------------------------------------------------------------------------------------------- phones


@fuzz_settings(300)
@given(raw=st.one_of(text, phone_like))
def test_phone_parsers_never_raise(raw) -> None:
    phone = parse_phone(raw)
    if phone is not None:
        assert phone.e164.startswith("+") and phone.e164[1:].isdigit()
        if phone.kind != "other":  # (an invalid +86 number such as 000000000 need not read back the same:
            again = parse_phone(phone.e164)  # libphonenumber drops one more zero; nothing uses it)
            assert again is not None and again.e164 == phone.e164
            national = parse_phone(phone.national)
            assert national is not None and national.e164 == phone.e164
    try:
        e164 = to_e164(raw)
    except ValueError as exc:
        assert re.search(r"\d{7}", str(exc)) is None  # the message masks the number
    else:
        assert to_e164(e164) == e164
    contact_phone(raw)
    national_digits(raw)
    sms_address(raw)
    assert not re.search(r"\d{5}\*", mask_phone(raw))


@fuzz_settings(200)
@given(mobile=written_mobiles())
def test_a_mobile_is_the_same_however_written(mobile) -> None:
    number, written = mobile
    assert to_e164(written) == "+86" + number
    assert contact_phone(written) == number
    assert national_digits(written) == number
    assert number not in re.sub(r"\D", "", mask_phone(written)) and mask_phone(written).endswith(number[7:])
    assert mask_sender(f"sms:{to_e164(written)}") == f"sms:{number[:3]}****{number[7:]}"


# ---------------------------------------------------------------------------------------------- masking


@fuzz_settings(300)
@given(before=filler, mobile=written_mobiles(), after=filler)
@example(before="电话", mobile=("13812345678", "１３８１２３４５６７８"), after="")  # found: full-width
@example(before="", mobile=("13812345678", "0086 138-1234-5678"), after="")  # found: 0086
def test_masking_never_lets_a_mobile_through(before, mobile, after) -> None:
    number, written = mobile
    for mask in (mask_text, mask_body):
        masked = mask(before + written + after)
        digits = re.sub(r"\D", "", folded(masked))
        assert number not in digits, (mask.__name__, masked)


@fuzz_settings(300)
@given(before=filler, id_number=id_numbers(), after=filler, full_width=st.booleans())
@example(before="身份证", id_number="110105199001011234", after="", full_width=True)  # found: full-width
@example(before="ID:", id_number="11010519900101123X", after="ok", full_width=False)  # found: letters after
def test_masking_never_lets_an_id_number_through(before, id_number, after, full_width) -> None:
    written = id_number.translate(FULL_WIDTH) if full_width else id_number
    for mask in (mask_text, mask_body):
        masked = folded(mask(before + written + after))
        assert folded(id_number) not in masked, (mask.__name__, masked)
        assert folded(id_number)[1:-1] not in masked


@fuzz_settings(200)
@given(value=text)
def test_masking_never_raises(value) -> None:
    for mask in (mask_text, mask_body, mask_phone):
        assert isinstance(mask(value), str)
    assert mask_text(mask_text(value)) == mask_text(value)
