"""Adapter to the county's electronic approval system (电子审批系统).

Domain code depends on :class:`ApprovalBackend` and the model only::

    backend = HttpApprovalBackend(ApprovalSettings.from_env(), redis, metrics=metrics)
    case = await backend.get_case("202602130000126")      # Case | None, or raises ApprovalUnavailable
    batch = await backend.changes_since(cursor)             # status changes after a cursor

``reference_backend`` is a runnable stand-in for the real system
(``python -m bot.adapters.approval.reference_backend``).
"""

from bot.adapters.approval.backend import ApprovalBackend, ApprovalUnavailable, CircuitOpenError
from bot.adapters.approval.breaker import BreakerState, CircuitBreaker
from bot.adapters.approval.config import ApprovalSettings
from bot.adapters.approval.http_backend import HttpApprovalBackend
from bot.adapters.approval.mapping import DEFAULT_MAPPING_FILE, FieldMapping, MappingError
from bot.adapters.approval.model import (
    Applicant,
    Case,
    CaseStatus,
    ChangeBatch,
    Collection,
    StatusChange,
    Step,
)

__all__ = [
    "DEFAULT_MAPPING_FILE",
    "Applicant",
    "ApprovalBackend",
    "ApprovalSettings",
    "ApprovalUnavailable",
    "BreakerState",
    "Case",
    "CaseStatus",
    "ChangeBatch",
    "CircuitBreaker",
    "CircuitOpenError",
    "Collection",
    "FieldMapping",
    "HttpApprovalBackend",
    "MappingError",
    "StatusChange",
    "Step",
]
