"""Scope triage before filing: emergencies, lawful channels, not the center's business, consultations."""

from __future__ import annotations

import pytest

from bot.domains.complaints.citizen import confirmation_text, parse_rating
from bot.domains.complaints.intake import NewComplaint
from bot.domains.complaints.states import Kind
from bot.domains.complaints.triage import Scope, triage


@pytest.mark.parametrize(
    ("text", "hotline"),
    [
        ("大厅里着火了！", "119"),
        ("有人在3号窗口晕倒了", "120"),
        ("门口有人打人，快报警", "110"),
        ("我在停车场被偷了", "110"),
        ("中心门口发生车祸", "122"),
    ],
)
def test_emergencies_go_to_the_hotline_at_once(text: str, hotline: str) -> None:
    result = triage(text)
    assert result.scope is Scope.EMERGENCY and result.hotline == hotline
    assert hotline in result.message and "立即拨打" in result.message


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("我对不予许可的决定不服，想申请行政复议", "复议"),
        ("我要起诉税务局", "人民法院"),
        ("这个事我已经去信访局上访过了", "信访局"),
        ("我要向纪委反映他违纪", "12388"),
    ],
)
def test_legal_matters_get_the_lawful_channel(text: str, channel: str) -> None:
    result = triage(text)
    assert result.scope is Scope.LEGAL_CHANNEL and channel in result.message


@pytest.mark.parametrize(
    ("text", "who"),
    [
        ("网购的衣服质量太差商家不给退货", "12315"),
        ("老板拖欠工资三个月了", "12333"),
        ("小区物业不管楼道里的垃圾", "12345"),
        ("工厂晚上偷排污水", "12369"),
    ],
)
def test_not_the_centers_business_says_who_handles_it(text: str, who: str) -> None:
    result = triage(text)
    assert result.scope is Scope.NOT_OURS and who in result.message and "不属于政务服务中心" in result.message


@pytest.mark.parametrize("text", ["办营业执照需要什么材料？", "社保窗口几点下班", "在哪里办居住证"])
def test_questions_are_consultations(text: str) -> None:
    assert triage(text) == triage(text) and triage(text).scope is Scope.CONSULTATION


@pytest.mark.parametrize(
    "text",
    [
        "3号窗口的人态度很差",
        "我要投诉，办个证让我跑了好几趟",
        "窗口工作人员上班玩手机，不理人",
        "为什么窗口态度这么差？",  # a question, but complaint-shaped
        "举报窗口乱收费",
        "投诉商家的投诉窗口不受理我的材料",  # complaint markers win over out-of-scope words
    ],
)
def test_complaints_are_filed(text: str) -> None:
    result = triage(text)
    assert result.scope is Scope.COMPLAINT and result.message == ""


@pytest.mark.parametrize(
    ("text", "score"),
    [("5", 5), ("５分", 5), (" 1 ", 1), ("非常满意", 5), ("满意！", 4), ("基本满意", 3), ("不满意", 2),
     ("非常不满意。", 1), ("6", None), ("0", None), ("满意吧", None), ("", None), ("12", None)],
)  # fmt: skip
def test_parse_rating(text: str, score: int | None) -> None:
    assert parse_rating(text) == score


def test_confirmation_text_reads_back_with_the_phone_masked() -> None:
    filed = NewComplaint(
        "wechat",
        "wx:o1",
        "态度很差",
        respondent="3号窗口",
        occurred="今天上午",
        phone="13812345678",
        confidential=True,
    )
    text = confirmation_text(filed)
    assert text.splitlines() == [
        "请确认您的投诉：", "内容：态度很差", "涉及窗口/部门/人员：3号窗口", "发生时间：今天上午",
        "联系电话：138****5678", "是否保密：是", "回复“确认”提交，回复“取消”放弃。",
    ]  # fmt: skip
    assert "涉及" not in confirmation_text(NewComplaint("sms", "sms:+86138", "建议", kind=Kind.SUGGESTION))
