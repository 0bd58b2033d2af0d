"""Rasa's intent against the knowledge base: a guide question NLU took for a case lookup, a hand-off, an
out-of-scope message or a yes/no is answered from the catalogue; a transactional intent with evidence of
its own (a ticket number, progress words, a request for a person) keeps its route; out-of-scope messages are
declined with the center's phone; a complaint description typed into the form is the description, never an
unanswered guide question.  Every reply says its route."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bot.gateway.actions.routing import (
    asks_for_person,
    case_lookup,
    complaint_request,
    describes_a_grievance,
    progress_evidence,
    transactional,
)
from knowledge_base.models import KbUnanswered
from tests.support.actions import action_call

LICENCE = "36072200-XK-001"  # 个体工商户设立登记


def _route(responses: list[dict[str, Any]]) -> str | None:
    return next((r["custom"].get("route") for r in reversed(responses) if r.get("custom")), None)


CASES = [
    # (label, action, text, intent, expected route, expected item)
    (
        "progress guess, no ticket",
        "action_check_progress",
        "个体户营业执照要带什么材料",
        "check_progress",
        "guide",
        LICENCE,
    ),
    (
        "progress with words",
        "action_check_progress",
        "查一下我的办件进度",
        "check_progress",
        "progress",
        None,
    ),
    (
        "progress with ticket",
        "action_check_progress",
        "202611030000152办好了吗",
        "check_progress",
        "progress",
        None,
    ),
    (
        "handoff guess",
        "action_human_handoff",
        "个体户营业执照要带什么材料",
        "human_handoff",
        "guide",
        LICENCE,
    ),
    ("handoff asked", "action_human_handoff", "转人工，我要跟工作人员说", "human_handoff", "handoff", None),
    # another office's service: told where to go, whichever way NLU heard it
    (
        "elsewhere, guide guess",
        "action_answer_guide",
        "二手车过户要去哪里办",
        "ask_service_guide",
        "out_of_scope",
        None,
    ),
    (
        "elsewhere, out of scope",
        "action_out_of_scope",
        "驾驶证快到期了怎么换",
        "out_of_scope",
        "out_of_scope",
        None,
    ),
    (
        "elsewhere, unsure",
        "action_default_fallback",
        "公司商标注册怎么申请",
        "nlu_fallback",
        "out_of_scope",
        None,
    ),
    (
        "elsewhere, complaint guess",
        "action_start_complaint",
        "新车上牌要带什么材料",
        "complain",
        "out_of_scope",
        None,
    ),
    (
        "handoff guess, a question the guide does not know",  # no person asked for: no hand-off
        "action_human_handoff",
        "从火星回来，那边的关系怎么转回来",
        "human_handoff",
        "guide",
        None,
    ),
    (
        "out of scope, catalogue",
        "action_out_of_scope",
        "个体户营业执照要带什么材料",
        "out_of_scope",
        "guide",
        LICENCE,
    ),
    ("out of scope, declined", "action_out_of_scope", "明天会下雨吗", "out_of_scope", "out_of_scope", None),
    (
        "out of scope, the catalogue only sounds alike",  # 二手车 is no 二手房: the catalogue never says 车
        "action_out_of_scope",
        "我的二手车能卖多少钱",
        "out_of_scope",
        "out_of_scope",
        None,
    ),
    (
        "thanks inside a request",
        "action_small_talk",
        "帮我翻译一下 thank you very much",
        "thank",
        "out_of_scope",
        None,
    ),
    ("affirm guess", "action_choose_option", "个体户营业执照要带什么材料", "affirm", "guide", LICENCE),
    ("affirm guess, a bare item name", "action_choose_option", "个体户设立登记", "affirm", "guide", LICENCE),
    # a question NLU took for a complaint query, with no complaint and no number in it: not one
    (
        "complaint query guess, a traffic fine",
        "action_query_complaint",
        "有几个违章没处理 罚款在哪交",
        "query_complaint",
        "out_of_scope",
        None,
    ),
    # a question NLU took for a yes or a no, that the catalogue does not answer: declined, not "好的"
    (
        "deny guess, another place's card",
        "action_choose_option",
        "台灣的健保卡怎麼辦",
        "deny",
        "out_of_scope",
        None,
    ),
    (
        "affirm guess, a shop's refund",
        "action_choose_option",
        "网上买的电饭锅用两天就坏了 商家不给退 怎么办",
        "affirm",
        "out_of_scope",
        None,
    ),
    (
        "greeting with a question",
        "action_small_talk",
        "你好，个体户营业执照要带什么材料",
        "greet",
        "guide",
        LICENCE,
    ),
    (
        "a phone is no ticket",
        "action_check_progress",
        "我手机13907975566，个体户营业执照要带什么材料",
        "check_progress",
        "guide",
        LICENCE,
    ),
    (
        "progress guess, other topic",
        "action_check_progress",
        "交通违章的罚款去哪里交呀",
        "check_progress",
        "out_of_scope",
        None,
    ),
    (
        "complaint guess, a question with no grievance",
        "action_start_complaint",
        "退伍回来的安置补助金去哪里领",
        "complain",
        "out_of_scope",
        None,
    ),
    (
        "complaint, a grievance asked as a question",
        "action_start_complaint",
        "为什么我交了材料一个月都没人理",
        "complain",
        "complaint",
        None,
    ),
    (
        "complaint, a grievance with no complaint word",
        "action_start_complaint",
        "医保局的人说话很冲，这样对吗",
        "complain",
        "complaint",
        None,
    ),
    (
        "complaint guess, a wish to get something the catalogue names",
        "action_start_complaint",
        "我是退伍老兵 听说现在有个优待证 我也想办一个",
        "complain",
        "guide",
        "36072200-GG-052",
    ),
    (
        "complaint guess, a question about the hall with no grievance in it",
        "action_start_complaint",
        "新车上牌是去车管所还是来你们大厅",
        "complain",
        "out_of_scope",
        None,
    ),
    (
        "complaint asked for with 反映, no complaint word in it",
        "action_start_complaint",
        "我想反映一下，户政窗口有人说只要给点茶水钱就能加急，我没给，到现在还没办下来。",
        "complain",
        "complaint",
        None,
    ),
    (
        "complaint guess, a question with a wrong at the center in it",
        "action_start_complaint",
        "上周交的材料被工作人员弄丢了 又要我重新准备一遍 我为这个请了两天假 扣的工资谁赔",
        "complain",
        "complaint",
        None,
    ),
    (
        "complaint guess, a wrong told with another office's word",
        "action_start_complaint",
        "俺就办个养老认证，也让交20块钱，不交不让认证",
        "complain",
        "complaint",
        None,
    ),
    (
        "guide, a question with the window in it",
        "action_answer_guide",
        "想去交灵活就业社保 人社窗口星期六开不开",
        "ask_service_guide",
        "guide",
        None,
    ),
    (
        "notification guess",
        "action_progress_resubscribe",
        "下个月的天气会不会很热呢",
        "resubscribe_progress",
        "out_of_scope",
        None,
    ),
]


@pytest.mark.parametrize(
    ("label", "action", "text", "intent", "route", "item"), CASES, ids=[c[0] for c in CASES]
)
async def test_routes(
    actions, label: str, action: str, text: str, intent: str, route: str, item: str | None
) -> None:
    texts, _, responses = await actions(action_call(action, text, intent=intent))
    assert texts, label
    assert _route(responses) == route, (label, texts)
    if item is not None:
        assert any(r.get("custom", {}).get("item_code") == item for r in responses), texts
    if route == "out_of_scope":  # declined, or told which office handles it; with the center's phone
        assert "0797-3322110" in texts[-1]
        assert "服务范围" in texts[-1] or "不在县行政服务中心办理" in texts[-1]


@pytest.mark.parametrize(
    ("action", "text", "intent", "followup"),
    [
        (
            "action_answer_guide",
            "我要投诉不动产登记中心，说好1天办好，结果拖了10天",
            "ask_service_guide",
            "action_start_complaint",
        ),
        ("action_check_progress", "我要投诉3号窗口拖了十天", "check_progress", "action_start_complaint"),
        ("action_answer_guide", "材料丢了谁负责？我要投诉", "ask_service_guide", "action_start_complaint"),
        (
            "action_answer_guide",
            "202611030000152这个件办到哪了",
            "ask_service_guide",
            "action_check_progress",
        ),
        ("action_default_fallback", "喂喂，有人在吗？我要人工", "nlu_fallback", "action_human_handoff"),
        ("action_out_of_scope", "我要举报有人收好处", "out_of_scope", "action_start_complaint"),
        ("action_out_of_scope", "我有个意见要提：取号机经常坏", "out_of_scope", "action_start_complaint"),
        ("action_start_complaint", "工单202604230003005 还要等多久", "complain", "action_check_progress"),
        ("action_start_complaint", "叫值班的人来跟我说", "complain", "action_human_handoff"),
        # where one's own application stands, in words: a case lookup whatever topic NLU heard
        (
            "action_answer_guide",
            "我儿子的身份证办好了吗，上个月去办的",
            "ask_service_guide",
            "action_check_progress",
        ),
        (
            "action_answer_guide",
            "营业执照申请了三天了，怎么还没通过",
            "ask_service_guide",
            "action_check_progress",
        ),
        (
            "action_answer_guide",
            "低保申请交上去快一个月了，有结果了吗",
            "ask_service_guide",
            "action_check_progress",
        ),
        ("action_answer_guide", "我申請嘅港澳通行證批咗未？", "ask_service_guide", "action_check_progress"),
        ("action_answer_guide", "护照办了十天是不是还没做好", "ask_service_guide", "action_check_progress"),
        ("action_answer_guide", "上周交的低保材料怎么还没消息", "ask_service_guide", "action_check_progress"),
        ("action_answer_guide", "网上提交的执照一直显示审核中", "ask_service_guide", "action_check_progress"),
        ("action_out_of_scope", "我那个居住证到哪了", "out_of_scope", "action_check_progress"),
        # small talk that asks for a person or for one's case is that request
        ("action_small_talk", "你答非所问 找个人来", "criticize_bot", "action_human_handoff"),
        ("action_small_talk", "我要和真人聊 你说的我不懂", "criticize_bot", "action_human_handoff"),
        ("action_small_talk", "麻烦帮我转接一下值班人员", "thank", "action_human_handoff"),
        ("action_small_talk", "谢谢，我的护照是不是还没做好", "thank", "action_check_progress"),
        # NLU unsure, the knowledge base has nothing, and the message tells of a wrong at the center
        (
            "action_default_fallback",
            "窗口的人收了我50块钱说是代办费，不是说免费吗？",
            "nlu_fallback",
            "action_start_complaint",
        ),
        (
            "action_default_fallback",
            "下午三点去窗口没人，工作人员都不知道去哪了",
            "nlu_fallback",
            "action_start_complaint",
        ),
        # a wrong at the center told with a word of another office's service is still a complaint
        (
            "action_answer_guide",
            "窗口那个人把我的银行卡弄丢了",
            "ask_service_guide",
            "action_start_complaint",
        ),
        ("action_default_fallback", "大厅门口乱停电动车挡住了入口", "nlu_fallback", "action_start_complaint"),
        # a grievance told without naming a complaint, whichever topic NLU heard in it
        (
            "action_answer_guide",
            "出入境窗口那位说话很冲，我就问了句多久能拿到护照，她说急什么急，等着，然后就不理我了",
            "ask_service_guide",
            "action_start_complaint",
        ),
        (
            "action_out_of_scope",
            "排到了说今天办不了，系统里找不到我的件，让我找当初受理的那个人，那个人今天轮休",
            "out_of_scope",
            "action_start_complaint",
        ),
        (
            "action_check_progress",
            "跑了5次了 还是没办下来 每次都说领导不在签不了字",
            "check_progress",
            "action_start_complaint",
        ),
        (
            "action_human_handoff",
            "说好的十五个工作日出证，今天都一个多月了，打电话就一句话在走流程",
            "human_handoff",
            "action_start_complaint",
        ),
        (
            "action_small_talk",
            "真牛啊，一个章盖了三天，盖章的手是金子做的吧",
            "praise",
            "action_start_complaint",
        ),
        # one's own case in everyday words
        (
            "action_answer_guide",
            "上个月申请的失业金怎么还没到账 帮我查下",
            "ask_service_guide",
            "action_check_progress",
        ),
        (
            "action_answer_guide",
            "前天交的二手房过户材料 证出来了没",
            "ask_service_guide",
            "action_check_progress",
        ),
        (
            "action_out_of_scope",
            "低保申请交上去一个月了 怎么还没消息 能帮我查下吗",
            "out_of_scope",
            "action_check_progress",
        ),
        ("action_answer_guide", "我的失业金申请审核通过了吗", "ask_service_guide", "action_check_progress"),
        (
            "action_answer_guide",
            "慢性病认定的资料交到医保窗口半个月了 结果出来没",
            "ask_service_guide",
            "action_check_progress",
        ),
        # a person asked for in so many words, in a long message or one NLU took for thanks or a complaint
        ("action_small_talk", "麻烦帮我接通一下值班的同志 谢谢了", "thank", "action_human_handoff"),
        (
            "action_start_complaint",
            "有没有工作人员在线 我这个情况比较复杂 一两句讲不清",
            "complain",
            "action_human_handoff",
        ),
        ("action_small_talk", "你听不懂我的话 换个人来", "criticize_bot", "action_human_handoff"),
    ],
)
async def test_a_plain_request_overrules_the_guessed_topic(
    actions, action: str, text: str, intent: str, followup: str
) -> None:
    await actions(action_call(action, text, intent=intent))
    assert [e["name"] for e in actions.events if e["event"] == "followup"] == [followup]


async def test_a_grievance_about_this_assistant_is_no_complaint(actions) -> None:
    # the bot that did not understand is the hand-off's business, not a complaint about the center
    texts, _, responses = await actions(
        action_call("action_human_handoff", "机器人说半天都说不明白，还是换个人来吧", intent="human_handoff")
    )
    assert [e["name"] for e in actions.events if e["event"] == "followup"] == ["action_listen"]
    assert _route(responses) == "handoff", texts


async def test_small_talk_stays_small_talk(actions) -> None:
    _, _, responses = await actions(action_call("action_small_talk", "你好", intent="greet"))
    assert [r.get("response") for r in responses] == ["utter_greet"]  # Rasa renders the domain's text
    texts, _, _ = await actions(action_call("action_small_talk", "你是机器人吗", intent="bot_challenge"))
    assert "机器人" in texts[0] and "0797-3322110" in texts[0]
    # naming a person is no request for one
    _, _, responses = await actions(action_call("action_small_talk", "谢谢客服", intent="thank"))
    assert [r.get("response") for r in responses] == ["utter_thank"]
    texts, _, _ = await actions(action_call("action_small_talk", "你是真人吗", intent="bot_challenge"))
    assert "机器人" in texts[0] and not [e for e in actions.events if e["event"] == "followup"]
    texts, _, _ = await actions(action_call("action_small_talk", "你能干啥", intent="ask_capabilities"))
    assert "查询办事指南" in texts[0] and "0797-3322110" in texts[0]  # and the phone for everything else


def test_evidence() -> None:
    assert progress_evidence("202611030000152") and progress_evidence("我的件办到哪一步了")
    assert not progress_evidence("怎么查我名下的房产") and not progress_evidence("宅基地建房怎么批")
    assert not progress_evidence("我的手机13907975566")  # a phone number is not a ticket
    assert not progress_evidence("营业执照多久能办好") and not progress_evidence("审批要多久")
    assert case_lookup("营业执照申请了三天了，怎么还没通过")
    assert not describes_a_grievance("办证承诺时限多久")  # a plain question, not a grievance
    assert not case_lookup("营业执照申请交了一个月了为什么还没下来，是不是故意卡我")  # a complaint
    for question in (  # questions about a service, not one's own case
        "是不是办好营业执照才能开业",
        "我的营业执照办理要经过哪个环节",
        "网上申请还没收到短信验证码怎么办",
        "还没收到通知书的孩子怎么转学",
    ):
        assert not case_lookup(question), question
    assert case_lookup("我儿子的转学申请现在到哪个环节了")
    assert complaint_request("你好，我要投诉你们的咨询电话一直没人接")
    assert complaint_request("你好，我想投诉办证窗口怎么态度这么差")
    assert complaint_request("想反映一下窗口的问题 要提供什么 办件编号要吗")  # not the case number's lookup
    assert not complaint_request("反映的问题多久有答复")
    # a long message hands off only when it asks for a person in so many words
    assert transactional("有没有哪个工作人员可以加我微信 我把材料拍给他看") is not None
    assert transactional("窗口工作人员态度很差 办个营业执照跑了三趟还没办好") is None
    assert not case_lookup("慢性病认定结果出来以后多久能报销")
    assert case_lookup("营业执照网上提交三天了还没消息 能帮我看看卡在哪了吗")
    assert case_lookup("老师你好 我上个月提交的教师资格认定 现在审核到哪了")
    assert not case_lookup("教师资格认定要审核几天")
    assert not case_lookup("社保卡在哪里办") and not case_lookup("社保卡在哪了")  # a card, not a hold-up


async def test_a_case_lookup_in_words_is_looked_up_not_bounced_back(actions) -> None:
    # the lookup action must accept the evidence that sent the message to it (it once bounced it back to
    # itself, and Rasa ended the loop with "没能理解")
    texts, _, responses = await actions(
        action_call(
            "action_check_progress", "退休的材料单位早就交了，审核过了没有啊", intent="check_progress"
        )
    )
    assert not [e for e in actions.events if e["event"] == "followup"]
    assert _route(responses) == "progress" and texts  # answered as a lookup (here: the lookup is off)
    assert asks_for_person("转人工") and asks_for_person("我要找工作人员")
    assert not asks_for_person("异地看病的发票回来能报吗")


async def test_a_description_typed_into_the_complaint_form_is_the_description(actions, sqlite_url) -> None:
    call = action_call(
        "action_answer_guide", "说好不收费的，结果窗口收了我50块钱", requested_slot="complaint_description"
    )
    call["tracker"]["active_loop"] = {"name": "complaint_form"}
    texts, slots, _ = await actions(call)
    assert texts == [] and slots == {"complaint_description": "说好不收费的，结果窗口收了我50块钱"}
    # a guide question while another slot is asked is answered, but a miss is not an unanswered question
    call = action_call("action_answer_guide", "养猫要办证吗", requested_slot="complaint_respondent")
    call["tracker"]["active_loop"] = {"name": "complaint_form"}
    await actions(call)
    from bot.core.db import create_engine, session_factory

    engine = create_engine(sqlite_url)
    try:
        async with session_factory(engine)() as s:
            assert await s.scalar(select(func.count()).select_from(KbUnanswered)) == 0
    finally:
        await engine.dispose()


async def test_a_description_nlu_took_for_a_progress_query_is_the_description(actions) -> None:
    text = "交的材料两个月了还没办好，窗口一直推"
    call = action_call(
        "action_check_progress", text, intent="check_progress", requested_slot="complaint_description"
    )
    call["tracker"]["active_loop"] = {"name": "complaint_form"}
    texts, slots, _ = await actions(call)
    assert texts == [] and slots == {"complaint_description": text}


async def test_a_plain_stop_sending_still_switches_notifications(actions) -> None:
    _, _, responses = await actions(
        action_call("action_progress_unsubscribe", "不要再发了", intent="unsubscribe_progress")
    )
    assert (
        _route(responses) == "progress"
    )  # not declined as out of scope (this harness has no progress service)
