"""Composing for Alibaba Cloud SMS: every message is a registered, approved template (no free text).

The ledger still holds exactly what the handset shows (``【签名】`` + the rendered template), and the
provider sends it as that template again (:meth:`AliyunProvider.match`).  How texts become templates:

* A message that says what it is (``Templated``: a registry kind and its variables) is that template:
  a guide answer too long for the reply budget becomes ``guide_short`` (the item, a one-line answer of the
  asked aspect, the window and its phone; a short one is sent whole as ``chat_reply``), keyword answers
  ``keyword_help`` / ``opt_out_confirmation`` / ``opt_in_confirmation``, case notices ``case_status``,
  complaint notices ``complaint_receipt`` / ``complaint_reply``.
* Anything else (a clarifying question, a polite refusal, the rest of a long answer) goes as ``chat_reply``
  messages: the text cut at sentence or clause boundaries into values of at most 35 characters (Aliyun's
  limit for a variable), URLs left out (Aliyun refuses them in variables).  A reply longer than the budget
  (``SMS_REPLY_SEGMENT_BUDGET`` messages) ends with a "更多" hint and the rest is kept for "更多", as for
  Twilio: nothing is dropped.
* A ``Templated`` message that does not fit its template (a value too long, a template not yet approved)
  falls back to ``chat_reply`` and the refusal is logged for staff (the citizen still gets an answer).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from sms_gateway.aliyun.templates import TYPE_LIMITS, TemplateError, TemplateMessage, TemplateRegistry
from sms_gateway.compose import ComposedReply, Composer, SmsMessage, Templated

log = logging.getLogger(__name__)

CHAT = "chat_reply"
GUIDE_SHORT = "guide_short"
MORE = "内容较长，回复“更多”查看后续"
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|cn|net|org|gov)(?:/\S*)?", re.I)


class TemplateComposer(Composer):
    def __init__(
        self, registry: TemplateRegistry, signature: str, *, reply_budget: int = 3, max_segments: int = 8
    ) -> None:
        super().__init__(signature, reply_budget=reply_budget, max_segments_per_message=max_segments)
        self.registry = registry
        chat = registry.templates.get(CHAT)
        if chat is None or len(chat.variables) != 1:
            raise ValueError(f"the template registry needs a '{CHAT}' template with one variable")
        self._chat_var, chat_type = next(iter(chat.variables.items()))
        self.value_limit = TYPE_LIMITS.get(chat_type, 35)

    # ----------------------------------------------------------------------------------- templates

    def render(self, templated: Templated) -> TemplateMessage:
        """``templated`` filled into its registered template (``TemplateError`` when it does not fit)."""
        values = {k: self.sanitize(_URL.sub("", str(v))) for k, v in templated.values.items()}
        return self.registry.fill(templated.kind, values)

    def _templated(self, templated: Templated | None) -> SmsMessage | None:
        if templated is None:
            return None
        try:
            filled = self.render(templated)
        except TemplateError as exc:
            log.warning("sms template refused, sent as chat replies", extra={"kind": templated.kind,
                                                                             "reason": str(exc)})  # fmt: skip
            return None
        return self.message(filled.text)

    def chunks(self, texts: Sequence[str]) -> list[str]:
        """The texts as ``chat_reply`` values: at most ``value_limit`` characters, cut at boundaries."""
        out: list[str] = []
        for text in texts:
            body = re.sub(r"[ \t]*\n+[ \t]*", "；", _URL.sub("", self.sanitize(text))).strip("；")
            body = re.sub(r"[ \t]{2,}", " ", body)
            while body:
                head = _head(body, self.value_limit)
                out.append(head.strip("；"))
                body = body[len(head) :].lstrip("；，, ")
        return [c for c in out if c]

    def _chat(self, value: str) -> SmsMessage:
        return self.message(self.registry.fill(CHAT, {self._chat_var: value}).text)

    # ----------------------------------------------------------------------------------- composing

    def whole(
        self, texts: Sequence[str], *, opt_out_hint: bool = False, templated: Templated | None = None
    ) -> list[SmsMessage]:
        """The message of ``templated``, else every text as ``chat_reply`` messages.  (Promotional opt-out
        wording belongs in the promotional template itself: Aliyun reviews it there.)"""
        message = self._templated(templated)
        if message is not None:
            return [message]
        return [self._chat(c) for c in self.chunks(texts)]

    def reply(self, texts: Sequence[str], templated: Templated | None = None) -> ComposedReply:
        chunks = self.chunks(texts)
        if templated is not None and templated.kind == GUIDE_SHORT and len(chunks) <= self.reply_budget:
            templated = None  # a guide answer that fits is sent whole; a long one as its short form
        message = self._templated(templated)
        if message is not None:
            return ComposedReply([message])
        if len(chunks) <= self.reply_budget:
            return ComposedReply([self._chat(c) for c in chunks])
        per_part = max(1, self.reply_budget - 1)  # the last message of a part is the "更多" hint
        parts = [chunks[i : i + per_part] for i in range(0, len(chunks), per_part)]
        first, rest = parts[0], parts[1:]
        held: list[str] = []
        for part in rest:  # each kept part must come back within the budget when "更多" asks for it
            joined = "；".join(part)
            held += [joined] if len(self.chunks([joined])) <= self.reply_budget else part
        return ComposedReply([self._chat(c) for c in [*first, MORE]], held)


def _head(text: str, limit: int) -> str:
    """The longest head of ``text`` of at most ``limit`` characters cut at a sentence or clause boundary
    (in its last two thirds), else exactly ``limit`` characters."""
    if len(text) <= limit:
        return text
    window = text[:limit]
    for breaks in ("。！？!?；;", "，,、：:", " "):
        pos = max(window.rfind(ch) for ch in breaks)
        if pos >= limit // 3:
            return text[: pos + 1]
    return window
