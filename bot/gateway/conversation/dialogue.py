"""Adapter to the dialogue engine (Rasa's REST channel) behind a small typed interface.

``POST {RASA_URL}/webhooks/rest/webhook`` with ``{sender, message, metadata}`` runs a full turn (NLU,
policies, custom actions, tracker save) and returns ``[{"recipient_id", "text"?, "custom"?}, ...]``.

``RASA_URL`` may list several Rasa servers (comma-separated; ``make run`` starts ``RASA_PROCESSES`` of them).
They share the tracker and lock stores in Redis, so any of them can take any turn: each turn goes to the
server with the fewest turns in flight from this worker, and to the next one when a server refuses the
connection (the turn never reached it).  A citizen's turns still run one at a time, in order: the
conversation layer holds the sender's turn lock around every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bot.core.config import url_list


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


def rasa_servers(base_urls: str) -> list[str]:
    """``"http://a:5005, http://b:5005/"`` → ``["http://a:5005", "http://b:5005"]``."""
    servers = url_list(base_urls)
    if not servers:
        raise ValueError("no Rasa server URL given")
    return servers


class RasaRestDialogue:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        self._session = session
        self._servers = rasa_servers(base_url)
        self._in_flight = [0] * len(self._servers)
        self._rotation = 0
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @property
    def servers(self) -> list[str]:
        return list(self._servers)

    def _order(self) -> list[int]:
        """Server indexes, fewest turns in flight first; ties rotate so idle servers share the work."""
        n = len(self._servers)
        self._rotation = (self._rotation + 1) % n
        rotated = [(self._rotation + k) % n for k in range(n)]
        return sorted(rotated, key=lambda i: self._in_flight[i])

    async def turn(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]:
        body = {"sender": sender_id, "message": text, "metadata": metadata}
        refused: aiohttp.ClientConnectorError | None = None
        for index in self._order():
            self._in_flight[index] += 1
            try:
                url = f"{self._servers[index]}/webhooks/rest/webhook"
                async with self._session.post(url, json=body, timeout=self._timeout) as resp:
                    if resp.status != 200:
                        raise DialogueUnavailable(f"Rasa answered HTTP {resp.status}")
                    payload = await resp.json(content_type=None)
            except aiohttp.ClientConnectorError as exc:  # not connected: the turn did not start there
                refused = exc
                continue
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise DialogueUnavailable(f"{type(exc).__name__}: {exc}") from exc
            finally:
                self._in_flight[index] -= 1
            return parse_rest_reply(payload)
        raise DialogueUnavailable(f"{type(refused).__name__}: {refused}")

    async def healthy(self) -> bool:
        """True when every Rasa server answers."""
        for server in self._servers:
            try:
                async with self._session.get(f"{server}/", timeout=aiohttp.ClientTimeout(total=1.0)) as resp:
                    if resp.status != 200:
                        return False
            except (aiohttp.ClientError, TimeoutError):
                return False
        return True
