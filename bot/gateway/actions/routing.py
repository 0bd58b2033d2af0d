"""When Rasa's intent and the knowledge base disagree about a message.

Rasa's rules map the intent to an action.  Some intents are generic (out of scope, a 是/不是 with no
question pending) and some are transactional (a progress query, a hand-off); NLU sometimes guesses them
for plain guide questions — "怎么查我名下的房产" is not a case lookup, "异地看病的发票回来能报吗" does not ask
for a person.  So those actions ask :func:`guide_instead` first:

* a transactional intent needs evidence of its own — a ticket-like number or progress words for a
  lookup (:func:`progress_evidence`), a request for a person for a hand-off (:func:`asks_for_person`);
  without it, an answer of the knowledge base (direct, or numbered choices) wins;
* out of scope stands unless the knowledge base answers directly and confidently;
* small talk (a greeting, thanks, "are you a robot") that carries a question the knowledge base answers
  directly gets the answer instead of the pleasantry.

Every reply carries its **route** in the last message's metadata (``guide``, ``progress``,
``complaint``, ``handoff``, ``out_of_scope``, ``fallback``), for the statistics and the evaluation.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.core.config import Settings
from bot.core.textnorm import normalize
from bot.domains.complaints.classify import cue_strength
from bot.domains.complaints.triage import about_the_center, has_complaint_words
from bot.gateway import messages
from bot.gateway.actions.common import channel_of, user_text
from bot.gateway.actions.context import ActionContext
from bot.gateway.actions.grievance import tells_of_a_grievance
from knowledge_base.service import GuideAnswer

GUIDE, PROGRESS, COMPLAINT, HANDOFF = "guide", "progress", "complaint", "handoff"
OUT_OF_SCOPE, FALLBACK = "out_of_scope", "fallback"

_TICKET_LIKE = re.compile(r"(?<!\d)\d{12,}(?!\d)")  # a 15-digit ticket; not an 11-digit phone
_PROGRESS_WORDS = re.compile(
    r"进度|办到哪|到哪一步|哪一步了|办好了?没|好了没|批下来没|审批到|受理号|回执|办件编号|查(一下|询)?(我的)?(办件|件)"
    r"|结果出来|(审核|审批|办理)(到|得)?(怎么样|如何)了|什么时候(能)?(办好|下来|出证)|什么状态|办理状态|提醒|通知|订阅"
)
_CASE_WORDS = re.compile(
    r"受理号|回执|办件(进度|编号)|(我的|交的|提交的|递交的|申请的).{0,12}"
    r"(进度|办到哪|到哪一步|什么状态|好了没|办好了?没|(出来|下来|到账)了?(没|吗|未|嘛))"
    # "低保申请交上去一个月了 怎么还没消息 能帮我查下吗": a case handed in, and a request to look it up
    r"|(交|申请|提交|递交)(的|了|上去).{0,30}(帮我|给我|帮忙)查(一)?下"
)
# Where one's own application stands, in everyday words: 办好了吗, 怎么还没通过, 有结果了吗, 审核过了没有,
# 批咗未, 是不是还没做好, 怎么还没消息, 我的…到哪了, 一直显示审核中.
# A case lookup unless the message also complains ("…为什么还没下来，是不是故意卡我" is a complaint).
_CASE_STATE = re.compile(
    r"(办|批|审|弄|做)好了(吗|没|未|嘛)|(办|批)好没"
    r"|(怎么|咋|为什么|为啥)还没有?(通过|下来|办完|办好|批|审|好|出来|到账|出证|下证)"
    r"|有(结果|消息|回音)了?(吗|没|未|嘛)|结果出来了?(吗|没|未|嘛)"
    r"|(天|周|个月|礼拜|星期)了还没(有)?(消息|动静|下来|通过|批)|(?<![保行证])卡在哪(了|一步)|(看看|查查|查一下|查下)卡在哪|(审核|审|批)到哪(了|一步)"
    r"|(交|递|报)上去.{0,3}(天|周|个月|礼拜|星期)了.{0,6}(什么时候|啥时候|几时|多久)(能|可以)?(去)?(拿|领|取|出)"
    r"|(审核|审批|批)(通)?过了?没|(审核|审批)(通)?过了(吗|未|嘛)"
    r"|批(咗|了)(未|没|吗)"
    r"|是不是(还没(办|批|审|弄|做)好|(办|批|审|弄|做)好了)"
    r"|(怎么|咋|为什么|为啥|一直|都)还没(有)?(消息|动静|收到短信(?!验证码)|收到通知(?!书)|通知我)"
    r"|(我的|我那个|我这个|我家).{0,12}(到哪了|到哪一步|(到|在|卡在)哪个环节|卡住)|(到|卡在)哪个环节了"
    r"|显示(审核中|制证中|受理中|办理中|待审核|审批中)"
)
# "我要投诉…" at the start, or "…谁负责？我要投诉" anywhere: the citizen asks to file a complaint, whatever
# the rest is about ("投诉了多久会有答复" asks how complaints are handled)
_COMPLAINT_REQUEST = re.compile(
    r"^(我)?(要|想)?(投诉|举报)(?!.{0,10}(多久|怎么(投|操作|弄)|什么电话|电话是|在哪|去哪|找哪))"
    r"|^(我)?(要|想)反映|^投诉一下|我(要|想)(投诉|举报)(?!.{0,10}(多久|怎么(投|操作|弄)|什么电话|电话是|在哪|去哪|找哪))"
)
_PERSON_WORDS = re.compile(
    r"人工|真人|客服|工作人员|接线|坐席|转接|活人|找个人|换个人来|跟人说|值班|打电话给你们"
)


_QUESTION = re.compile(
    r"吗|呢|[？?]|怎么|怎样|如何|什么|啥|多少|哪|几|能不能|能否|可不可以|可以.{0,8}吗|要不要|需不需要|是否|咋"
)


def asks_something(text: str) -> bool:
    """The message is phrased as a question (a greeting or a thank-you with a question in it)."""
    return bool(_QUESTION.search(normalize(text)))


def progress_evidence(text: str) -> bool:
    """A ticket-like number or words that ask where one's own case stands."""
    text = normalize(text)
    return bool(_TICKET_LIKE.search(text) or _PROGRESS_WORDS.search(text))


def complaint_request(text: str) -> bool:
    return bool(_COMPLAINT_REQUEST.search(normalize(text)))


def case_lookup(text: str) -> bool:
    """Strong evidence of asking about one's own case — a ticket-like number, or a case handed in and
    its state ("前天交的护照申请现在什么状态") — enough to overrule a guide intent."""
    norm = normalize(text)
    if _TICKET_LIKE.search(norm) or _CASE_WORDS.search(norm):
        return True
    return bool(_CASE_STATE.search(norm)) and not complains(text)


def tells_of_the_center(text: str) -> bool:
    """The message tells of something at the center itself, not asking anything ("窗口工作人员把我的银行卡
    弄丢了", "大厅门口乱停电动车挡住了入口"): a complaint to take down, not a question to send elsewhere."""
    return about_the_center(text) and not asks_something(text)


def complains(text: str) -> bool:
    """Words of a complaint, or strong cues of one (是不是故意卡我 …): not a plain question about a case."""
    return has_complaint_words(text) or cue_strength(text) >= 5


def describes_a_grievance(text: str) -> bool:
    """The message tells of something wrong at the center itself — its windows, staff or queue — in the
    words of a complaint (收了我50块钱, 窗口没人 …): a complaint, though it names no complaint."""
    if not about_the_center(text):
        return False
    if has_complaint_words(text):
        return True
    # complaint cues in a message that tells a story ("办证承诺时限多久" is a short question)
    return cue_strength(text) >= 3 and len(text.strip()) >= 12


def transactional(text: str, *, naming_a_person_asks: bool = True) -> list[EventType] | None:
    """A request that overrules any guessed topic: "我要投诉…" starts a complaint, a ticket number or
    one's own case's state looks the case up, "我要人工" hands off.  None when the text is none of these.
    ``naming_a_person_asks=False``: only a request for a person hands off ("转人工", "找个人来"), not a
    person named in small talk ("你是真人吗", "谢谢客服")."""
    if complaint_request(text):
        return [FollowupAction("action_start_complaint")]
    if case_lookup(text):
        return [FollowupAction("action_check_progress")]
    wants_person = asks_for_person(text) and (naming_a_person_asks or requests_person(text))
    if wants_person and (len(normalize(text)) <= 20 or _PLAIN_PERSON_REQUEST.search(normalize(text))):
        return [FollowupAction("action_human_handoff")]
    return None


_REQUEST = re.compile(r"^(请|麻烦)?(你)?(帮|替|给|陪)我(?!们?查)|^(请|麻烦)你")


def makes_request(text: str) -> bool:
    """The message asks the assistant to do something for the citizen ("帮我翻译一下", "陪我聊聊") — not a
    pleasantry, whatever words of thanks it contains."""
    return bool(_REQUEST.search(normalize(text)))


# Asking to be put through to a person, not only naming one ("你是真人吗", "谢谢客服" are not requests).
_PERSON_REQUEST = re.compile(
    r"(转|找|要|叫|接通?|换|请)(个|一个|一下)?(人工|真人|客服|工作人员|值班|活人|人来|个人)|转接"
    r"|(有没有|有无|有)(哪个|个)?(人工|真人|客服|工作人员|值班的?人)(在线|在吗|在不在|可以|能|吗)"
    r"|(跟|和|同)(个)?(真人|人工|客服|工作人员|活人)(说|讲|聊|对话|沟通)|人工服务"
)


# asking for a person in so many words, however long the message ("有没有工作人员在线 我这个情况一两句讲不清")
_PLAIN_PERSON_REQUEST = re.compile(
    r"转人工|人工服务|(转|接通?)(一下)?(人工|真人|客服|值班)"
    r"|(有没有|有无)(哪个|个)?(人工|真人|客服|工作人员)(在线|在吗|在不在|可以|能)"
)


def requests_person(text: str) -> bool:
    return bool(_PERSON_REQUEST.search(normalize(text)))


def asks_for_person(text: str) -> bool:
    return bool(_PERSON_WORDS.search(normalize(text)))


async def guide_instead(
    ctx: ActionContext, tracker: Tracker, *, direct_only: bool = False
) -> GuideAnswer | None:
    """The knowledge base's answer to the latest message when it has one (``direct_only``: only a direct
    answer, not numbered choices); None otherwise.  Nothing is logged as unanswered here: the message
    was not routed as a guide question."""
    text = user_text(tracker)
    if not text:
        return None
    answer = await ctx.kb.answer(
        text,
        channel=channel_of(tracker),
        last_item_code=tracker.get_slot("last_item_code"),
        log_unanswered=False,
    )
    if answer.kind == "answer" or (answer.kind == "choices" and not direct_only) or answer.elsewhere:
        return answer  # (another office's service: the reply says where to go)
    return None


def answered(answer: GuideAnswer) -> dict[str, Any]:
    """Reply metadata the gateway records (``conversation_turns``): the knowledge base answered (with the
    item and the aspect when there was one), or it did not find the question; the route was the guide."""
    if answer.elsewhere:  # another office's service: told where to go
        return {"answered": "fallback", "route": OUT_OF_SCOPE, "elsewhere": True}
    if answer.kind == "not_found":
        return {"answered": "fallback", "route": GUIDE}
    aspect = answer.aspect or ("faq" if answer.faq else None)  # "faq": the item's Q&A that matches
    meta: dict[str, Any] = {
        "answered": "kb",
        "route": GUIDE,
        "aspect": aspect,
        "score": round(answer.score, 3),
        "grounded": answer.grounded,
        "foreign": round(answer.foreign, 2),
    }
    if answer.item_code:
        meta["item_code"] = answer.item_code
    if answer.short:  # for SMS providers that send only templates (sms_gateway/aliyun/compose.py)
        meta["sms_template"] = {"kind": "guide_short", "values": answer.short}
    return meta


def utter_answer(
    dispatcher: CollectingDispatcher,
    answer: GuideAnswer,
    question: str = "",
    signals: dict[str, Any] | None = None,
) -> list[EventType]:
    """Say the answer; remember its item (for follow-ups) and any numbered choices with their question.
    ``signals``: what the decision was based on, added to the metadata (for the logs and the evaluation)."""
    for n, message in enumerate(answer.messages, 1):
        if n < len(answer.messages):
            dispatcher.utter_message(text=message)
        else:  # the last message carries, for the gateway's statistics, how the question was answered
            dispatcher.utter_message(text=message, json_message={**answered(answer), **(signals or {})})
    events: list[EventType] = [
        SlotSet("pending_choices", answer.choices or None),
        SlotSet("pending_question", question if answer.choices else None),
    ]
    if answer.item_code:
        events.append(SlotSet("last_item_code", answer.item_code))
    return events


def grievance_instead(tracker: Tracker, text: str) -> list[EventType] | None:
    """Start a complaint for a first message that tells of a grievance at the center though it names no
    complaint ("叫号机又坏了…", "窗口让我回去等电话，等了半个月…") — whatever topic NLU heard in it.  Not
    while the complaint form is running: there the text is the form's to take."""
    if (
        (tracker.active_loop or {}).get("name") == "complaint_form"
        or _ABOUT_THE_BOT.search(normalize(text))
        or requests_person(text)
    ):
        return None  # "机器人听不懂，换个人来" is about this assistant: a hand-off's, not a complaint's
    return [FollowupAction("action_start_complaint")] if tells_of_a_grievance(text) else None


_ABOUT_THE_BOT = re.compile(
    r"机器人|智能客服|自动回复|答非所问|你(说|讲|回)的.{0,4}(听不懂|看不懂|不明白)"
    r"|你(都|根本|完全|老是|总是|又)?(听不懂|看不懂|搞不懂|理解不了)"
)


def describing_complaint(tracker: Tracker, text: str) -> bool:
    """The complaint form asked what happened, so this text is the description, whatever NLU heard."""
    return (
        (tracker.active_loop or {}).get("name") == "complaint_form"
        and tracker.get_slot("requested_slot") == "complaint_description"
        and len(text.strip()) >= 4
    )


def decline(dispatcher: CollectingDispatcher, settings: Settings) -> list[EventType]:
    """Out of scope: a polite "not ours" with the center's phone."""
    dispatcher.utter_message(
        text=messages.out_of_scope(settings), json_message={"answered": "fallback", "route": OUT_OF_SCOPE}
    )
    return []


def nlu_signals(tracker: Tracker) -> dict[str, Any]:
    """NLU's intent, its confidence and the out-of-scope intent's confidence for the latest message."""
    intent = tracker.latest_message.get("intent") or {}
    ranking = tracker.latest_message.get("intent_ranking") or []
    oos = next((r.get("confidence", 0.0) for r in ranking if r.get("name") == "out_of_scope"), 0.0)
    return {
        "intent": intent.get("name"),
        "confidence": round(float(intent.get("confidence") or 0.0), 3),
        "oos": round(float(oos or 0.0), 3),
    }
