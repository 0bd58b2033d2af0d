"""Knowledge-base tables on the project's shared declarative ``Base``.

- ``kb_items``: one row per 事项 with the 17 catalogue columns verbatim (so export is lossless) plus parsed
  fields (materials list, process steps, FAQ pairs, online flag) and the row's position in the source file.
- ``kb_aliases``: colloquial name → item code (from ``service_guide_aliases.tsv``).
- ``kb_versions``: one row per change of the catalogue or the aliases; ``max(version)`` is the catalogue
  version every process compares with the version of its in-memory index.
- ``kb_unanswered``: questions that were not answered confidently, for staff review.

The schema is created by ``migrations/versions/0002_knowledge_base.py`` (tests use ``create_all``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.core.clock import utcnow
from bot.core.db import Base, mapped_table


class KbItem(Base):
    __tablename__ = "kb_items"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    item_type: Mapped[str] = mapped_column(String(50), nullable=False, default="")
    department: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    window: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    conditions: Mapped[str] = mapped_column(Text, nullable=False, default="")
    materials: Mapped[str] = mapped_column(Text, nullable=False)
    process: Mapped[str] = mapped_column(Text, nullable=False, default="")
    legal_time_limit: Mapped[str] = mapped_column(Text, nullable=False, default="")
    promised_time_limit: Mapped[str] = mapped_column(Text, nullable=False)
    fee: Mapped[str] = mapped_column(Text, nullable=False, default="")
    legal_basis: Mapped[str] = mapped_column(Text, nullable=False, default="")
    phone: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    location: Mapped[str] = mapped_column(Text, nullable=False, default="")
    office_hours: Mapped[str] = mapped_column(Text, nullable=False, default="")
    online: Mapped[str] = mapped_column(Text, nullable=False, default="")
    faq: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # Parsed fields.
    materials_list: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    process_steps: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    faq_list: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    online_available: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class KbAlias(Base):
    __tablename__ = "kb_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alias: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    item_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class KbVersion(Base):
    __tablename__ = "kb_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # catalogue | aliases
    source: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    added: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    removed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class KbUnanswered(Base):
    __tablename__ = "kb_unanswered"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question: Mapped[str] = mapped_column(Text, nullable=False)
    normalized: Mapped[str] = mapped_column(Text, nullable=False, default="")
    channel: Mapped[str] = mapped_column(String(16), nullable=False, default="")
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # not_found | choices
    best_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    best_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    score: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    __table_args__ = (Index("ix_kb_unanswered_created_at", "created_at"),)


KB_TABLES = tuple(mapped_table(m) for m in (KbItem, KbAlias, KbVersion, KbUnanswered))
