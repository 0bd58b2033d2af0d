"""Composing for Alibaba Cloud SMS: every message is a registered, approved template (no free text).

The ledger still holds exactly what the handset shows (``【签名】`` + the rendered template), and the
provider sends it as that template again (:meth:`AliyunProvider.match`).  How texts become templates:

* A message that says what it is (``Templated``: a registry kind and its variables) is that template:
  a guide answer too long for the reply budget becomes ``guide_short`` (the item, a one-line answer of the
  asked aspect, the window and its phone; a short one is sent whole as ``chat_reply``), keyword answers
  ``keyword_help`` / ``opt_out_confirmation`` / ``opt_in_confirmation``, case notices ``case_status``,
  complaint notices ``complaint_receipt`` / ``complaint_reply``.
* A text that is exactly what an approved template renders (a broadcast written from its registered
  template) is sent as it is.
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
from collections.abc import Mapping, Sequence

from sms_gateway.aliyun.templates import (
    STATUS_LABELS,
    TYPE_LABELS,
    TYPE_LIMITS,
    Template,
    TemplateError,
    TemplateMessage,
    TemplateRegistry,
)
from sms_gateway.compose import CampaignTemplate, ComposedReply, Composer, SmsMessage, Templated, boundary_cut

log = logging.getLogger(__name__)

CHAT = "chat_reply"
GUIDE_SHORT = "guide_short"
MORE = "内容较长，回复“更多”查看后续"
_CAMPAIGN_VAR = re.compile(r"\{(\w+)\}")  # a campaign's variables: {name}
_CAMPAIGN_SLOT = re.compile(r"\$\{(\w+)\}")  # a template's: ${name}
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

    def rendered(self, text: str) -> SmsMessage | None:
        """``text`` as it is when it is exactly what an approved template renders (a campaign's notice
        written from its registered template), else None."""
        body = self.sanitize(text)
        for template in self.registry.templates.values():
            if template.status == "approved" and template.kind != CHAT and template.matches(body):
                return self.message(body)
        return None

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

    # ----------------------------------------------------------------------------------- campaigns

    def _registered(self, template: str) -> Template | None:
        wording = _CAMPAIGN_VAR.sub(r"${\1}", template.strip())
        return next((t for t in self.registry.templates.values() if t.content == wording), None)

    def campaign_template(self, template: str) -> CampaignTemplate:
        """A campaign on Aliyun must be written from a registered, approved template (its wording with
        ``{var}`` for each ``${var}``)."""
        registered = self._registered(template)
        if registered is None or registered.kind == CHAT:
            usable = "；".join(
                f"{t.code}（{t.kind}）：{campaign_wording(t)}"
                for t in self.registry.templates.values()
                if t.kind.startswith("broadcast") and t.status == "approved"
            )
            return CampaignTemplate(problems=[
                "阿里云短信只能发送已审核的模板，正文须与模板清单中的一个模板逐字相同"
                + (f"。可用的群发模板：{usable}" if usable else "。模板清单中还没有已审核的群发模板")
            ])  # fmt: skip
        problems = []
        if registered.status != "approved":
            state = STATUS_LABELS.get(registered.status, registered.status)
            problems.append(f"模板 {registered.code}（{registered.kind}）{state}，暂不能发送")
        limits = {
            name: {"type": TYPE_LABELS.get(kind, kind), "max": TYPE_LIMITS.get(kind, 35)}
            for name, kind in registered.variables.items()
        }
        return CampaignTemplate(registered.kind, registered.code, registered.status, limits, problems)

    def campaign_values(self, template: str, values: Mapping[str, str]) -> list[str]:
        registered = self._registered(template)
        if registered is None:
            return []  # campaign_template says why
        try:
            registered.fill(values)
        except TemplateError as exc:
            return [str(exc)]
        return []

    # ----------------------------------------------------------------------------------- composing

    def whole(
        self, texts: Sequence[str], *, opt_out_hint: bool = False, templated: Templated | None = None
    ) -> list[SmsMessage]:
        """The message of ``templated``, else every text as ``chat_reply`` messages.  (Promotional opt-out
        wording belongs in the promotional template itself: Aliyun reviews it there.)"""
        message = self._templated(templated)
        if message is not None:
            return [message]
        if len(texts) == 1 and (as_is := self.rendered(texts[0])) is not None:
            return [as_is]
        if opt_out_hint:  # a broadcast not written from an approved template: the provider refuses it
            return [self.message(self.sanitize(t)) for t in texts]  # (and says why, in the ledger)
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


def campaign_wording(template: Template) -> str:
    """A registered template as a campaign writes it: ``{var}`` for each ``${var}``."""
    return _CAMPAIGN_SLOT.sub(r"{\1}", template.content)


def _head(text: str, limit: int) -> str:
    """The longest head of ``text`` of at most ``limit`` characters, cut at a boundary where there is one."""
    return text if len(text) <= limit else text[: boundary_cut(text, limit)]
