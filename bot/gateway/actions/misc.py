"""Hand-off, progress, complaint and fallback actions."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.gateway import messages
from bot.gateway.actions.common import channel_of, user_text
from bot.gateway.actions.complaints import complaint_follow_up
from bot.gateway.actions.context import ActionContext
from bot.gateway.actions.guide import utter_answer
from bot.gateway.actions.progress import progress_verification

FALLBACK = {"answered": "fallback"}  # reply metadata for the gateway's statistics


class ActionHumanHandoff(Action):
    """During office hours: transfer to the account's human agents; otherwise offer to take a message."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if self.ctx.office_hours.is_open(self.ctx.clock()) and channel_of(tracker) == "wechat":
            dispatcher.utter_message(text=messages.handoff_transfer(), json_message={"handoff": "transfer"})
        else:
            dispatcher.utter_message(
                text=messages.handoff_offline(self.ctx.settings), json_message={"handoff": "leave_message"}
            )
        return []


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
        for hook in (progress_verification, complaint_follow_up):
            events = await hook(self.ctx, dispatcher, tracker)
            if events is not None:
                return events
        if text:
            answer = await self.ctx.kb.answer(
                text, channel=channel_of(tracker), last_item_code=tracker.get_slot("last_item_code")
            )
            if answer.kind != "not_found":
                return utter_answer(dispatcher, answer, text)
            for n, message in enumerate(answer.messages, 1):
                last = n == len(answer.messages)
                dispatcher.utter_message(text=message, json_message=FALLBACK if last else None)
            return []
        dispatcher.utter_message(text=messages.rephrase(), json_message=FALLBACK)
        return []
