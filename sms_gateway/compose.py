"""Turning conversation texts into SMS messages: signature, sanitising, masking, splitting, reply budget.

Every message is ``【签名】`` + body.  The signature is added exactly once (a body that already starts
with it loses that copy) and a body never contains 【 or 】 itself: they become 〔 〕 (the knowledge base
titles an answer 【事项名称】, which carriers would read as a second signature).  ID-card and mobile
numbers in a body are masked (landlines such as the service center's phone are public and stay).

How a reply is cut to the per-reply segment budget (``SMS_REPLY_SEGMENT_BUDGET``, default 3):

1. A reply that fits the budget is sent as it is.
2. A reply that contains an enumerated list (two or more lines numbered ``1.`` ``2、`` ``（3）`` ``四、``) is
   sent whole, in as many messages as needed: the materials list (一次性告知) and step lists must reach the
   applicant complete and in one go, and the knowledge base may deliver one list as several texts.
3. Any other reply is shortened: the first message carries as much as fits in the budget, cut at a line or
   sentence boundary (never inside a sentence unless a single sentence is longer than the budget), followed
   by the hint 回复“更多”查看后续内容; the rest is kept, in budget-sized parts, for the citizen's "更多".

Nothing is ever dropped: a text that is too long for one message (``SMS_MAX_SEGMENTS_PER_MESSAGE``) is split
into several messages, never truncated.  Notifications and broadcasts are sent whole (no budget).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.masking import half_width_digits, mask_id_number
from sms_gateway.segments import Encoding, count, fits

MORE_HINT = "（内容较长，回复“更多”查看后续内容）"
OPT_OUT_HINT = "回T退订"

# Same shapes as bot.core.masking (ID numbers, mainland mobiles); landlines are deliberately left alone.
_ID_NUMBER = re.compile(r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx](?!\d)")
_MOBILE = re.compile(r"(?<!\d)((?:\+|00)?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_LIST_LINE = re.compile(r"^\s*(?:\d{1,3}\s*[.、．)）]|[（(]\d{1,3}[)）]|[一二三四五六七八九十]{1,3}、)")
# Control characters (and what XML forbids): nothing a handset shows, and they would make the TwiML of a
# synchronous reply malformed (Twilio then sends nothing).  Tab, newline and CR stay.
_UNSENDABLE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BREAK_CLASSES = ("\n", "。！？!?；;", "，,、：:", " ")


def mask_body(text: str) -> str:
    """Mask ID-card numbers and mobile numbers in an outgoing SMS body."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), half_width_digits(text))
    return _MOBILE.sub(lambda m: f"{m.group(2)}****{m.group(4)}", text)


def boundary_cut(text: str, limit: int) -> int:
    """Where to cut ``text`` to keep at most ``limit`` characters: after the last line, sentence, clause or
    word boundary in the last two thirds of ``text[:limit]``, else at ``limit``."""
    window = text[:limit]
    for breaks in _BREAK_CLASSES:
        pos = max(window.rfind(ch) for ch in breaks)
        if pos >= max(1, limit // 3):
            return pos + 1
    return limit


def has_list(texts: Sequence[str]) -> bool:
    """Whether the texts contain an enumerated list (two or more numbered lines)."""
    return sum(1 for t in texts for line in t.splitlines() if _LIST_LINE.match(line)) >= 2


@dataclass(frozen=True)
class Templated:
    """What a message says in the terms of a registered template, for providers that send only approved
    templates (Alibaba Cloud, ``sms_gateway/aliyun/compose.py``): the kind of message (a key of the template
    registry, e.g. ``guide_short``, ``keyword_help``) and its variables.  Free-text providers ignore it and
    send the texts themselves."""

    kind: str
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignTemplate:
    """The registered template a campaign is written from, as its preview shows it (template-bound
    providers only): its code and approval state, each variable's kind and length limit, and what stops
    it from being sent (``problems``, in Chinese for staff)."""

    kind: str = ""
    code: str = ""
    status: str = ""  # approved | pending | rejected
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → {"type", "max"}
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SmsMessage:
    """One provider message: ``body`` is exactly what the handset shows (signature included)."""

    body: str
    segments: int
    encoding: Encoding


@dataclass(frozen=True)
class ComposedReply:
    messages: list[SmsMessage] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)  # parts for "更多", each with its own hint

    @property
    def segments(self) -> int:
        return sum(m.segments for m in self.messages)


class Composer:
    def __init__(self, signature: str, *, reply_budget: int = 3, max_segments_per_message: int = 8) -> None:
        self.signature = signature
        self.prefix = f"【{signature}】" if signature else ""
        self.reply_budget = reply_budget
        self.per_message = max(max_segments_per_message, reply_budget)

    # ----------------------------------------------------------------------------------- single texts

    def sanitize(self, text: str) -> str:
        body = _UNSENDABLE.sub("", text).strip()
        if self.prefix:
            while body.startswith(self.prefix):
                body = body[len(self.prefix) :].lstrip()
        body = body.replace("【", "〔").replace("】", "〕")
        return mask_body(body)

    def message(self, body: str) -> SmsMessage:
        """The provider message for an already sanitised body."""
        full = self.prefix + body
        info = count(full)
        return SmsMessage(full, info.segments, info.encoding)

    def _fits(self, body: str, max_segments: int) -> bool:
        return fits(self.prefix + body, max_segments)

    def take(self, text: str, max_segments: int, suffix: str = "") -> tuple[str, str]:
        """The longest head of ``text`` (cut at a line, sentence or clause boundary) that fits in
        ``max_segments`` with ``suffix`` appended, and the rest.  The head is never empty."""
        text = text.strip()
        if self._fits(text + suffix, max_segments):
            return text, ""
        lo, hi = 1, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._fits(text[:mid] + suffix, max_segments):
                lo = mid
            else:
                hi = mid - 1
        cut = boundary_cut(text, lo)
        return text[:cut].rstrip(), text[cut:].strip()

    def split(self, text: str, max_segments: int | None = None) -> list[str]:
        """``text`` in bodies that each fit ``max_segments`` (default: the per-message maximum)."""
        limit = max_segments or self.per_message
        parts: list[str] = []
        rest = text.strip()
        while rest:
            head, rest = self.take(rest, limit)
            parts.append(head)
        return parts

    # ----------------------------------------------------------------------------------- campaigns

    def campaign_template(self, template: str) -> CampaignTemplate | None:
        """The registered template a campaign's ``{var}`` text must be (None: free text may be sent)."""
        return None

    def campaign_values(self, template: str, values: Mapping[str, str]) -> list[str]:
        """Why one recipient's variables cannot be sent with the campaign's template (empty: they can)."""
        return []

    # ----------------------------------------------------------------------------------- replies

    def whole(
        self, texts: Sequence[str], *, opt_out_hint: bool = False, templated: Templated | None = None
    ) -> list[SmsMessage]:
        """All of ``texts`` as messages (no budget): short texts share a message, long ones are split.
        (``templated`` is for template-bound composers; free text needs no template.)"""
        bodies = [b for b in (self.sanitize(t) for t in texts) if b]
        if opt_out_hint and bodies and not bodies[-1].endswith(OPT_OUT_HINT):
            bodies[-1] = bodies[-1] + OPT_OUT_HINT
        chunks = [part for body in bodies for part in self.split(body)]
        packed: list[str] = []
        for chunk in chunks:
            if packed and self._fits(packed[-1] + "\n" + chunk, self.per_message):
                packed[-1] = packed[-1] + "\n" + chunk
            else:
                packed.append(chunk)
        return [self.message(b) for b in packed]

    def reply(self, texts: Sequence[str], templated: Templated | None = None) -> ComposedReply:
        """A reply within the segment budget (see the module docstring for the rule)."""
        bodies = [b for b in (self.sanitize(t) for t in texts) if b]
        if not bodies:
            return ComposedReply()
        everything = self.whole(bodies)
        if has_list(bodies) or sum(m.segments for m in everything) <= self.reply_budget:
            return ComposedReply(everything)
        hint = "\n" + MORE_HINT
        head, rest = self.take("\n".join(bodies), self.reply_budget, hint)
        held: list[str] = []
        while rest:
            if self._fits(rest, self.reply_budget):
                held.append(rest)
                break
            part, rest = self.take(rest, self.reply_budget, hint)
            held.append(part + hint)
        return ComposedReply([self.message(head + hint)], held)
