"""The action server over HTTP with Rasa 3.6's action-call payloads: real knowledge base on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.gateway.actions.guide import option_number
from knowledge_base.service import KnowledgeBase
from tests.support.actions import action_call

OPEN = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Beijing (as the fixture starts)
CLOSED = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # Saturday


async def test_guide_answer_names_the_item_and_sets_the_slot(actions) -> None:
    texts, slots, responses = await actions(action_call("action_answer_guide", "个体户营业执照要带什么材料"))
    assert "个体工商户设立登记" in texts[0].splitlines()[0]
    assert slots["last_item_code"] == "36072200-XK-001" and slots["pending_choices"] is None
    # the last message tells the gateway's statistics (conversation_turns) which item answered
    custom = responses[-1]["custom"]
    assert {k: custom[k] for k in ("answered", "item_code", "route", "aspect")} == {
        "answered": "kb", "item_code": "36072200-XK-001", "route": "guide", "aspect": "materials"
    }  # fmt: skip
    # and what the decision rested on: the knowledge base's score, NLU's intent and its confidences
    assert custom["score"] > 0.4 and custom["intent"] == "ask_service_guide" and custom["confidence"] == 0.9
    assert all(not r.get("custom") for r in responses[:-1])


async def test_an_unknown_question_is_marked_as_a_fallback(actions) -> None:
    texts, _, responses = await actions(action_call("action_default_fallback", "火星移民怎么申请"))
    assert texts and responses[-1]["custom"] == {"answered": "fallback", "route": "fallback"}


async def test_follow_up_uses_the_last_item(actions) -> None:
    texts, slots, _ = await actions(
        action_call("action_answer_guide", "那要多少钱", last_item_code="36072200-XK-001")
    )
    assert "个体工商户设立登记" in texts[0] and slots["last_item_code"] == "36072200-XK-001"


async def test_menu_click_without_text_prompts(actions) -> None:
    texts, slots, _ = await actions(action_call("action_answer_guide", "/ask_service_guide"))
    assert texts == [
        "请问您想咨询哪个事项？可以直接说事项名称和想了解的内容，例如：“个体户营业执照要带什么材料”。"
    ]
    assert slots == {}


async def test_choices_then_a_number_picks_with_the_original_question(actions) -> None:
    texts, slots, _ = await actions(action_call("action_answer_guide", "营业执照"))
    assert slots["pending_choices"], texts  # ambiguous: a numbered list
    assert slots["pending_question"] == "营业执照"
    assert "回复数字" in texts[-1] or "1." in texts[0]
    choices = slots["pending_choices"]
    texts2, slots2, _ = await actions(
        action_call(
            "action_choose_option", "2", intent="choose_option", pending_choices=choices,
            pending_question="营业执照",
        )
    )  # fmt: skip
    assert slots2["last_item_code"] == choices[1] and slots2["pending_choices"] is None
    assert texts2 and "【" in texts2[0]  # the chosen item's answer, its name first


async def test_out_of_range_number_asks_again(actions) -> None:
    texts, _, _ = await actions(
        action_call("action_choose_option", "9", intent="choose_option", pending_choices=["a", "b"])
    )
    assert texts == ["请回复 1 到 2 之间的数字，选择您要咨询的事项。"]


@pytest.mark.parametrize(
    ("intent", "pending", "expected"),
    [
        ("deny", ["36072200-XK-001"], "好的。请换个说法"),
        ("deny", None, "好的。还有什么可以帮您"),
        ("affirm", None, "好的。还有什么可以帮您"),
        ("affirm", ["36072200-XK-001", "36072200-XK-003"], "请回复 1 到 2"),
    ],
)
async def test_yes_and_no(actions, intent, pending, expected) -> None:
    texts, _, _ = await actions(
        action_call("action_choose_option", "是的", intent=intent, pending_choices=pending)
    )
    assert texts[0].startswith(expected)


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("合作社登记要交钱吗", "stop", "农民专业合作社设立登记"),  # NLU heard 不要/算了 in a guide question
        ("合作社登记要交钱吗", "deny", "农民专业合作社设立登记"),
        ("不要了", "stop", "好的。还有什么可以帮您"),
        ("算了，不办了", "stop", "好的。还有什么可以帮您"),
    ],
)
async def test_a_question_nlu_took_for_a_no_or_a_stop_is_answered(actions, text, intent, expected) -> None:
    texts, _, _ = await actions(action_call("action_choose_option", text, intent=intent))
    assert expected in texts[0], texts


async def test_affirm_with_one_suggestion_answers_it(actions) -> None:
    texts, slots, _ = await actions(
        action_call("action_choose_option", "对", intent="affirm", pending_choices=["36072200-XK-001"])
    )
    assert "个体工商户设立登记" in texts[0] and slots["last_item_code"] == "36072200-XK-001"


async def test_handoff_in_and_out_of_office_hours(actions) -> None:
    _, _, responses = await actions(action_call("action_human_handoff", "转人工", intent="human_handoff"))
    assert responses[0]["custom"] == {"handoff": "transfer", "route": "handoff"}
    actions.clock["now"] = CLOSED
    texts, _, responses = await actions(action_call("action_human_handoff", "转人工", intent="human_handoff"))
    assert responses[0]["custom"] == {"handoff": "leave_message", "route": "handoff"} and "留言" in texts[0]


async def test_handoff_over_sms_takes_a_message(actions) -> None:
    _, _, responses = await actions(
        action_call("action_human_handoff", "人工", intent="human_handoff", channel="sms")
    )
    assert responses[0]["custom"] == {"handoff": "leave_message", "route": "handoff"}


async def test_fallback_tries_the_knowledge_base_first(actions) -> None:
    texts, slots, _ = await actions(
        action_call("action_default_fallback", "结婚证咋办", intent="nlu_fallback")
    )
    assert "结婚登记" in texts[0] and slots["last_item_code"]
    texts, _, _ = await actions(action_call("action_default_fallback", "火星移民签证", intent="nlu_fallback"))
    assert "0797-3322110" in " ".join(texts)


async def test_unknown_action_is_404(actions) -> None:
    resp = await actions.client.post("/webhook", json=action_call("action_nope", "x"))
    assert resp.status == 404 and (await resp.json())["action_name"] == "action_nope"


async def test_what_rasas_json_encoder_writes_is_read(actions) -> None:
    """Rasa posts with Python's json, which writes NaN for a float slot holding nan; the answer is UTF-8
    JSON that Rasa's aiohttp client reads (content type application/json)."""
    import json
    import math

    payload = action_call("action_answer_guide", "个体户营业执照要带什么材料", score=math.nan)
    body = json.dumps(payload)
    assert "NaN" in body
    resp = await actions.client.post("/webhook", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200 and resp.content_type == "application/json"
    answer = json.loads((await resp.read()).decode("utf-8"))
    assert "个体工商户设立登记" in answer["responses"][0]["text"]


async def test_a_body_that_is_not_json_is_400(actions) -> None:
    resp = await actions.client.post(
        "/webhook", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json()) == {"error": "Invalid body request"}


async def test_a_failing_action_answers_politely(actions, monkeypatch) -> None:
    async def boom(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(KnowledgeBase, "answer", boom)
    texts, _, _ = await actions(action_call("action_answer_guide", "身份证怎么办"))
    assert "0797-3322110" in texts[0] and "fire" not in texts[0]


@pytest.mark.parametrize(
    ("text", "number"), [("2", 2), ("第2个", 2), ("第三个", 3), ("两", 2), ("好的", None)]
)
def test_option_number(text: str, number: int | None) -> None:
    assert option_number(text) == number


# ---------------------------------------------------------------------------------------------- complaints

FORM: dict[str, Any] = {
    "complaint_description": "窗口工作人员态度恶劣，对我大声呵斥",
    "complaint_respondent": "5号窗口",
    "complaint_phone": "13812345678",
    "complaint_confidential": True,
    "complaint_confirm": True,
    "complaint_form_id": "f1",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("我要投诉，大厅有人受伤流血了", "120"), ("我要申请行政复议", "复议"), ("我要投诉", "我来帮您登记")],
)
async def test_start_complaint_triages(actions, text, expected) -> None:
    texts, _, _ = await actions(action_call("action_start_complaint", text, intent="complain"))
    assert expected in " ".join(texts)


async def test_start_complaint_prefills_the_details_and_starts_the_form(actions) -> None:
    _, slots, _ = await actions(
        action_call("action_start_complaint", "我要投诉，3号窗口的人态度很差", intent="complain")
    )
    assert slots["complaint_description"] == "3号窗口的人态度很差" and slots["complaint_form_id"]
    assert {"event": "followup", "name": "complaint_form"} in [
        {k: e.get(k) for k in ("event", "name")} for e in actions.events
    ]


async def test_submit_files_exactly_once_and_offers_merge_next_time(actions) -> None:
    texts, slots, responses = await actions(
        action_call("action_submit_complaint", "确认", intent="affirm", **FORM)
    )
    assert "编号：TS" in texts[0] and slots["complaint_description"] is None
    receipt = responses[0]["custom"]["sms_template"]  # the receipt in the complaint_receipt template's terms
    assert receipt["kind"] == "complaint_receipt" and receipt["values"]["number"] in texts[0]
    assert receipt["values"]["days"].isdigit()
    again, _, _ = await actions(action_call("action_submit_complaint", "确认", intent="affirm", **FORM))
    assert again == texts  # the same form id: the same complaint, not a second one
    offer, slots, _ = await actions(
        action_call("action_submit_complaint", "确认", intent="affirm", **{**FORM, "complaint_form_id": "f2"})
    )
    assert "是否将本次内容补充" in offer[0] and slots["complaint_merge_into"].startswith("TS")
    merged, _, _ = await actions(
        action_call(
            "action_choose_option", "是", intent="affirm",
            **{**FORM, "complaint_form_id": "f2", "complaint_merge_into": slots["complaint_merge_into"]},
        )
    )  # fmt: skip
    assert "已将本次内容补充到投诉" in merged[0]


async def test_declined_confirmation_files_nothing(actions) -> None:
    texts, _, _ = await actions(
        action_call("action_submit_complaint", "否", intent="deny", **{**FORM, "complaint_confirm": False})
    )
    assert "已取消" in texts[0]


async def test_the_form_skips_the_phone_over_sms(actions) -> None:
    payload = action_call("validate_complaint_form", "3号窗口", intent="inform", channel="sms")
    payload["tracker"]["active_loop"] = {"name": "complaint_form"}
    payload["domain"]["forms"] = {"complaint_form": {"required_slots": list(FORM)[:5]}}
    payload["tracker"]["slots"].update(
        {"requested_slot": "complaint_respondent", "complaint_respondent": "3号窗口"}
    )
    payload["tracker"]["events"] = [{"event": "slot", "name": "complaint_respondent", "value": "3号窗口"}]
    _, slots, _ = await actions(payload)
    assert slots.get("requested_slot") != "complaint_phone"


async def test_query_complaint_only_for_its_sender(actions) -> None:
    texts, _, _ = await actions(action_call("action_submit_complaint", "确认", intent="affirm", **FORM))
    number = texts[0].split("编号：")[1][:12]
    mine, _, _ = await actions(
        action_call("action_query_complaint", f"查询投诉 {number}", intent="query_complaint")
    )
    assert number in mine[0]
    payload = action_call("action_query_complaint", f"查询投诉 {number}", intent="query_complaint")
    payload["sender_id"] = payload["tracker"]["sender_id"] = "wx:oSomeoneElse"
    theirs, _, _ = await actions(payload)
    unknown, _, _ = await actions(
        action_call("action_query_complaint", "查询投诉 TS2222222222", intent="query_complaint")
    )
    assert number not in theirs[0] and theirs[0] == unknown[0]
