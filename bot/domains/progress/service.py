"""The case-progress conversation: one citizen message in, the reply out.

Privacy rules (个人信息保护法, minimal disclosure):

* A status is shown only to the applicant.  Over SMS the sender's number must be the applicant's phone on
  record (nothing else to do).  On WeChat (and the console) the first lookup of a ticket asks for the last 4
  digits of the applicant's phone (or the whole number); when they match, the account is bound to the case
  and later lookups from it need nothing more.
* The ask-for-digits step comes *before* the backend is called, for known and unknown tickets alike, and an
  unknown ticket, someone else's case and wrong digits all get the very same answer.
* Failed attempts are rate-limited per citizen and per ticket (``LookupLimiter``), and every lookup is written
  to ``progress_audit`` (who, when, which ticket, result).
* Replies mask the applicant's name, show no applicant phone and never an ID number; logs mask the sender and
  the ticket.

A citizen who sees a case is subscribed to its status changes (``ProgressNotifier``) unless they replied
"取消提醒"; "开启提醒" switches them back on.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.approval.backend import ApprovalBackend, ApprovalUnavailable
from bot.adapters.approval.model import Case, CaseStatus
from bot.adapters.approval.ticket import (
    PhoneProof,
    TicketKind,
    find_phone_proof,
    find_ticket,
    mask_ticket,
    strip_ticket,
)
from bot.core.masking import mask_sender
from bot.core.metrics import Metrics
from bot.core.phone import national_digits, sms_address
from bot.core.textnorm import normalize
from bot.domains.progress.config import ProgressSettings
from bot.domains.progress.items import ItemDirectory, ItemFacts
from bot.domains.progress.limits import LookupLimiter
from bot.domains.progress.models import ProgressBinding
from bot.domains.progress.replies import Replies, ReplyContext
from bot.domains.progress.store import PendingVerifications, ProgressStore
from bot.domains.progress.workdays import WorkingDays

log = logging.getLogger(__name__)

UNSUBSCRIBE_RE = re.compile(r"(取消|关闭|停止|不要再?|不用再?|别再?|退订)(进度)?(提醒|通知|订阅)")
RESUBSCRIBE_RE = re.compile(r"(开启|打开|恢复|重新开启|继续)(进度)?(提醒|通知|订阅)")


class LookupResult(StrEnum):
    SHOWN = "shown"
    VERIFY_REQUESTED = "verify_requested"
    NOT_FOUND = "not_found"
    NOT_OWNER = "not_owner"
    WRONG_DIGITS = "wrong_digits"
    INVALID_TICKET = "invalid_ticket"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    ASK_TICKET = "ask_ticket"
    LISTED = "listed"
    NO_PENDING = "no_pending"
    UNSUBSCRIBED = "unsubscribed"
    RESUBSCRIBED = "resubscribed"


@dataclass
class ProgressOutcome:
    messages: list[str]
    result: LookupResult
    ticket_no: str | None = None
    # Slot values for the dialogue engine: the ticket and phone slots are always cleared, so a number typed
    # once never lingers in the tracker or answers a later turn.
    slots: dict[str, Any] = field(default_factory=lambda: {"ticket_no": None, "phone": None})


def is_unsubscribe(text: str) -> bool:
    return bool(UNSUBSCRIBE_RE.search(text))


def is_resubscribe(text: str) -> bool:
    return bool(RESUBSCRIBE_RE.search(text)) and not is_unsubscribe(text)


def sms_phone(sender_id: str, metadata: dict[str, Any]) -> str:
    """The SMS sender's number (E.164) from the metadata, else from the ``sms:<E.164>`` sender id."""
    phone = str(metadata.get("phone") or "")
    if not phone and sender_id.startswith("sms:"):
        phone = sender_id[4:]
    return phone


class ProgressService:
    def __init__(
        self,
        backend: ApprovalBackend,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        *,
        working_days: WorkingDays,
        center_phone: str,
        settings: ProgressSettings | None = None,
        items: ItemDirectory | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings or ProgressSettings()
        self.backend = backend
        self.store = ProgressStore(sessions)
        self.pending = PendingVerifications(redis, self.settings.pending_ttl)
        self.limiter = LookupLimiter(
            redis,
            max_failures=self.settings.max_failures,
            window=self.settings.failure_window,
            cooldown=self.settings.cooldown,
            ticket_max_failures=self.settings.ticket_max_failures,
        )
        self.working_days = working_days
        self.replies = Replies(
            ReplyContext(
                center_phone, working_days, cooldown_minutes=max(1, math.ceil(self.settings.cooldown / 60))
            )
        )
        self.items = items
        self.metrics = metrics
        self.clock = clock

    def today(self) -> date:
        return self.clock().astimezone(self.working_days.tz).date()

    async def close(self) -> None:
        """Close the backend's HTTP session (when the backend has one)."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            await close()

    # -- entry points -----------------------------------------------------------------------------------

    async def has_pending(self, sender_id: str) -> bool:
        """True while a ticket waits for this sender's phone digits (route a bare "1234" here then)."""
        try:
            return await self.pending.get(sender_id) is not None
        except Exception:
            log.warning("pending verification lookup failed", exc_info=True)
            return False

    async def handle(
        self,
        sender_id: str,
        channel: str,
        text: str,
        metadata: dict[str, Any] | None = None,
        slots: dict[str, Any] | None = None,
    ) -> ProgressOutcome:
        """Answer one message of the progress conversation (a ticket, the phone digits, "查进度",
        "取消提醒" / "开启提醒").  Never raises: any failure becomes a polite reply."""
        metadata = metadata or {}
        slots = slots or {}
        try:
            outcome = await self._handle(sender_id, channel, text, metadata, slots)
        except Exception:
            log.exception("progress lookup failed", extra={"sender": mask_sender(sender_id)})
            outcome = ProgressOutcome([self.replies.unavailable()], LookupResult.UNAVAILABLE)
        await self._count(channel, outcome.result)
        return outcome

    async def set_notifications(
        self, sender_id: str, channel: str, text: str = "", *, notify: bool
    ) -> ProgressOutcome:
        """ "取消提醒" / "开启提醒" as its own intent: for the ticket named in ``text``, else every case."""
        try:
            parse = find_ticket(normalize(text or ""), self.today())
            ticket = parse.ticket if parse.kind is TicketKind.VALID and not notify else None
            outcome = await self._set_notify(sender_id, channel, ticket, notify=notify)
        except Exception:
            log.exception("progress notification switch failed", extra={"sender": mask_sender(sender_id)})
            outcome = ProgressOutcome([self.replies.unavailable()], LookupResult.UNAVAILABLE)
        await self._count(channel, outcome.result)
        return outcome

    async def _handle(
        self, sender_id: str, channel: str, text: str, metadata: dict[str, Any], slots: dict[str, Any]
    ) -> ProgressOutcome:
        norm = normalize(text or "")
        today = self.today()
        parse = find_ticket(norm, today)
        if is_unsubscribe(norm):
            ticket = parse.ticket if parse.kind is TicketKind.VALID else None
            return await self._set_notify(sender_id, channel, ticket, notify=False)
        if is_resubscribe(norm):
            return await self._set_notify(sender_id, channel, None, notify=True)
        if parse.kind is TicketKind.NONE and slots.get("ticket_no"):
            parse = find_ticket(str(slots["ticket_no"]), today)
        if parse.kind is TicketKind.INVALID:
            return await self._invalid_ticket(sender_id, channel, parse.ticket)
        if parse.kind is TicketKind.VALID:
            assert parse.ticket is not None
            proof = find_phone_proof(strip_ticket(norm)) if channel != "sms" else None
            return await self.lookup(sender_id, channel, parse.ticket, metadata, proof=proof)
        proof = find_phone_proof(norm)
        if proof is not None:
            pending = await self.pending.get(sender_id) if channel != "sms" else None
            if pending:
                return await self.verify(sender_id, channel, pending, proof)
            return ProgressOutcome([self.replies.digits_without_ticket()], LookupResult.NO_PENDING)
        # No number: the cases this account (or SMS number) already saw; an SMS lookup re-checks the sender.
        bound = await self.store.bindings_of(sender_id)
        if len(bound) == 1:
            return await self.lookup(sender_id, channel, bound[0].ticket_no, metadata)
        if bound:
            await self._audit(channel, sender_id, None, "list", LookupResult.LISTED)
            entries = [(b.ticket_no, b.item_name) for b in bound]
            return ProgressOutcome([self.replies.bound_list(entries)], LookupResult.LISTED)
        return ProgressOutcome([self.replies.ask_ticket()], LookupResult.ASK_TICKET)

    # -- lookups ----------------------------------------------------------------------------------------

    async def lookup(
        self,
        sender_id: str,
        channel: str,
        ticket_no: str,
        metadata: dict[str, Any],
        *,
        proof: PhoneProof | None = None,
    ) -> ProgressOutcome:
        if await self.limiter.citizen_blocked(sender_id):
            return await self._rate_limited(sender_id, channel, ticket_no, "lookup", "citizen")
        if channel == "sms":
            return await self._lookup_sms(sender_id, ticket_no, metadata)
        binding = await self.store.binding(sender_id, ticket_no)
        if binding is not None:
            try:
                case = await self.backend.get_case(ticket_no)
            except ApprovalUnavailable as exc:
                return await self._unavailable(
                    sender_id, channel, ticket_no, "lookup", exc, binding.window_phone
                )
            if case is None:  # the bound case is gone from the backend: no failure, same generic answer
                return await self._not_matched(
                    sender_id, channel, ticket_no, "lookup", LookupResult.NOT_FOUND, False
                )
            await self.store.touch(binding.id, case)
            return await self._show(sender_id, channel, case, binding, "lookup", detail="bound")
        await self.pending.put(sender_id, ticket_no)
        if proof is not None:
            return await self.verify(sender_id, channel, ticket_no, proof)
        if await self.limiter.ticket_blocked(ticket_no):
            # Strangers guessed the last 4 digits of this case: its applicant proves with the whole number
            # (which nobody guesses), so nobody can lock the owner out.
            await self._audit(channel, sender_id, ticket_no, "lookup", LookupResult.VERIFY_REQUESTED)
            return ProgressOutcome([self.replies.ask_full_phone()], LookupResult.VERIFY_REQUESTED, ticket_no)
        await self._audit(channel, sender_id, ticket_no, "lookup", LookupResult.VERIFY_REQUESTED)
        return ProgressOutcome([self.replies.ask_phone_digits()], LookupResult.VERIFY_REQUESTED, ticket_no)

    async def verify(
        self, sender_id: str, channel: str, ticket_no: str, proof: PhoneProof
    ) -> ProgressOutcome:
        if await self.limiter.citizen_blocked(sender_id):
            return await self._rate_limited(sender_id, channel, ticket_no, "verify", "citizen")
        if len(proof.digits) == 4 and await self.limiter.ticket_blocked(ticket_no):
            await self._audit(channel, sender_id, ticket_no, "verify", LookupResult.VERIFY_REQUESTED)
            return ProgressOutcome([self.replies.ask_full_phone()], LookupResult.VERIFY_REQUESTED, ticket_no)
        try:
            case = await self.backend.get_case(ticket_no)
        except ApprovalUnavailable as exc:
            # The pending ticket stays: the citizen can send the digits again in a moment.
            return await self._unavailable(sender_id, channel, ticket_no, "verify", exc)
        if case is None:
            return await self._not_matched(sender_id, channel, ticket_no, "verify", LookupResult.NOT_FOUND)
        if not proof.matches(case.applicant.phone):
            return await self._not_matched(sender_id, channel, ticket_no, "verify", LookupResult.WRONG_DIGITS)
        await self.pending.clear(sender_id)
        address = sender_id.split(":", 1)[1] if sender_id.startswith("wx:") else sender_id
        binding = await self.store.bind(
            sender_id,
            case,
            channel=channel,
            address=address,
            verified_by="phone_last4" if len(proof.digits) == 4 else "phone_full",
        )
        return await self._show(sender_id, channel, case, binding, "verify")

    async def _lookup_sms(self, sender_id: str, ticket_no: str, metadata: dict[str, Any]) -> ProgressOutcome:
        phone = sms_phone(sender_id, metadata)
        try:
            case = await self.backend.get_case(ticket_no)
        except ApprovalUnavailable as exc:
            return await self._unavailable(sender_id, "sms", ticket_no, "lookup", exc)
        if case is None:
            return await self._not_matched(sender_id, "sms", ticket_no, "lookup", LookupResult.NOT_FOUND)
        recorded = national_digits(case.applicant.phone)
        if not phone or not recorded or national_digits(phone) != recorded:
            return await self._not_matched(sender_id, "sms", ticket_no, "lookup", LookupResult.NOT_OWNER)
        binding = await self.store.bind(
            sender_id, case, channel="sms", address=sms_address(phone), verified_by="sms_sender"
        )
        return await self._show(sender_id, "sms", case, binding, "lookup")

    # -- outcomes ---------------------------------------------------------------------------------------

    async def _show(
        self,
        sender_id: str,
        channel: str,
        case: Case,
        binding: ProgressBinding,
        action: str,
        detail: str | None = None,
    ) -> ProgressOutcome:
        # The citizen sees this status now: the notifier must not push it to them again.
        await self.store.claim(
            case.ticket_no, case.status.value, case.status_round(), sender_id, state="seen"
        )
        facts = await self._facts(case)
        text = self.replies.case_reply(
            case, channel=channel, today=self.today(), facts=facts, subscribed=binding.notify
        )
        await self._audit(channel, sender_id, case.ticket_no, action, LookupResult.SHOWN, detail)
        return ProgressOutcome([text], LookupResult.SHOWN, case.ticket_no)

    async def _facts(self, case: Case) -> ItemFacts | None:
        needed = not (case.item_name and case.window and case.window_phone) or (
            case.status is CaseStatus.COMPLETED and (case.collection is None or not case.collection.place)
        )
        if not needed or self.items is None:
            return None
        try:
            return await self.items.facts(case.item_code)
        except Exception:
            log.warning("catalogue facts unavailable", exc_info=True)
            return None

    async def _not_matched(
        self,
        sender_id: str,
        channel: str,
        ticket_no: str,
        action: str,
        result: LookupResult,
        count_failure: bool = True,
    ) -> ProgressOutcome:
        if count_failure:
            await self.limiter.record_failure(sender_id, ticket_no if channel != "sms" else None)
        await self._audit(channel, sender_id, ticket_no, action, result)
        return ProgressOutcome([self.replies.not_matched(channel)], result, ticket_no)

    async def _invalid_ticket(
        self, sender_id: str, channel: str, ticket_shape: str | None
    ) -> ProgressOutcome:
        if await self.limiter.citizen_blocked(sender_id):
            return await self._rate_limited(sender_id, channel, ticket_shape, "lookup", "citizen")
        await self.limiter.record_failure(sender_id)
        # Only a 15-digit ticket-shaped number is recorded; other digit runs (ID numbers…) never are.
        await self._audit(channel, sender_id, ticket_shape, "lookup", LookupResult.INVALID_TICKET)
        return ProgressOutcome([self.replies.invalid_ticket()], LookupResult.INVALID_TICKET)

    async def _rate_limited(
        self, sender_id: str, channel: str, ticket_no: str | None, action: str, scope: str
    ) -> ProgressOutcome:
        await self._audit(channel, sender_id, ticket_no, action, LookupResult.RATE_LIMITED, scope)
        return ProgressOutcome([self.replies.rate_limited()], LookupResult.RATE_LIMITED, ticket_no)

    async def _unavailable(
        self,
        sender_id: str,
        channel: str,
        ticket_no: str,
        action: str,
        exc: ApprovalUnavailable,
        window_phone: str = "",
    ) -> ProgressOutcome:
        log.warning(
            "case lookup failed: approval backend unavailable",
            extra={"sender": mask_sender(sender_id), "ticket": mask_ticket(ticket_no), "reason": exc.reason},
        )
        await self._audit(channel, sender_id, ticket_no, action, LookupResult.UNAVAILABLE, exc.reason)
        return ProgressOutcome([self.replies.unavailable(window_phone)], LookupResult.UNAVAILABLE, ticket_no)

    async def _set_notify(
        self, sender_id: str, channel: str, ticket_no: str | None, *, notify: bool
    ) -> ProgressOutcome:
        count = await self.store.set_notify(sender_id, notify, ticket_no)
        result = LookupResult.RESUBSCRIBED if notify else LookupResult.UNSUBSCRIBED
        await self._audit(
            channel,
            sender_id,
            ticket_no,
            "resubscribe" if notify else "unsubscribe",
            result,
            f"{count} cases",
        )
        text = self.replies.resubscribed(count) if notify else self.replies.unsubscribed(count, ticket_no)
        return ProgressOutcome([text], result, ticket_no)

    async def _audit(
        self,
        channel: str,
        sender_id: str,
        ticket_no: str | None,
        action: str,
        result: LookupResult,
        detail: str | None = None,
    ) -> None:
        log.info(
            "progress %s: %s",
            action,
            result.value,
            extra={"sender": mask_sender(sender_id), "ticket": mask_ticket(ticket_no) if ticket_no else None},
        )
        await self.store.audit(
            channel=channel,
            sender_id=sender_id,
            ticket_no=ticket_no,
            action=action,
            result=result.value,
            detail=detail,
        )

    async def _count(self, channel: str, result: LookupResult) -> None:
        if self.metrics is not None:
            await self.metrics.inc(
                "govbot_progress_lookups_total", {"channel": channel, "result": result.value}
            )
