"""Adapter to the dialogue engine (Rasa's REST channel) behind a small typed interface.

``POST {RASA_URL}/webhooks/rest/webhook`` with ``{sender, message, metadata}`` runs a full turn (NLU,
policies, custom actions, tracker save) and returns ``[{"recipient_id", "text"?, "custom"?}, ...]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp


class DialogueUnavailable(Exception):
    """The dialogue engine did not answer (down, slow, or a malformed answer)."""


@dataclass
class BotMessage:
    text: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)


class Dialogue(Protocol):
    async def turn(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]: ...


def parse_rest_reply(payload: Any) -> list[BotMessage]:
    if not isinstance(payload, list):
        raise DialogueUnavailable(f"unexpected Rasa answer type {type(payload).__name__}")
    out: list[BotMessage] = []
    for item in payload:
        if not isinstance(item, dict):
            continue
        custom = item.get("custom")
        out.append(
            BotMessage(
                text=item.get("text") if isinstance(item.get("text"), str) else None,
                custom=custom if isinstance(custom, dict) else {},
            )
        )
    return out


class RasaRestDialogue:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        self._session = session
        self._url = f"{base_url.rstrip('/')}/webhooks/rest/webhook"
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def turn(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]:
        body = {"sender": sender_id, "message": text, "metadata": metadata}
        try:
            async with self._session.post(self._url, json=body, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise DialogueUnavailable(f"Rasa answered HTTP {resp.status}")
                payload = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DialogueUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return parse_rest_reply(payload)

    async def healthy(self) -> bool:
        url = self._url.rsplit("/webhooks/", 1)[0] + "/"
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=1.0)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
