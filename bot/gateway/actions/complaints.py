"""The conversational complaint intake (Rasa form ``complaint_form``) and the citizen's complaint queries.

"我要投诉…" → triage (emergency → 110/119/120, litigation/复议/信访 → the lawful channel, not the center's
business → who handles it, a question → the knowledge base) → the form asks for what happened, the
window/department, a contact phone (not over SMS: the sender's number is known) and confidentiality → a
read-back to confirm → a possible 并单 offer → the complaint is filed exactly once (the form's id is the
idempotency key) and the citizen gets its number and deadlines.  "取消/算了" stops at any step; a
service-guide question in the middle is answered and the form goes on.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.core.phone import contact_phone
from bot.domains.complaints import numbers
from bot.domains.complaints.citizen import confirmation_text, parse_rating
from bot.domains.complaints.classify import cue_strength
from bot.domains.complaints.intake import NewComplaint
from bot.domains.complaints.states import Kind
from bot.domains.complaints.triage import Scope, about_the_center, has_complaint_words, triage
from bot.gateway import messages
from bot.gateway.actions.common import channel_of, user_text
from bot.gateway.actions.context import ActionContext
from bot.gateway.actions.grievance import asks, tells_of_a_grievance
from bot.gateway.actions.routing import (
    COMPLAINT,
    answered,
    complains,
    complaint_request,
    decline,
    guide_instead,
    transactional,
    utter_answer,
)

FORM_SLOTS = (
    "complaint_description",
    "complaint_respondent",
    "complaint_phone",
    "complaint_confidential",
    "complaint_confirm",
)
STATE_SLOTS = ("complaint_form_id", "complaint_merge_into")
UNKNOWN_RESPONDENT = {"不清楚", "不知道", "不记得", "不确定", "没有", "无", "跳过", "不知道是谁"}
_INTRO_ONLY = {
    "我要投诉",
    "投诉",
    "我想投诉",
    "我要举报",
    "举报",
    "我要建议",
    "建议",
    "投诉建议",
    "我要反映问题",
}


def reset_events() -> list[EventType]:
    return [SlotSet(name, None) for name in (*FORM_SLOTS, *STATE_SLOTS)] + [SlotSet("requested_slot", None)]


def sms_phone(tracker: Tracker) -> str | None:
    meta = tracker.latest_message.get("metadata") or {}
    if channel_of(tracker) != "sms":
        return None
    return contact_phone(str(meta.get("phone") or tracker.sender_id.removeprefix("sms:")))


def new_complaint(tracker: Tracker) -> NewComplaint:
    respondent = tracker.get_slot("complaint_respondent")
    return NewComplaint(
        channel=channel_of(tracker),
        sender_id=tracker.sender_id,
        description=str(tracker.get_slot("complaint_description") or ""),
        phone=tracker.get_slot("complaint_phone") or sms_phone(tracker),
        confidential=bool(tracker.get_slot("complaint_confidential")),
        respondent=None if not respondent or respondent in UNKNOWN_RESPONDENT else str(respondent),
    )


# How to get something done — where, how, what to bring, how much — not a rhetorical question.
_SERVICE_QUESTION = re.compile(
    r"去哪|在哪|哪里|怎么(办|领|申请|弄|交|报|取)|如何|多少钱|要带|需要什么|什么材料|要不要|需不需要|标准是多少"
)


# A question about the complaint service itself: how long an answer takes, where to complain or rate.
_ABOUT_COMPLAINING = re.compile(
    r"(投诉|举报|评价|好评|差评|反映)[^，。,]{0,8}?(多久|几天|怎么投|如何|在哪|哪里|哪个窗口|几号窗口|电话|渠道|流程|答复|回复)"
    r"|(在哪|哪里|怎么|如何|去哪)[^，。,]{0,6}?(投诉|举报|评价|好评|差评|反映)"
)


class ActionStartComplaint(Action):
    """Triage the first message; start the form (prefilled with the details already given)."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_start_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if self.ctx.complaints is None:
            dispatcher.utter_message(text=messages.complaint_not_ready(self.ctx.settings))
            return []
        text = user_text(tracker).strip()
        verdict = triage(text) if text else None
        if verdict is not None and verdict.scope in (Scope.EMERGENCY, Scope.LEGAL_CHANNEL, Scope.NOT_OURS):
            dispatcher.utter_message(text=verdict.message)
            return []
        consultation = verdict is not None and verdict.scope is Scope.CONSULTATION
        grievance = tells_of_a_grievance(text)
        asked_for = complaint_request(text)
        words = has_complaint_words(text)
        # "投诉了多久给答复", "要投诉窗口工作人员 去找哪里": how complaints are handled, asked, not one told
        about_complaining = _ABOUT_COMPLAINING.search(text) is not None and not asked_for and not grievance
        if consultation or about_complaining:
            answer = await guide_instead(self.ctx, tracker, direct_only=about_complaining)
            if answer is not None and (consultation or not answer.elsewhere):
                events = utter_answer(dispatcher, answer, text)
                dispatcher.utter_message(
                    text="如果您要投诉，请回复“我要投诉”。", json_message=answered(answer)
                )
                return events
        if (
            text
            and not words
            and not asked_for  # "我想反映一下…" asks for this very form
            and (followup := transactional(text)) is not None
        ):
            # NLU heard a complaint in a ticket number or "叫工作人员来" with no grievance in it: not one
            return followup
        if (
            text
            and not words
            and not grievance
            and (not about_the_center(text) or (asks(text) and cue_strength(text) == 0))
        ):
            # "新车上牌是去车管所还是来你们大厅": no grievance, a question about another office's service —
            # say where to go (not "窗口工作人员把我的银行卡弄丢了": that tells of the center; not "材料被工作
            # 人员弄丢了…扣的工资谁赔": a question with a wrong in it; not "办个养老认证也让交20块钱，不交不让
            # 认证": that tells of a wrong)
            answer = await guide_instead(self.ctx, tracker, direct_only=True)
            if answer is not None and answer.elsewhere:
                return utter_answer(dispatcher, answer, text)
            complaining = complains(text)
            if _SERVICE_QUESTION.search(text) and not complaining:
                # "退伍回来的一次性经济补助去哪领": a question how to get something, with no grievance in it,
                # is no complaint — answered when the catalogue's own words answer it, else declined with
                # the phone ("为什么我交了材料一个月都没人理", "这样对吗" are complaints: the form)
                if answer is not None and answer.grounded:
                    return utter_answer(dispatcher, answer, text)
                return decline(dispatcher, self.ctx.settings)
            if answer is not None and answer.grounded and not complaining:
                # "执照被老鼠咬烂了一角 想换个新的", "我也想办一个优待证": no grievance at all, and the
                # catalogue's own words answer it — a wish to get something done, not a complaint
                return utter_answer(dispatcher, answer, text)
        events = [*reset_events(), SlotSet("complaint_form_id", uuid.uuid4().hex)]
        details = text.rstrip("。！!")
        for intro in sorted(_INTRO_ONLY, key=len, reverse=True):
            if details.startswith(intro):
                details = details[len(intro) :].lstrip("，,：: ")
                break
        if len(details) >= 6:
            events.append(SlotSet("complaint_description", details))
        dispatcher.utter_message(
            text="好的，我来帮您登记。过程中回复“取消”可随时放弃。", json_message={"route": COMPLAINT}
        )
        return [*events, FollowupAction("complaint_form")]


def _reused(tracker: Tracker, text: str, *earlier: str) -> bool:
    """Rasa may offer one message to the next free-text slot too: it answered an earlier question."""
    return any(text and text == str(tracker.get_slot(slot) or "").strip() for slot in earlier)


class ValidateComplaintForm(FormValidationAction):
    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "validate_complaint_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if channel_of(tracker) == "sms":  # the sender's number is the contact phone
            return [s for s in domain_slots if s != "complaint_phone"]
        return domain_slots

    # Every validator ignores None: the start action clears the slots, and rasa-sdk validates cleared
    # slots too when the form starts.

    async def validate_complaint_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"complaint_description": None}
        text = str(value).strip()
        if len(text) < 4:
            dispatcher.utter_message(text="请再具体描述一下发生了什么（时间、地点、经过）。")
            return {"complaint_description": None}
        return {"complaint_description": text[:2000]}

    async def validate_complaint_respondent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"complaint_respondent": None}
        text = str(value).strip()
        if _reused(tracker, text, "complaint_description"):
            return {"complaint_respondent": None}
        return {"complaint_respondent": text[:100] or "不清楚"}

    async def validate_complaint_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None or _reused(
            tracker, str(value).strip(), "complaint_description", "complaint_respondent"
        ):
            return {"complaint_phone": None}
        phone = contact_phone(str(value or ""))
        if phone is None:
            dispatcher.utter_message(text="这个号码好像不对，请输入11位手机号或带区号的固定电话。")
            return {"complaint_phone": None}
        return {"complaint_phone": phone}


class ActionAskComplaintConfirm(Action):
    """The read-back before filing (phone masked)."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_ask_complaint_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(text=confirmation_text(new_complaint(tracker)))
        return []


ASK_TEXTS = {
    "complaint_description": "请简要描述您遇到的问题（时间、地点、经过）：",
    "complaint_respondent": "涉及哪个窗口、部门或工作人员？不清楚请回复“不清楚”。",
    "complaint_phone": "请留下您的联系电话（手机或固定电话），方便我们答复您：",
    "complaint_confidential": "是否需要为您保密（不向被投诉方透露您的身份）？请回复“是”或“否”。",
}


class ActionAskComplaintSlot(Action):
    """The form's question for one slot (``action_ask_<slot>``)."""

    def __init__(self, ctx: ActionContext, slot: str) -> None:
        self.ctx = ctx
        self.slot = slot

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(text=ASK_TEXTS[self.slot])
        return []


def complaint_actions(ctx: ActionContext) -> list[Action]:
    return [
        *(cls(ctx) for cls in COMPLAINT_ACTIONS),
        *(ActionAskComplaintSlot(ctx, slot) for slot in ASK_TEXTS),
    ]


class ActionSubmitComplaint(Action):
    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_submit_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        service = self.ctx.complaints
        if service is None or not tracker.get_slot("complaint_confirm"):
            dispatcher.utter_message(text="好的，已取消本次投诉登记。还有什么可以帮您？")
            return reset_events()
        new = new_complaint(tracker)
        existing = await service.find_duplicate(new.sender_id, new.respondent, new.description, new.phone)
        if existing is not None and existing.idempotency_key != form_key(tracker):
            dispatcher.utter_message(
                text=(
                    f"您在近期已就同一事项提交过投诉（编号：{existing.number}），目前正在处理中。"
                    "是否将本次内容补充到该投诉？回复“是”补充，回复“否”另行登记。"
                )
            )
            return [SlotSet("complaint_merge_into", existing.number)]
        return await file_complaint(self.ctx, dispatcher, tracker)


def form_key(tracker: Tracker) -> str:
    """The idempotency key of one filled-in form: a repeated "确认" files nothing new."""
    return f"form:{tracker.sender_id}:{tracker.get_slot('complaint_form_id') or ''}"


async def file_complaint(
    ctx: ActionContext, dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType]:
    assert ctx.complaints is not None
    result = await ctx.complaints.create(new_complaint(tracker), idempotency_key=form_key(tracker))
    row = result.complaint
    days = ctx.complaints.answer_days(Kind(row.kind))  # for SMS providers that send only templates
    receipt = {"kind": "complaint_receipt", "values": {"number": row.number, "days": str(days)}}
    dispatcher.utter_message(text=result.receipt, json_message={"route": COMPLAINT, "sms_template": receipt})
    return reset_events()


async def complaint_follow_up(
    ctx: ActionContext, dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType] | None:
    """是/否 to a 并单 offer, or a 1–5 rating of an answered complaint; None when this message is neither."""
    if ctx.complaints is None:
        return None
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    merge_into = tracker.get_slot("complaint_merge_into")
    if merge_into and intent in ("affirm", "deny"):
        if intent == "deny":
            return await file_complaint(ctx, dispatcher, tracker)
        key = f"merge:{tracker.sender_id}:{tracker.get_slot('complaint_form_id') or ''}"
        merged = await ctx.complaints.add_to_existing(
            merge_into, tracker.sender_id, new_complaint(tracker).description, idempotency_key=key
        )
        if merged is None:
            return await file_complaint(ctx, dispatcher, tracker)
        dispatcher.utter_message(text=f"已将本次内容补充到投诉 {merged.number}，我们会一并处理并答复您。")
        return reset_events()
    score = parse_rating(user_text(tracker))
    if score is not None:
        pending = await ctx.complaints.awaiting_rating(tracker.sender_id)
        if pending is not None:
            result = await ctx.complaints.rate(pending.number, tracker.sender_id, score)
            dispatcher.utter_message(text=result.text)
            return []
    return None


class ActionCancelComplaint(Action):
    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_cancel_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(text="好的，已取消本次投诉登记。还有什么可以帮您？")
        return [ActiveLoop(None), *reset_events()]


class ActionQueryComplaint(Action):
    """ "查询投诉 TS…": only from the account or phone that filed it; unknown and not-yours read the same."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def name(self) -> str:
        return "action_query_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if self.ctx.complaints is None:
            dispatcher.utter_message(text=messages.complaint_not_ready(self.ctx.settings))
            return []
        text = user_text(tracker)
        if numbers.parse(text) is None and not _ABOUT_A_COMPLAINT.search(text):
            # NLU heard a complaint query in "有几个违章没处理 罚款在哪交": no complaint, no number — not one
            if (followup := transactional(text)) is not None:
                return followup
            answer = await guide_instead(self.ctx, tracker)
            if answer is not None:
                return utter_answer(dispatcher, answer, text)
            return decline(dispatcher, self.ctx.settings)
        dispatcher.utter_message(text=await self.ctx.complaints.lookup(text, tracker.sender_id))
        return []


_ABOUT_A_COMPLAINT = re.compile(r"投诉|举报|建议|意见|反映|反馈|工单|回复|答复|处理结果")


COMPLAINT_ACTIONS = (
    ActionStartComplaint,
    ValidateComplaintForm,
    ActionAskComplaintConfirm,
    ActionSubmitComplaint,
    ActionCancelComplaint,
    ActionQueryComplaint,
)
