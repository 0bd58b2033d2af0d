"""Who may see and work which complaint: a person without ``complaints.supervise`` sees only their own
department's complaints; supervisors (the center's complaint office) see all, and alone may move a
complaint between departments (派单, 并单) and run the 督办 sweep."""

from __future__ import annotations

from bot.core.actor import Actor
from bot.domains.complaints.errors import NotFoundError
from bot.domains.complaints.models import Complaint
from bot.domains.complaints.service import ComplaintService

SUPERVISE = "complaints.supervise"
SUPERVISOR_ACTIONS = frozenset({"dispatch", "merge"})


def department_scope(actor: Actor) -> str | None:
    """The one department a person may see, or None for every department ("" — a person of no
    department without ``complaints.supervise`` — sees none: see :func:`sees_none`)."""
    return None if actor.can(SUPERVISE) else actor.department


def sees_none(scope: str | None) -> bool:
    return scope == ""


async def visible(service: ComplaintService, number: str, actor: Actor) -> Complaint:
    """The complaint, when ``actor`` may see it; otherwise :class:`NotFoundError`, as if it did not exist."""
    row = await service.get(number)
    scope = department_scope(actor)
    if row is None or (scope is not None and (sees_none(scope) or row.owner_department != scope)):
        raise NotFoundError(number)
    return row


def may_act(actor: Actor, action: str) -> bool:
    return action not in SUPERVISOR_ACTIONS or actor.can(SUPERVISE)
