"""Reply texts: aspect first, item named on line 1, full materials list, FAQ, channel limits, plain text."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from knowledge_base.answers import (
    SMS_MAX_CHARS,
    WECHAT_MAX_BYTES,
    match_faq,
    render_answer,
    render_choices,
    render_not_found,
    split_message,
)
from knowledge_base.importer import read_catalogue
from knowledge_base.schema import GuideItem
from tests.support.kb import SAMPLE_CATALOGUE

ITEMS = {it.code: it for it in read_catalogue(SAMPLE_CATALOGUE).items}
MARKDOWN = re.compile(r"\*\*|__|```|^#|^\s*[-*] |\[[^\]]*\]\(")


def _check_plain(messages: list[str]) -> None:
    for m in messages:
        assert not MARKDOWN.search(m), m


def test_materials_full_list_every_item() -> None:
    item = max(ITEMS.values(), key=lambda it: len(it.materials_list))
    for channel in ("wechat", "sms"):
        messages = render_answer(item, ["materials"], channel=channel)
        joined = "\n".join(messages)
        assert messages[0].startswith(f"【{item.name}】")
        assert f"共{len(item.materials_list)}项" in joined
        for i, material in enumerate(item.materials_list, start=1):
            assert f"{i}. {material}" in joined
        _check_plain(messages)


def test_long_materials_split_for_wechat_and_sms() -> None:
    base = ITEMS["36072200-QR-035"]
    mats = tuple(
        f"第{i}种证明材料原件及复印件各1份（" + "由有关部门出具并加盖公章，" * 6 + "）" for i in range(1, 41)
    )
    item = replace(base, materials_list=mats)
    wechat = render_answer(item, ["materials"], channel="wechat")
    sms = render_answer(item, ["materials"], channel="sms")
    assert len(wechat) > 1 and len(sms) > len(wechat)
    assert all(len(m.encode("utf-8")) <= WECHAT_MAX_BYTES for m in wechat)
    assert all(len(m) <= SMS_MAX_CHARS for m in sms)
    for messages in (wechat, sms):
        joined = "\n".join(messages)
        assert all(f"{i}. {m}" in joined for i, m in enumerate(mats, start=1))  # nothing dropped
    # split at line boundaries: every message starts a line of the full text
    full = "\n".join(wechat)
    assert all(("\n" + m.split("\n")[0]) in ("\n" + full) for m in wechat)


def test_split_message_limits_and_hard_split() -> None:
    text = "\n".join(f"第{i}行：" + "很长的内容" * 30 for i in range(50))
    parts = split_message(text, "wechat")
    assert len(parts) > 1 and all(len(p.encode()) <= WECHAT_MAX_BYTES for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    one_line = "字" * 3000  # no line breaks, no punctuation
    parts = split_message(one_line, "sms")
    assert [len(p) for p in parts] == [500] * 6 and "".join(parts) == one_line
    assert split_message("短消息", "wechat") == ["短消息"]


@pytest.mark.parametrize(
    ("aspect", "expected"),
    [
        ("fee", "工本费20元/证"),
        ("time_limit", "承诺办结时限：15个工作日"),
        ("location", "一楼8号窗口"),
        ("office_hours", "周一至周五"),
        ("online", "暂不支持网上办理"),
        ("conditions", "受理条件："),
        ("process", "1. 申请"),
        ("legal_basis", "居民身份证法"),
        ("phone", "0797-3328110"),
    ],
)
def test_each_aspect_answered_first_from_data(aspect: str, expected: str) -> None:
    messages = render_answer(ITEMS["36072200-QR-035"], [aspect])
    lines = messages[0].split("\n")
    assert lines[0] == "【居民身份证补领】"
    assert expected in "\n".join(lines[1:4])
    _check_plain(messages)


def test_overview_without_aspect() -> None:
    text = "\n".join(render_answer(ITEMS["36072200-GG-066"], []))
    for part in (
        "【社会保障卡补换】",
        "办理窗口：二楼21-24号窗口（人社）",
        "申请材料：共4项",
        "承诺时限：即办",
        "收费：补换卡工本费32元/张",
        "网上办理：支持",
        "您还可以问",
    ):
        assert part in text
    sms = render_answer(ITEMS["36072200-GG-066"], [], channel="sms")
    assert len(sms) == 1 and "您还可以问" not in sms[0] and len(sms[0]) <= SMS_MAX_CHARS


def test_the_steps_say_what_else_one_must_know_to_go() -> None:
    # "开个小卖部咋办": the steps, the window, the time limit, the fee and how many papers
    text = "\n".join(render_answer(ITEMS["36072200-XK-001"], ["process"]))
    for part in (
        "办理流程：",
        "1. 申请",
        "办理窗口：一楼3-6号窗口",
        "承诺时限：即办；收费：不收费",
        "需准备材料6项",
    ):
        assert part in text
    sms = "\n".join(render_answer(ITEMS["36072200-XK-001"], ["process"], channel="sms"))
    assert "办理流程：申请→受理" in sms and "承诺时限" not in sms  # SMS stays short


def test_faq_answer_included() -> None:
    item = ITEMS["36072200-XK-008"]
    assert match_faq(item, "营业执照丢了要不要登报") is not None
    assert match_faq(item, "今天天气怎么样") is None
    text = "\n".join(render_answer(item, [], question="营业执照丢了还要登报声明吗"))
    assert "不需要登报" in text and text.startswith("【营业执照遗失补领/换发】")
    text = "\n".join(render_answer(ITEMS["36072200-GG-066"], ["time_limit"], question="补卡要多久"))
    assert text.index("承诺办结时限") < text.index("相关问答") and "立等可取" in text


def test_online_text_names_the_channels() -> None:
    text = "\n".join(render_answer(ITEMS["36072200-GG-071"], ["online"]))
    assert "支持网上办理，可通过赣服通、江西政务服务网办理" in text


def test_choices_and_not_found_texts() -> None:
    items: list[GuideItem] = [ITEMS["36072200-QR-033"], ITEMS["36072200-QR-035"]]
    assert render_choices(items) == [
        "您想咨询的是：\n1. 居民身份证首次申领\n2. 居民身份证补领\n回复数字即可。"
    ]
    text = render_not_found(phone="0797-1234567", hours="周一至周五")[0]
    assert "0797-1234567" in text and "周一至周五" in text
    sms = render_not_found(channel="sms")[0]
    assert len(sms) <= 70 * 2 and "0797-3322110" in sms
