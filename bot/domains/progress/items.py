"""Catalogue facts for a case's item (name, window, phone, place) when the backend leaves them out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from knowledge_base.service import KnowledgeBase


@dataclass(frozen=True)
class ItemFacts:
    code: str
    name: str
    window: str = ""
    phone: str = ""
    location: str = ""
    office_hours: str = ""


class ItemDirectory(Protocol):
    async def facts(self, code: str) -> ItemFacts | None: ...


class KnowledgeBaseItems:
    """:class:`ItemDirectory` over the knowledge base's catalogue (the 事项编码 is the key)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._kb = kb

    async def facts(self, code: str) -> ItemFacts | None:
        if not code:
            return None
        item = await self._kb.item(code)
        if item is None:
            return None
        return ItemFacts(item.code, item.name, item.window, item.phone, item.location, item.office_hours)
