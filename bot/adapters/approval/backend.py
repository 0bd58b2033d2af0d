"""The interface domain code depends on: no HTTP, JSON or vendor field names leak through it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.adapters.approval.model import Case, ChangeBatch


class ApprovalUnavailable(Exception):
    """The approval system could not answer (down, slow, refusing, or answering garbage).

    ``reason`` is one of: ``timeout``, ``transport``, ``server_error``, ``bad_response``, ``unauthorized``,
    ``circuit_open``.  Messages never contain personal data or the auth token."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}" if message else reason)


class CircuitOpenError(ApprovalUnavailable):
    """The circuit breaker is open: the backend failed repeatedly and is left alone for a while."""

    def __init__(self) -> None:
        super().__init__("circuit_open", "the approval backend is failing; not calling it for now")


@runtime_checkable
class ApprovalBackend(Protocol):
    async def get_case(self, ticket_no: str, *, fresh: bool = False) -> Case | None:
        """The case with this ticket number, or None when the backend has no such case.

        ``fresh=True`` bypasses the short cache (the notifier wants the current state).  Raises
        :class:`ApprovalUnavailable` when the backend cannot answer."""
        ...

    async def changes_since(self, cursor: str | None, limit: int = 100) -> ChangeBatch:
        """Status changes after ``cursor`` (None: from the beginning of the feed), oldest first."""
        ...
