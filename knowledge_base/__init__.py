"""Service-guide knowledge base (办事指南): import/export, search, answers, staff API and CLI.

Public entry points: :class:`knowledge_base.service.KnowledgeBase` (answer / choose / search / unanswered),
``knowledge_base.importer`` (import_catalogue, import_aliases, export_catalogue, ensure_sample_loaded),
``knowledge_base.staff_api.setup_routes`` and ``knowledge_base.cli.register``.
"""

from __future__ import annotations

from knowledge_base.search import SearchHit
from knowledge_base.service import GuideAnswer, KnowledgeBase, UnansweredQuestion

__all__ = ["GuideAnswer", "KnowledgeBase", "SearchHit", "UnansweredQuestion"]
