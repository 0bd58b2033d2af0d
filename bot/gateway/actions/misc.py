"""Hand-off, progress, complaint and fallback actions."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from bot.domains.complaints.triage import about_the_center, has_complaint_words
from bot.gateway import messages
from bot.gateway.actions.common import channel_of, user_text
from bot.gateway.actions.context import ActionContext
from bot.gateway.actions.guide import owed_turn
from bot.gateway.actions.routing import (
    FALLBACK,
    HANDOFF,
    asks_for_person,
    asks_something,
    decline,
    describes_a_grievance,
    grievance_instead,
    guide_instead,
    makes_request,
    nlu_signals,
    tells_of_the_center,
    transactional,
    utter_answer,
)

FALLBACK_META = {"answered": "fallback", "route": FALLBACK}  # reply metadata for the statistics


class ActionHumanHandoff(Action):
    """During office hours: transfer to the account's human agents; otherwise offer to take a message.
    A hand-off needs a request for a person: without one, a question gets the guide's answer (or its
    not-found help with the center's phone) instead."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = user_text(tracker)
        if text and not asks_for_person(text):  # NLU guessed a hand-off; a guide answer beats the guess
            if (followup := grievance_instead(tracker, text)) is not None:
                return followup  # "说好的十五个工作日出证，今天都一个多月了…": a complaint
            answer = await guide_instead(self.ctx, tracker)
            if answer is not None:
                return utter_answer(dispatcher, answer, text)
            if asks_something(text):  # a question nobody asked a person for: the guide's "not found" help
                answer = await self.ctx.kb.answer(
                    text, channel=channel_of(tracker), last_item_code=tracker.get_slot("last_item_code")
                )
                return utter_answer(dispatcher, answer, text)
        if self.ctx.office_hours.is_open(self.ctx.clock()) and channel_of(tracker) == "wechat":
            dispatcher.utter_message(
                text=messages.handoff_transfer(), json_message={"handoff": "transfer", "route": HANDOFF}
            )
        else:
            dispatcher.utter_message(
                text=messages.handoff_offline(self.ctx.settings),
                json_message={"handoff": "leave_message", "route": HANDOFF},
            )
        # The hand-off ends the turn.  Reached as a follow-up of another action ("叫值班的人来跟我说" in the
        # complaint form, "你真笨，我要人工" after the small talk), the policies had not seen the state and
        # predicted the hand-off a second time: the citizen got "正在为您转接" twice.
        return [FollowupAction("action_listen")]


class ActionOutOfScope(Action):
    """NLU says out of scope: decline politely with the center's phone — unless the knowledge base answers
    the message directly, on the catalogue's own words (a catalogue item NLU did not recognise; not
    "二手车能卖多少钱", whose subject the catalogue never mentions, answered with 二手房)."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if (events := await owed_turn(self.ctx, dispatcher, tracker)) is not None:
            return events
        text = user_text(tracker)
        followup = transactional(text)
        if followup is not None:
            return followup
        if has_complaint_words(text) and about_the_center(text):  # "意见：取号机经常坏" is ours to hear
            return [FollowupAction("action_start_complaint")]
        if (followup := grievance_instead(tracker, text)) is not None:
            return followup
        answer = await guide_instead(self.ctx, tracker, direct_only=True)
        if answer is not None and (
            answer.grounded or answer.elsewhere
        ):  # NLU said off-topic: the catalogue's own words must match
            return utter_answer(dispatcher, answer, text, nlu_signals(tracker))
        return decline(dispatcher, self.ctx.settings)


class ActionDefaultFallback(Action):
    """Low NLU confidence: try the knowledge base first; only when it is unsure too, ask to rephrase."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = user_text(tracker)
        if (events := await owed_turn(self.ctx, dispatcher, tracker)) is not None:
            return events
        if text and (followup := transactional(text)) is not None:  # NLU was unsure; the request is plain
            return followup
        if text and (followup := grievance_instead(tracker, text)) is not None:
            return followup  # "真牛啊，一个章盖了三天" is a complaint to take down
        if text:
            answer = await self.ctx.kb.answer(
                text, channel=channel_of(tracker), last_item_code=tracker.get_slot("last_item_code")
            )
            if answer.kind == "not_found" and (
                describes_a_grievance(text) or (answer.elsewhere and tells_of_the_center(text))
            ):
                # "窗口的人收了我50块钱说是代办费", "窗口工作人员把我的银行卡弄丢了": a complaint to take down
                return [FollowupAction("action_start_complaint")]
            if answer.kind != "not_found" or answer.elsewhere:
                return utter_answer(dispatcher, answer, text)
            for n, message in enumerate(answer.messages, 1):
                last = n == len(answer.messages)
                dispatcher.utter_message(text=message, json_message=FALLBACK_META if last else None)
            return []
        dispatcher.utter_message(text=messages.rephrase(), json_message=FALLBACK_META)
        return []


# The small-talk intents and the response each gets when the message is only small talk.
SMALL_TALK = {
    "greet": "utter_greet",
    "goodbye": "utter_goodbye",
    "thank": "utter_thank",
    "bot_challenge": "utter_bot_challenge",
    "ask_capabilities": "utter_capabilities",
    "praise": "utter_praise",
    "criticize_bot": "utter_criticize_bot",
}


class ActionSmallTalk(Action):
    """A greeting, thanks, praise… answered with its response — unless the message also asks a question
    the knowledge base answers directly ("你好，营业执照要带什么" is a guide question)."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_small_talk"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = user_text(tracker)
        # "麻烦帮我转接一下值班人员", "你答非所问 找个人来", "谢谢，我的护照是不是还没做好": that request —
        # not "你是真人吗" or "谢谢客服", which name a person without asking for one
        if (followup := transactional(text, naming_a_person_asks=False)) is not None:
            return followup
        if (followup := grievance_instead(tracker, text)) is not None:
            return followup  # "真牛啊，一个章盖了三天" is no praise
        if len(text) >= 6 and asks_something(text):
            answer = await guide_instead(self.ctx, tracker, direct_only=True)
            if answer is not None:
                return utter_answer(dispatcher, answer, text)
        if makes_request(text):  # "帮我翻译一下 thank you": a request we do not serve, not a thank-you
            return decline(dispatcher, self.ctx.settings)
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        # with the center's phone: who is a robot, and what it can do, should say how to reach people
        if intent == "bot_challenge":
            dispatcher.utter_message(text=messages.bot_challenge(self.ctx.settings))
        elif intent in SMALL_TALK and intent != "ask_capabilities":
            dispatcher.utter_message(response=SMALL_TALK[intent])
        else:
            dispatcher.utter_message(text=messages.capabilities(self.ctx.settings))
        return []
