"""The Aliyun template registry: the shipped example passes the checks Aliyun's review applies, and the
composer fills a kind's variables or refuses with a message staff can act on — table-driven."""

from __future__ import annotations

import pytest

from sms_gateway.aliyun.templates import Template, TemplateError, TemplateRegistry, check_template

REGISTRY = TemplateRegistry.load()


def test_the_example_registry_covers_every_kind_we_send() -> None:
    kinds = {"case_status", "complaint_receipt", "complaint_reply", "guide_short", "keyword_help",
             "opt_out_confirmation", "opt_in_confirmation", "broadcast_notice"}  # fmt: skip
    assert kinds <= set(REGISTRY.templates)


def test_a_filled_template() -> None:
    message = REGISTRY.fill("case_status", {"ticket": "202611030000152", "status": "已办结，请领证"})
    assert message.code == "SMS_480001"
    assert message.params == {"ticket": "202611030000152", "status": "已办结，请领证"}
    assert message.text == "您好，您的办件202611030000152当前状态：已办结，请领证。详询0797-3322110"


@pytest.mark.parametrize(
    ("label", "kind", "values", "says"),
    [
        ("unknown kind", "birthday", {}, "没有登记"),
        ("not yet approved", "broadcast_meeting", {"name": "张", "time": "周一", "place": "三楼"},
         "尚未通过审核"),
        ("missing variable", "case_status", {"ticket": "1"}, "status"),
        ("too long", "case_status", {"ticket": "1", "status": "办" * 36}, "超过 35 个字"),
        ("a name over 20", "broadcast_notice", {"name": "张" * 21, "matter": "年审", "deadline": "12月31日"},
         "20"),
        ("a URL", "case_status", {"ticket": "1", "status": "详见 www.xf.gov.cn"}, "网址"),
        ("a ticket with spaces", "case_status", {"ticket": "2026 1103", "status": "已受理"}, "编号"),
    ],
)  # fmt: skip
def test_what_does_not_fit_is_refused_with_a_reason(label: str, kind: str, values: dict, says: str) -> None:
    with pytest.raises(TemplateError, match=says):
        REGISTRY.fill(kind, values)


@pytest.mark.parametrize(
    ("content", "variables", "problem"),
    [
        ("${a}${b}", {"a": "other", "b": "other"}, "only of variables"),
        ("【中心】您好${a}", {"a": "other"}, "【】"),
        ("您好${a}${b}。", {"a": "other", "b": "other"}, "adjacent"),
        ("通知：${a}，退订回T", {"a": "other"}, "opt-out"),
        ("您好${a}", {"a": "other", "b": "other"}, "differ"),
        ("您好${a}", {"a": "colour"}, "unknown variable types"),
    ],
)
def test_what_aliyun_would_not_approve(content: str, variables: dict[str, str], problem: str) -> None:
    assert any(problem in p for p in check_template(Template("notice", "SMS_1", content, variables)))
