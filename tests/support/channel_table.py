"""One table harness for every channel's webhook tests (after nyaruka/courier's ``handlertest``).

A channel's test module writes its cases as rows of :class:`ChannelCase` — label, the request (in the
channel's own terms: a WeChat XML message, an SMS body with signing knobs, …), the expected HTTP status,
the expected reply, and what the dialogue engine must have been sent — then, for each row, sends the
request and hands what it saw to :func:`check`.  The assertions are the same for every channel:

* the status is the expected one, and an error answer never carries a traceback;
* no reply expected → the citizen gets nothing; else exactly one reply text, containing ``reply``;
* ``dialogue_text`` given → the dialogue engine got exactly that text, from the channel's sender id and
  with the channel in its metadata; not given → the engine was not called (errors, keywords).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Request = TypeVar("Request")


@dataclass
class ChannelCase(Generic[Request]):
    label: str
    request: Request
    status: int
    reply: str | None  # a substring of the one reply text; None: no reply at all
    dialogue_text: str | None = None  # what the dialogue engine was sent; None: it was not called
    options: dict[str, Any] = field(default_factory=dict)  # channel-specific settings for this row


@dataclass
class Observed:
    """What a channel's webhook did with one request."""

    status: int
    body: str  # the raw HTTP answer
    replies: Sequence[str]  # the reply texts the citizen receives from that answer
    dialogue_calls: Sequence[tuple[str, str, dict[str, Any]]]  # (sender, text, metadata) per turn


def check(case: ChannelCase[Any], seen: Observed, *, sender: str, channel: str) -> None:
    assert seen.status == case.status, f"{case.label}: {seen.status} {seen.body[:200]}"
    if seen.status >= 400:
        assert "Traceback" not in seen.body, case.label
    if case.reply is None:
        assert list(seen.replies) == [], case.label
    else:
        assert len(seen.replies) == 1, f"{case.label}: {seen.replies}"
        assert case.reply in seen.replies[0], f"{case.label}: {seen.replies[0]}"
    if case.dialogue_text is None:
        assert list(seen.dialogue_calls) == [], case.label
    else:
        assert [text for _, text, _ in seen.dialogue_calls] == [case.dialogue_text], case.label
        who, _, metadata = seen.dialogue_calls[0]
        assert who == sender and metadata["channel"] == channel, case.label
