"""Actions that answer service-guide questions from the knowledge base."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.core.textnorm import normalize
from bot.domains.complaints.triage import has_complaint_words
from bot.gateway import messages
from bot.gateway.actions.common import channel_of, user_text
from bot.gateway.actions.complaints import complaint_follow_up
from bot.gateway.actions.context import ActionContext
from bot.gateway.actions.progress import progress_verification
from bot.gateway.actions.routing import (
    asks_something,
    decline,
    describing_complaint,
    grievance_instead,
    guide_instead,
    nlu_signals,
    tells_of_the_center,
    transactional,
    utter_answer,
)

_YES_OR_NO = re.compile(
    r"^(好|好的|是|是的|对|对的|嗯+|恩|可以|行|没错|ok|okay|yes|no|不|不是|不对|不用|不要|没有|算了|否|要|需要|不需要)"
    r"[啊呀吧哦了啦的!！。.~～ ]*$",
    re.IGNORECASE,
)
_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def option_number(text: str) -> int | None:
    """ "2", "第2个", "第二个", "2号" → 2."""
    m = re.search(r"\d+", text)
    if m:
        return int(m.group(0))
    for ch, n in _DIGITS.items():
        if ch in text:
            return n
    return None


async def owed_turn(
    ctx: ActionContext, dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType] | None:
    """A message the citizen owes an open conversation — the phone digits of a pending case lookup, the
    answer to a complaint's 并单 or rating question — whatever intent NLU guessed; None otherwise."""
    for hook in (progress_verification, complaint_follow_up):
        events = await hook(ctx, dispatcher, tracker)
        if events is not None:
            return events
    return None


class ActionAnswerGuide(Action):
    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_answer_guide"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        question = user_text(tracker)
        if not question:
            dispatcher.utter_message(text=messages.guide_prompt())
            return []
        in_form = (tracker.active_loop or {}).get("name") == "complaint_form"
        if not in_form and (followup := transactional(question)) is not None:
            return followup  # "我要投诉…", a ticket number: NLU heard a topic, not the request
        if (followup := grievance_instead(tracker, question)) is not None:
            return followup  # "出入境窗口那位说话很冲，我就问了句多久能拿到护照": NLU heard 护照
        if describing_complaint(tracker, question):
            # The form asked what happened: this is the description, whatever NLU thought it was — unless
            # it is a plain question (no complaint words) the knowledge base answers directly.
            plain_question = asks_something(question) and not has_complaint_words(question)
            answer = await guide_instead(self.ctx, tracker, direct_only=True) if plain_question else None
            if answer is None or answer.elsewhere:  # "…银行卡弄丢了" is what happened, not a bank question
                return [SlotSet("complaint_description", question.strip()[:2000])]
            return utter_answer(dispatcher, answer, question)
        answer = await self.ctx.kb.answer(
            question,
            channel=channel_of(tracker),
            last_item_code=tracker.get_slot("last_item_code"),
            pending_choices=tracker.get_slot("pending_choices") or None,
            log_unanswered=not in_form,  # only real guide questions go to the unanswered queue
        )
        if answer.elsewhere and not in_form and tells_of_the_center(question):
            return [FollowupAction("action_start_complaint")]
        return utter_answer(dispatcher, answer, question, nlu_signals(tracker))


class ActionChooseOption(Action):
    """A bare "2" after a numbered list picks that item (answering the question that led to the list);
    是/不是 answer a single suggestion; without a list the text is treated as a question."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_choose_option"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if (events := await owed_turn(self.ctx, dispatcher, tracker)) is not None:
            return events
        text = user_text(tracker)
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        pending = tracker.get_slot("pending_choices") or []
        question = tracker.get_slot("pending_question") or ""
        channel = channel_of(tracker)
        if not pending and (followup := transactional(text)) is not None:
            return followup
        if intent in ("affirm", "deny", "stop") and not pending and not _YES_OR_NO.match(normalize(text)):
            # "是/不是" (or "算了") with no question pending: NLU may have taken a question ("合作社登记
            # 要交钱吗", or a bare item name, "营业执照") for a yes, a no or a stop; a stop needs a direct
            # answer
            answer = await guide_instead(self.ctx, tracker, direct_only=intent == "stop")
            if answer is not None:
                return utter_answer(dispatcher, answer, text)
            if intent != "stop" and asks_something(text):
                # "台灣的健保卡怎麼辦", "商家不给退 怎么办": a question the catalogue does not answer, not a
                # yes or a no to nothing — "好的。还有什么可以帮您？" would leave it unanswered
                if (followup := grievance_instead(tracker, text)) is not None:
                    return followup
                return decline(dispatcher, self.ctx.settings)
        if intent in ("deny", "stop"):
            dispatcher.utter_message(text=messages.choice_declined() if pending else messages.anything_else())
            return [SlotSet("pending_choices", None), SlotSet("pending_question", None)]
        if intent == "affirm":
            if len(pending) == 1:
                answer = await self.ctx.kb.choose(0, pending, channel=channel, question=question)
                return utter_answer(dispatcher, answer)
            dispatcher.utter_message(
                text=messages.pick_a_number(len(pending)) if pending else messages.anything_else()
            )
            return []
        number = option_number(text)
        if pending and number is not None:
            if 1 <= number <= len(pending):
                answer = await self.ctx.kb.choose(number - 1, pending, channel=channel, question=question)
                return utter_answer(dispatcher, answer)
            dispatcher.utter_message(text=messages.pick_a_number(len(pending)))
            return []
        answer = await self.ctx.kb.answer(
            text, channel=channel, last_item_code=tracker.get_slot("last_item_code")
        )
        return utter_answer(dispatcher, answer, text)
