"""Actions that answer service-guide questions from the knowledge base."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.gateway import messages
from bot.gateway.actions.common import channel_of, user_text
from bot.gateway.actions.complaints import complaint_follow_up
from bot.gateway.actions.context import ActionContext
from bot.gateway.actions.progress import progress_verification
from knowledge_base.service import GuideAnswer

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


def answered(answer: GuideAnswer) -> dict[str, Any]:
    """Reply metadata the gateway records (``conversation_turns``): the knowledge base answered (with the
    item when there was one), or it did not find the question."""
    if answer.kind == "not_found":
        return {"answered": "fallback"}
    return {"answered": "kb", "item_code": answer.item_code} if answer.item_code else {"answered": "kb"}


def utter_answer(
    dispatcher: CollectingDispatcher, answer: GuideAnswer, question: str = ""
) -> list[EventType]:
    """Say the answer; remember its item (for follow-ups) and any numbered choices with their question."""
    for n, message in enumerate(answer.messages, 1):
        if n < len(answer.messages):
            dispatcher.utter_message(text=message)
        else:  # the last message carries, for the gateway's statistics, how the question was answered
            dispatcher.utter_message(text=message, json_message=answered(answer))
    events: list[EventType] = [
        SlotSet("pending_choices", answer.choices or None),
        SlotSet("pending_question", question if answer.choices else None),
    ]
    if answer.item_code:
        events.append(SlotSet("last_item_code", answer.item_code))
    return events


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
        answer = await self.ctx.kb.answer(
            question,
            channel=channel_of(tracker),
            last_item_code=tracker.get_slot("last_item_code"),
            pending_choices=tracker.get_slot("pending_choices") or None,
        )
        return utter_answer(dispatcher, answer, question)


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
        for hook in (progress_verification, complaint_follow_up):
            events = await hook(self.ctx, dispatcher, tracker)
            if events is not None:
                return events
        text = user_text(tracker)
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        pending = tracker.get_slot("pending_choices") or []
        question = tracker.get_slot("pending_question") or ""
        channel = channel_of(tracker)
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
