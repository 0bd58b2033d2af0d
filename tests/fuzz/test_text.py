"""Fuzzing the text handling every citizen message and reply goes through: normalisation
(``bot.core.textnorm``), SMS keywords (``sms_gateway.keywords``), the reply splitter of the WeChat channel
(``bot.gateway.channels.textsplit``) and the SMS composer and segment counter.

Properties: normalisation never raises and is idempotent (normalising twice changes nothing more), leaves
no full-width ASCII, Traditional characters of the common table or runs of whitespace; a keyword is
recognised however it is cased, spaced or punctuated; a reply is split into parts that each fit the byte
limit, none empty, and that together are the reply (nothing dropped); an SMS reply is composed into messages
within the segment limits whatever the text.
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from bot.core.textnorm import normalize
from bot.gateway.channels.textsplit import pack, split_by_bytes, utf8_len
from sms_gateway.compose import Composer
from sms_gateway.keywords import HELP_WORDS, OPT_IN_WORDS, OPT_OUT_WORDS, Keyword, keyword_of
from sms_gateway.segments import count
from tests.fuzz import fuzz_settings

# Citizens' text: CJK (Simplified and Traditional), full-width forms, emoji, every kind of space.
citizen_chars = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E),
    st.sampled_from(list("營業執照辦證號碼\u3000\u00a0\u2028\t\n\r 。，！？")),
)
citizen_text = st.text(citizen_chars, max_size=60)
no_surrogates = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)


@fuzz_settings(400)
@given(text=citizen_text)
def test_normalisation_is_idempotent(text) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip() and not re.search(r"\s{2}", once)
    assert not re.search("[\uff01-\uff5e\u3000]", once)  # no full-width ASCII or ideographic space left


@fuzz_settings(200)
@given(
    word=st.sampled_from(sorted(OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS)),
    case=st.sampled_from([str.upper, str.lower, str.title]),
    before=st.text(" \t\u3000", max_size=2),
    after=st.text(" \t\u3000.。!！~～", max_size=3),
    full_width=st.booleans(),
)
@example(word="TD", case=str.upper, before="", after="。 ！", full_width=False)  # found: not a keyword
@example(word="?", case=str.upper, before="", after="~ .", full_width=True)
def test_keywords_however_written(word, case, before, after, full_width) -> None:
    written = case(word)
    if full_width:
        written = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in written)
    expected = (
        Keyword.OPT_OUT if word in OPT_OUT_WORDS else Keyword.OPT_IN if word in OPT_IN_WORDS else Keyword.HELP
    )
    assert keyword_of(before + written + after) is expected


@fuzz_settings(300)
@given(text=citizen_text)
def test_keyword_detection_never_raises(text) -> None:
    assert keyword_of(text) in (None, *Keyword)


@fuzz_settings(300)
@given(text=no_surrogates, limit=st.integers(4, 2048))
def test_replies_are_split_within_the_limit_and_nothing_is_dropped(text, limit) -> None:
    parts = split_by_bytes(text, limit)
    assert all(0 < utf8_len(p) <= limit for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


@fuzz_settings(200)
@given(texts=st.lists(no_surrogates, max_size=4), limit=st.sampled_from([2048, 600, 64]))
def test_packed_replies_fit(texts, limit) -> None:
    parts = pack(texts, limit)
    assert all(0 < utf8_len(p) <= limit for p in parts)
    assert "".join(parts).replace("\n", "") == "".join(texts).replace("\n", "")


@fuzz_settings(200)
@given(texts=st.lists(no_surrogates, max_size=4), budget=st.integers(1, 4))
def test_sms_replies_are_composed_within_the_limits(texts, budget) -> None:
    composer = Composer("县行政服务中心", reply_budget=budget, max_segments_per_message=8)
    reply = composer.reply(texts)
    for message in reply.messages:
        assert message.body.startswith("【县行政服务中心】") and message.body.count("【") == 1
        assert count(message.body).segments == message.segments <= composer.per_message
    for message in composer.whole(texts):
        assert message.segments <= composer.per_message
