"""The errors of the complaint service and the input check that raises them.

Every error carries a Chinese ``message`` for the staff member or citizen, and the HTTP ``status`` and
``code`` the staff API answers with: 400 (bad input), 404 (unknown number), 409 (illegal transition or
concurrent change).
"""

from __future__ import annotations

from bot.domains.complaints.states import ACTION_LABELS, STATUS_LABELS, Action, Status

MAX_DESCRIPTION = 4000
MAX_TEXT = 1000


class ComplaintError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(ComplaintError):
    pass


class NotFoundError(ComplaintError):
    status = 404
    code = "not_found"

    def __init__(self, number: str) -> None:
        super().__init__(f"未找到投诉编号 {number}。")


class IllegalTransitionError(ComplaintError):
    status = 409
    code = "illegal_transition"

    def __init__(self, action: Action, current: Status) -> None:
        super().__init__(f"当前状态为「{STATUS_LABELS[current]}」，不能执行「{ACTION_LABELS[action]}」。")
        self.action = action
        self.current = current


class ConflictError(ComplaintError):
    status = 409
    code = "conflict"

    def __init__(self) -> None:
        super().__init__("该投诉刚被他人修改，请刷新后重试。")


def required(value: str | None, what: str, limit: int = MAX_TEXT) -> str:
    """``value`` stripped; :class:`InvalidInputError` naming ``what`` when it is empty or too long."""
    text = (value or "").strip()
    if not text:
        raise InvalidInputError(f"请填写{what}。")
    if len(text) > limit:
        raise InvalidInputError(f"{what}不能超过{limit}字。")
    return text
