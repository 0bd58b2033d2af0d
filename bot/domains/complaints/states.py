"""States, kinds and the transition table of the complaint 工单.

已登记 → 已受理 | 不予受理(告知途径) → 已派单 ⇄ 已退单 → 办理中 → 已答复 → 已回访 → 已办结, plus 已合并.
A 差评 (rating 1–2) on an answered complaint reopens it: 已答复 → 办理中 (整改, with a new deadline).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    REGISTERED = "registered"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DISPATCHED = "dispatched"
    RETURNED = "returned"
    IN_PROGRESS = "in_progress"
    REPLIED = "replied"
    CALLED_BACK = "called_back"
    CLOSED = "closed"
    MERGED = "merged"


STATUS_LABELS: dict[Status, str] = {
    Status.REGISTERED: "已登记",
    Status.ACCEPTED: "已受理",
    Status.REJECTED: "不予受理",
    Status.DISPATCHED: "已派单",
    Status.RETURNED: "已退单",
    Status.IN_PROGRESS: "办理中",
    Status.REPLIED: "已答复",
    Status.CALLED_BACK: "已回访",
    Status.CLOSED: "已办结",
    Status.MERGED: "已合并",
}


class Kind(StrEnum):
    COMPLAINT = "complaint"
    REPORT = "report"
    SUGGESTION = "suggestion"
    HELP = "help"


KIND_LABELS: dict[Kind, str] = {
    Kind.COMPLAINT: "投诉",
    Kind.REPORT: "举报",
    Kind.SUGGESTION: "建议",
    Kind.HELP: "求助",
}


class Action(StrEnum):
    CREATE = "create"
    ACCEPT = "accept"
    REJECT = "reject"
    MERGE = "merge"
    DISPATCH = "dispatch"
    RETURN = "return"
    START = "start"
    EXTEND = "extend"
    REPLY = "reply"
    RATE = "rate"
    REOPEN = "reopen"
    CALLBACK = "callback"
    CLOSE = "close"
    SUPPLEMENT = "supplement"
    SUPERVISE = "supervise"
    NOTICE = "notice"


ACTION_LABELS: dict[Action, str] = {
    Action.CREATE: "登记",
    Action.ACCEPT: "受理",
    Action.REJECT: "不予受理",
    Action.MERGE: "并单",
    Action.DISPATCH: "派单",
    Action.RETURN: "退单",
    Action.START: "签收办理",
    Action.EXTEND: "延期",
    Action.REPLY: "答复",
    Action.RATE: "评价",
    Action.REOPEN: "差评重办",
    Action.CALLBACK: "回访",
    Action.CLOSE: "办结",
    Action.SUPPLEMENT: "补充诉求",
    Action.SUPERVISE: "督办",
    Action.NOTICE: "告知",
}

#: Staff/citizen actions that change the status: action → {from status: to status}.
TRANSITIONS: dict[Action, dict[Status, Status]] = {
    Action.ACCEPT: {Status.REGISTERED: Status.ACCEPTED},
    Action.REJECT: {Status.REGISTERED: Status.REJECTED},
    Action.MERGE: {Status.REGISTERED: Status.MERGED, Status.ACCEPTED: Status.MERGED},
    Action.DISPATCH: {Status.ACCEPTED: Status.DISPATCHED, Status.RETURNED: Status.DISPATCHED},
    Action.RETURN: {Status.DISPATCHED: Status.RETURNED},
    Action.START: {Status.DISPATCHED: Status.IN_PROGRESS},
    Action.REPLY: {Status.IN_PROGRESS: Status.REPLIED},
    Action.RATE: {Status.REPLIED: Status.CALLED_BACK},
    Action.REOPEN: {Status.REPLIED: Status.IN_PROGRESS},
    Action.CALLBACK: {Status.REPLIED: Status.CALLED_BACK},
    Action.CLOSE: {Status.CALLED_BACK: Status.CLOSED},
}

#: Actions that keep the status but are allowed only in some states.
IN_PLACE: dict[Action, frozenset[Status]] = {
    Action.EXTEND: frozenset({Status.ACCEPTED, Status.DISPATCHED, Status.RETURNED, Status.IN_PROGRESS}),
    Action.SUPPLEMENT: frozenset(
        {Status.REGISTERED, Status.ACCEPTED, Status.DISPATCHED, Status.RETURNED, Status.IN_PROGRESS}
    ),
}

#: Waiting for the acceptance decision (deadline ``accept_due``).
AWAITING_ACCEPTANCE = frozenset({Status.REGISTERED})
#: Being handled (deadline ``due``).
IN_HANDLING = frozenset({Status.ACCEPTED, Status.DISPATCHED, Status.RETURNED, Status.IN_PROGRESS})
#: Finished: never overdue, never a duplicate target.
FINAL = frozenset({Status.REJECTED, Status.CLOSED, Status.MERGED})
#: Open311 "closed".
CLOSED_FOR_OPEN311 = frozenset({Status.REJECTED, Status.CLOSED, Status.MERGED})

RATING_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
BAD_RATINGS = frozenset({1, 2})


def target(action: Action, current: Status) -> Status | None:
    """The status ``action`` leads to from ``current``, or ``None`` when it is not allowed there."""
    if action in IN_PLACE:
        return current if current in IN_PLACE[action] else None
    return TRANSITIONS.get(action, {}).get(current)


def allowed_actions(current: Status) -> list[Action]:
    return [a for a in (*TRANSITIONS, *IN_PLACE) if target(a, current) is not None]
