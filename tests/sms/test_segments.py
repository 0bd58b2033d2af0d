"""Chinese SMS rules without I/O: segment counting, signature, sanitising, the reply budget, keywords."""

from __future__ import annotations

import re

import pytest

from sms_gateway.compose import MORE_HINT, OPT_OUT_HINT, Composer, has_list, mask_body
from sms_gateway.config import parse_signature
from sms_gateway.keywords import Keyword, keyword_of
from sms_gateway.segments import Encoding, count, is_gsm7

SIG = "县行政服务中心"  # 【县行政服务中心】 = 9 UCS-2 units
EMOJI = "😀"  # outside the BMP: 2 UTF-16 code units


# ------------------------------------------------------------------------------------------ counting


@pytest.mark.parametrize(
    ("label", "text", "encoding", "units", "segments"),
    [
        ("empty", "", Encoding.GSM7, 0, 0),
        ("one ASCII char", "a", Encoding.GSM7, 1, 1),
        ("ASCII at the single limit", "a" * 160, Encoding.GSM7, 160, 1),
        ("ASCII one over", "a" * 161, Encoding.GSM7, 161, 2),
        ("ASCII two full segments", "a" * 306, Encoding.GSM7, 306, 2),
        ("ASCII one over two", "a" * 307, Encoding.GSM7, 307, 3),
        ("ASCII three full segments", "a" * 459, Encoding.GSM7, 459, 3),
        ("ASCII one over three", "a" * 460, Encoding.GSM7, 460, 4),
        ("GSM accents stay GSM-7", "Grüße, Señor! ÄÖÜ ñ à é", Encoding.GSM7, 23, 1),
        ("extension chars cost two", "€" * 80, Encoding.GSM7, 160, 1),
        ("extension chars over the limit", "€" * 81, Encoding.GSM7, 162, 2),
        ("escape pair never split", "a" * 152 + "€" + "a" * 152, Encoding.GSM7, 306, 3),
        ("ç is not GSM-7", "façade", Encoding.UCS2, 6, 1),
        ("one CJK char makes UCS-2", "a" * 69 + "你", Encoding.UCS2, 70, 1),
        ("mixed one over", "a" * 70 + "你", Encoding.UCS2, 71, 2),
        ("full-width comma makes UCS-2", "Hello，world", Encoding.UCS2, 11, 1),
        ("CJK at the single limit", "你" * 70, Encoding.UCS2, 70, 1),
        ("CJK one over", "你" * 71, Encoding.UCS2, 71, 2),
        ("CJK two full segments", "你" * 134, Encoding.UCS2, 134, 2),
        ("CJK one over two", "你" * 135, Encoding.UCS2, 135, 3),
        ("CJK three full segments", "你" * 201, Encoding.UCS2, 201, 3),
        ("CJK one over three", "你" * 202, Encoding.UCS2, 202, 4),
        ("emoji at the single limit", EMOJI * 35, Encoding.UCS2, 70, 1),
        ("emoji one over", EMOJI * 36, Encoding.UCS2, 72, 2),
        ("surrogate pair never split", EMOJI * 67, Encoding.UCS2, 134, 3),
        ("CJK plus emoji, single", "你" * 68 + EMOJI, Encoding.UCS2, 70, 1),
        ("CJK plus emoji, straddling", "你" * 66 + EMOJI + "你" * 67, Encoding.UCS2, 135, 3),
    ],
)
def test_segment_counting(label: str, text: str, encoding: Encoding, units: int, segments: int) -> None:
    info = count(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments), label


def test_gsm_alphabet_edges() -> None:
    assert is_gsm7("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡§¿")
    assert is_gsm7("^{}\\[~]|€")
    assert not is_gsm7("`")  # backtick is not in GSM 03.38
    assert not is_gsm7("【")


@pytest.mark.parametrize(
    ("body_len", "segments"),
    [(61, 1), (62, 2), (125, 2), (126, 3), (192, 3), (193, 4)],
)
def test_signature_counts_towards_segments(body_len: int, segments: int) -> None:
    composer = Composer(SIG)
    msg = composer.message("办" * body_len)
    assert msg.body == "【县行政服务中心】" + "办" * body_len
    assert msg.segments == segments
    assert msg.encoding is Encoding.UCS2


def test_signature_turns_ascii_into_ucs2() -> None:
    assert Composer("").message("a" * 100).segments == 1
    with_sig = Composer(SIG).message("a" * 100)
    assert with_sig.encoding is Encoding.UCS2 and with_sig.segments == 2


# ------------------------------------------------------------------------------------------ sanitising


@pytest.mark.parametrize(
    ("label", "text", "expected"),
    [
        ("signature added once", "【县行政服务中心】您好", "您好"),
        ("a doubled signature loses both copies", "【县行政服务中心】【县行政服务中心】您好", "您好"),
        ("brackets in the body", "【营业执照】申请材料", "〔营业执照〕申请材料"),
        ("ID number masked", "身份证号360702199001011234已核验", "身份证号3****************4已核验"),
        ("mobile masked", "联系人手机13812345678", "联系人手机138****5678"),
        ("+86 mobile masked", "请致电+86 138-1234-5678", "请致电138****5678"),
        ("center landline kept", "咨询电话0797-3322110", "咨询电话0797-3322110"),
    ],
)
def test_sanitize(label: str, text: str, expected: str) -> None:
    assert Composer(SIG).sanitize(text) == expected, label


def test_mask_body_leaves_short_numbers() -> None:
    assert mask_body("受理号 2024000123，3号窗口") == "受理号 2024000123，3号窗口"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("县行政服务中心", "县行政服务中心"), ("【县政务】", "县政务"), (" 【AB】 ", "AB"), ("", "")],
)
def test_signature_setting_accepted(raw: str, expected: str) -> None:
    assert parse_signature(raw) == expected


@pytest.mark.parametrize("raw", ["县", "【县】", "县行政服务中心办公室", "县【政务】", "【】"])
def test_signature_setting_rejected(raw: str) -> None:
    if raw == "【】":
        assert parse_signature(raw) == ""
        return
    with pytest.raises(ValueError):
        parse_signature(raw)


# ------------------------------------------------------------------------------------------ budget


def _content(bodies: list[str]) -> str:
    """The text the citizen gets, without signatures, hints and whitespace."""
    joined = "".join(b.replace("【县行政服务中心】", "").replace(MORE_HINT, "") for b in bodies)
    return re.sub(r"\s+", "", joined)


PROSE = (
    "办理营业执照需要先进行名称自主申报，然后提交设立登记申请。"
    "材料齐全、符合法定形式的，当场予以登记；不能当场登记的，三个工作日内作出决定。"
    "您可以到政务服务中心一楼市场监管窗口办理，也可以通过网上政务服务平台提交申请。"
    "领取执照时请携带经办人身份证原件。如委托他人办理，还需提交授权委托书。"
    "办理过程中如有疑问，可以咨询窗口工作人员，或拨打咨询电话0797-3322110。"
)


def test_short_reply_is_sent_as_is() -> None:
    composer = Composer(SIG, reply_budget=3)
    reply = composer.reply(["您好！", "请问要办理什么业务？"])
    assert [m.body for m in reply.messages] == ["【县行政服务中心】您好！\n请问要办理什么业务？"]
    assert reply.held_back == []


def test_long_prose_is_cut_at_a_sentence_within_budget_with_a_hint() -> None:
    composer = Composer(SIG, reply_budget=3)
    reply = composer.reply([PROSE, PROSE])
    assert len(reply.messages) == 1
    first = reply.messages[0]
    assert first.segments <= 3
    assert first.body.endswith(MORE_HINT)
    assert first.body.removesuffix(MORE_HINT).rstrip().endswith(("。", "；", "！", "？"))
    assert reply.held_back
    for part in reply.held_back[:-1]:
        assert part.endswith(MORE_HINT)
        assert composer.message(part).segments <= 3
    assert not reply.held_back[-1].endswith(MORE_HINT)
    assert composer.message(reply.held_back[-1]).segments <= 3
    assert _content([first.body, *reply.held_back]) == _content([PROSE, PROSE])


def test_budget_is_configurable() -> None:
    one = Composer(SIG, reply_budget=1).reply([PROSE])
    assert one.messages[0].segments == 1 and one.held_back
    five = Composer(SIG, reply_budget=5).reply([PROSE])
    assert five.messages[0].segments <= 5
    assert len(five.held_back) < len(one.held_back)


MATERIALS = [
    "〔营业执照〕\n申请材料（共40项）：",
    *[f"{i}. 申请材料第{i}项（原件1份，复印件2份）" for i in range(1, 41)],
]


def _kb_style_texts() -> list[str]:
    """The knowledge base delivers a long materials list as several texts of at most 500 characters."""
    texts, cur = [], ""
    for line in MATERIALS:
        if cur and len(cur) + 1 + len(line) > 500:
            texts.append(cur)
            cur = line
        else:
            cur = f"{cur}\n{line}" if cur else line
    texts.append(cur)
    return texts


def test_a_materials_list_is_sent_whole() -> None:
    texts = _kb_style_texts()
    assert len(texts) >= 2 and has_list(texts)
    composer = Composer(SIG, reply_budget=3, max_segments_per_message=8)
    reply = composer.reply(texts)
    assert reply.held_back == []
    assert len(reply.messages) >= 2
    assert all(m.segments <= 8 for m in reply.messages)
    assert all(m.body.startswith("【县行政服务中心】") and m.body.count("【") == 1 for m in reply.messages)
    assert _content([m.body for m in reply.messages]) == _content(texts)
    for i in range(1, 41):  # every item, in order, never cut inside a line
        assert any(f"{i}. 申请材料第{i}项（原件1份，复印件2份）" in m.body for m in reply.messages)


def test_one_numbered_line_is_not_a_list() -> None:
    assert not has_list(["1. 只有一行编号", "其他说明"])
    assert has_list(["（1）身份证", "（2）户口簿"])
    assert has_list(["一、申请条件", "二、申请材料"])


def test_whole_splits_without_dropping_and_packs_short_texts() -> None:
    composer = Composer(SIG, reply_budget=1, max_segments_per_message=2)
    messages = composer.whole([PROSE, "谢谢。", "再见。"])
    assert len(messages) >= 2
    assert all(m.segments <= 2 for m in messages)
    assert _content([m.body for m in messages]) == _content([PROSE, "谢谢。", "再见。"])
    assert messages[-1].body.endswith("谢谢。\n再见。")  # short texts share a message


def test_broadcast_hint_added_once() -> None:
    composer = Composer(SIG)
    messages = composer.whole(["您好，明天上午停电检修，大厅暂停办理业务。"], opt_out_hint=True)
    assert messages[-1].body.endswith(OPT_OUT_HINT)
    again = composer.whole([messages[-1].body], opt_out_hint=True)
    assert again[-1].body.count(OPT_OUT_HINT) == 1


def test_a_sentence_longer_than_a_message_is_split_hard_but_kept() -> None:
    composer = Composer(SIG, reply_budget=1, max_segments_per_message=1)
    text = "办" * 200
    messages = composer.whole([text])
    assert all(m.segments == 1 for m in messages)
    assert "".join(m.body.removeprefix("【县行政服务中心】") for m in messages) == text


# ------------------------------------------------------------------------------------------ keywords


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("T", Keyword.OPT_OUT),
        ("t", Keyword.OPT_OUT),
        ("TD", Keyword.OPT_OUT),
        ("td", Keyword.OPT_OUT),
        ("N", Keyword.OPT_OUT),
        ("退订", Keyword.OPT_OUT),
        ("退訂", Keyword.OPT_OUT),
        (" 退订。", Keyword.OPT_OUT),
        ("ＴＤ", Keyword.OPT_OUT),
        ("STOP", Keyword.OPT_OUT),
        ("Stop!", Keyword.OPT_OUT),
        ("UNSUBSCRIBE", Keyword.OPT_OUT),
        ("START", Keyword.OPT_IN),
        ("start", Keyword.OPT_IN),
        ("订阅", Keyword.OPT_IN),
        ("訂閱", Keyword.OPT_IN),
        ("恢复", Keyword.OPT_IN),
        ("HELP", Keyword.HELP),
        ("帮助", Keyword.HELP),
        ("幫助", Keyword.HELP),
        ("?", Keyword.HELP),
        ("？", Keyword.HELP),
        ("我要退订短信", None),
        ("TDD", None),
        ("查询 2024000123", None),
        ("", None),
        ("yes", None),
    ],
)
def test_keywords(text: str, keyword: Keyword | None) -> None:
    assert keyword_of(text) is keyword
