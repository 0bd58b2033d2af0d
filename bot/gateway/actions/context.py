"""What the actions need from the rest of the system, built once per action-server process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.config import Settings
from bot.core.office_hours import OfficeHours
from bot.domains.complaints.service import ComplaintService
from bot.domains.progress.service import ProgressService
from knowledge_base.service import KnowledgeBase


@dataclass
class ActionContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    kb: KnowledgeBase
    office_hours: OfficeHours
    clock: Callable[[], datetime]
    progress: ProgressService | None = None
    complaints: ComplaintService | None = None
