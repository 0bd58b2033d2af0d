"""Rasa actions of the case-progress conversation, on top of ``bot.domains.progress.ProgressService``.

* ``action_check_progress``: every turn of the conversation — a ticket number (asks for the phone digits
  on WeChat, answers at once over SMS when the sender's number is the applicant's), the bare phone digits
  of a pending verification, "查进度" without a number (answers for the only bound case or lists them),
  "取消提醒" / "开启提醒";
* ``action_progress_unsubscribe`` / ``action_progress_resubscribe``: the notification switch as intents.

``handle_progress_turn`` is the same turn as a plain function, so another action (e.g. the one a bare
"1234" lands on) can hand the message over when ``progress_pending`` says a verification is waiting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.adapters.approval.ticket import find_phone_proof
from bot.core.config import Settings
from bot.domains.progress.service import ProgressOutcome, ProgressService
from bot.gateway import messages
from bot.gateway.actions.common import channel_of, user_text
from bot.gateway.actions.context import ActionContext
from bot.gateway.actions.routing import (
    PROGRESS,
    asks_something,
    case_lookup,
    decline,
    describing_complaint,
    grievance_instead,
    guide_instead,
    progress_evidence,
    transactional,
    utter_answer,
)

ROUTE = {"route": PROGRESS}
_NOTIFY_WORDS = re.compile(r"提醒|通知|订阅|推送|消息|短信|退订|发|^(?:TD|td)$")


class ProgressActionContext(Protocol):
    """What the actions need: the ActionContext with a ``progress`` field (None = feature off)."""

    settings: Settings
    progress: ProgressService | None


@dataclass
class ProgressReply:
    messages: list[str]
    slot_events: list[EventType]
    result: str


def _reply(outcome: ProgressOutcome) -> ProgressReply:
    return ProgressReply(
        messages=list(outcome.messages),
        slot_events=[SlotSet(name, value) for name, value in outcome.slots.items()],
        result=outcome.result.value,
    )


async def handle_progress_turn(
    service: ProgressService,
    sender_id: str,
    channel: str,
    text: str,
    metadata: dict[str, Any] | None = None,
    slots: dict[str, Any] | None = None,
) -> ProgressReply:
    """One message of the progress conversation → the reply texts and the slot events to return."""
    return _reply(await service.handle(sender_id, channel, text, metadata or {}, slots or {}))


async def progress_pending(service: ProgressService | None, sender_id: str) -> bool:
    """True when this sender owes us the phone digits of a pending lookup (route "1234" to progress)."""
    return service is not None and await service.has_pending(sender_id)


async def progress_verification(
    ctx: ActionContext, dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType] | None:
    """A citizen owes us the last 4 phone digits of a pending case lookup and sent them: finish the
    lookup, whatever intent NLU guessed for a bare number.  None when this message is not that."""
    text = user_text(tracker)
    if not await progress_pending(ctx.progress, tracker.sender_id) or find_phone_proof(text) is None:
        return None
    assert ctx.progress is not None
    meta = tracker.latest_message.get("metadata") or {}
    reply = await handle_progress_turn(
        ctx.progress, tracker.sender_id, channel_of(tracker), text, dict(meta), {}
    )
    _utter(dispatcher, reply)
    return reply.slot_events


def _metadata(tracker: Tracker) -> dict[str, Any]:
    meta = tracker.latest_message.get("metadata") or {}
    return dict(meta) if isinstance(meta, dict) else {}


def _utter(dispatcher: CollectingDispatcher, reply: ProgressReply) -> list[EventType]:
    for n, message in enumerate(reply.messages, 1):
        dispatcher.utter_message(text=message, json_message=ROUTE if n == len(reply.messages) else None)
    return reply.slot_events


class _ProgressAction(Action):
    def __init__(self, ctx: ProgressActionContext) -> None:
        self.ctx = ctx

    def _off(self, dispatcher: CollectingDispatcher) -> list[EventType]:
        dispatcher.utter_message(text=messages.progress_not_ready(self.ctx.settings), json_message=ROUTE)
        return []


class ActionCheckProgress(_ProgressAction):
    def name(self) -> str:
        return "action_check_progress"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        service = self.ctx.progress
        text = user_text(tracker)
        if describing_complaint(tracker, text) and not progress_evidence(text):
            # "交的材料两个月了还没办好…" while the complaint form asks what happened: the description
            return [SlotSet("complaint_description", text.strip()[:2000])]
        if (
            isinstance(self.ctx, ActionContext)
            and text
            and not progress_evidence(text)
            and not case_lookup(text)  # what sent the message here (it must not be bounced back)
            and not await progress_pending(service, tracker.sender_id)
        ):  # NLU guessed a case lookup for a message with no ticket and no progress words
            if (followup := transactional(text)) is not None:  # "我要投诉…", "我要人工"
                return followup
            if (followup := grievance_instead(tracker, text)) is not None:
                return followup  # "跑了5次了 还是没办下来 每次都说领导不在": a complaint
            answer = await guide_instead(self.ctx, tracker)
            if answer is not None:
                return utter_answer(dispatcher, answer, text)
            if len(text) >= 8:  # a question about something else, not a bare "帮我查一下"
                return decline(dispatcher, self.ctx.settings)
        if service is None:
            return self._off(dispatcher)
        reply = await handle_progress_turn(
            service,
            tracker.sender_id,
            channel_of(tracker),
            user_text(tracker),
            _metadata(tracker),
            {"ticket_no": tracker.get_slot("ticket_no")},
        )
        return _utter(dispatcher, reply)


class ActionProgressUnsubscribe(_ProgressAction):
    notify = False

    def name(self) -> str:
        return "action_progress_unsubscribe"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        service = self.ctx.progress
        text = user_text(tracker)
        if isinstance(self.ctx, ActionContext) and text and not _NOTIFY_WORDS.search(text):
            # NLU guessed the notification switch for a message that never mentions notifications
            answer = await guide_instead(self.ctx, tracker)
            if answer is not None:
                return utter_answer(dispatcher, answer, text)
            if asks_something(text):  # a question about something else; a plain "别了" still switches
                return decline(dispatcher, self.ctx.settings)
        if service is None:
            return self._off(dispatcher)
        outcome = await service.set_notifications(
            tracker.sender_id, channel_of(tracker), user_text(tracker), notify=self.notify
        )
        return _utter(dispatcher, _reply(outcome))


class ActionProgressResubscribe(ActionProgressUnsubscribe):
    notify = True

    def name(self) -> str:
        return "action_progress_resubscribe"


PROGRESS_ACTIONS = (ActionCheckProgress, ActionProgressUnsubscribe, ActionProgressResubscribe)
