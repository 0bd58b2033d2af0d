"""A test double of the dialogue engine: answers from a script, can be slow or fail on demand.

Used by channel tests that are about the channel (signatures, dedup, deadlines), not about NLU; the
end-to-end tests use the real Rasa server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.gateway.conversation.dialogue import BotMessage, DialogueUnavailable


@dataclass
class ScriptedDialogue:
    """Replies ``reply(text)`` (default: an echo); ``delay`` seconds per turn; ``fail`` raises."""

    reply: Callable[[str], list[BotMessage]] = field(default=lambda text: [BotMessage(text=f"收到：{text}")])
    delay: float = 0.0
    fail: bool = False
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def turn(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]:
        self.calls.append((sender_id, text, metadata))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise DialogueUnavailable("scripted failure")
        return self.reply(text)
