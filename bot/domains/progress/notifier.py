"""Proactive notifications: status changes from the backend's change feed, pushed once to each subscriber.
(Each round also brings 电子监察's case register up to date: ``register.py``, with a cursor of its own.)

Every gateway worker may run a notifier (``run_forever``); they share the database and need no leader:

1. read the feed after the persisted cursor (``progress_feed_cursor``);
2. for each changed ticket with subscribers, fetch the case fresh (the *current* status is what is pushed;
   statuses passed through between two polls are not pushed one by one);
3. for each subscriber, insert the ledger row (ticket, status, round, subscriber) — the unique key means one
   worker wins and sends, a second worker or a restart finds the row and skips; a status the subscriber
   already saw in a lookup reply has a ``seen`` row and is not pushed;
4. move the cursor forward (compare-and-set: a slower worker never moves it back).

Delivery: a WeChat subscriber gets a template message (``client_msg_id`` = the ledger key, so a resend after a
crash is deduplicated by WeChat); when WeChat refuses (unfollowed, blocked, quota, template missing) or no
template is configured, an SMS goes to the applicant's phone on record.  An SMS subscriber gets an SMS through
the outbox (idempotent by the same key).  Transient failures are retried with a delay; a row whose worker
died mid-send is taken over after its lease expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.approval.backend import ApprovalBackend, ApprovalUnavailable
from bot.adapters.approval.model import Case
from bot.adapters.approval.ticket import mask_ticket
from bot.adapters.wechat.api_client import (
    ERRCODE_TIMEOUT,
    ERRCODE_TOKEN_WAIT,
    ERRCODE_TRANSPORT,
    WeChatAPIError,
)
from bot.adapters.wechat.templates import TemplateSender
from bot.core.masking import mask_sender
from bot.core.metrics import Metrics
from bot.core.phone import sms_address
from bot.domains.progress.config import ProgressSettings
from bot.domains.progress.items import ItemDirectory, ItemFacts
from bot.domains.progress.models import ProgressBinding
from bot.domains.progress.register import CaseRegister
from bot.domains.progress.replies import Replies
from bot.domains.progress.store import ProgressStore
from sms_gateway.compose import Templated
from sms_gateway.models import Purpose

log = logging.getLogger(__name__)

CURSOR_NAME = "approval"
# WeChat errors worth retrying later on WeChat itself; anything else means "WeChat will not deliver it".
TRANSIENT_WECHAT = frozenset({-1, 45011, ERRCODE_TRANSPORT, ERRCODE_TIMEOUT, ERRCODE_TOKEN_WAIT})


class SmsSender(Protocol):
    """What the notifier needs from SMS (``sms_gateway.SmsOutbox`` implements it)."""

    async def send(
        self,
        to: str,
        texts: str,
        *,
        purpose: Purpose,
        key: str | None = None,
        templated: Templated | None = None,
    ) -> Sequence[object]: ...


@dataclass
class NotifierReport:
    changes: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    has_more: bool = False
    error: str | None = None


class _Retry(Exception):
    pass


class ProgressNotifier:
    def __init__(
        self,
        backend: ApprovalBackend,
        sessions: async_sessionmaker[AsyncSession],
        replies: Replies,
        *,
        wechat: TemplateSender | None,
        sms: SmsSender | None,
        settings: ProgressSettings | None = None,
        items: ItemDirectory | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cursor_name: str = CURSOR_NAME,
        register: CaseRegister | None = None,
    ) -> None:
        self.backend = backend
        self.register = register
        self.store = ProgressStore(sessions)
        self.replies = replies
        self.wechat = wechat
        self.sms = sms
        self.settings = settings or ProgressSettings()
        self.items = items
        self.metrics = metrics
        self.clock = clock
        self.cursor_name = cursor_name

    async def close(self) -> None:
        """Close the backend's HTTP session (when the backend has one)."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            await close()

    # -- loop -------------------------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set (start it as a background task in each gateway worker)."""
        while not stop.is_set():
            try:
                report = await self.run_once()
            except Exception:
                log.exception("progress notifier round failed")
                report = NotifierReport(error="exception")
            more = report.has_more and report.error is None
            if self.register is not None:
                try:
                    registered = await self.register.run_once()
                    more = more or (registered.has_more and registered.error is None)
                except Exception:
                    log.exception("case register round failed")
            if more:
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.poll_interval)
            except TimeoutError:
                pass

    async def run_once(self) -> NotifierReport:
        report = NotifierReport()
        cursor = await self.store.cursor(self.cursor_name)
        try:
            batch = await self.backend.changes_since(cursor, self.settings.notify_batch)
        except ApprovalUnavailable as exc:
            log.warning("change feed unavailable", extra={"reason": exc.reason})
            report.error = exc.reason
            await self.retry_due(report)
            return report
        report.changes = len(batch.changes)
        report.has_more = batch.has_more
        tickets = list(dict.fromkeys(change.ticket_no for change in batch.changes))
        subscribers = await self.store.subscribers(tickets)
        for ticket in tickets:
            subs = subscribers.get(ticket)
            if not subs:
                continue
            try:
                case = await self.backend.get_case(ticket, fresh=True)
            except ApprovalUnavailable as exc:
                # Stop here without moving the cursor: this batch is read again next round.
                log.warning("case unavailable for notification", extra={"ticket": mask_ticket(ticket)})
                report.error = exc.reason
                return report
            if case is None:
                continue
            status_round = case.status_round()
            for binding in subs:
                row_id = await self.store.claim(
                    ticket,
                    case.status.value,
                    status_round,
                    binding.sender_id,
                    state="sending",
                    lease_until=self._lease(),
                )
                if row_id is not None:
                    await self._deliver(row_id, case, binding, attempts=0, report=report)
        await self.store.advance_cursor(self.cursor_name, cursor, batch.next_cursor)
        await self.retry_due(report)
        return report

    async def retry_due(self, report: NotifierReport | None = None) -> NotifierReport:
        """Retry rows whose retry time came, and take over rows whose sender died (lease expired)."""
        report = report or NotifierReport()
        now = self._now()
        for row in await self.store.due(now):
            if not await self.store.reclaim(row.id, row.state, self._lease(), now):
                continue  # another worker took it
            binding = await self.store.binding(row.sender_id, row.ticket_no)
            try:
                case = await self.backend.get_case(row.ticket_no, fresh=True)
            except ApprovalUnavailable as exc:
                await self._schedule_retry(row.id, row.attempts, f"backend {exc.reason}", report)
                continue
            if (
                binding is None
                or not binding.notify
                or case is None
                or case.status.value != row.status
                or case.status_round() != row.status_round
            ):
                await self.store.finish(row.id, state="skipped", lease_until=None)
                report.skipped += 1
                continue
            await self._deliver(row.id, case, binding, attempts=row.attempts, report=report)
        return report

    # -- delivery ---------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        # UTC: SQLite keeps date-times without their offset, so every stored time must be in one zone.
        return self.clock().astimezone(UTC)

    def _lease(self) -> datetime:
        return self._now() + timedelta(seconds=self.settings.notify_lease)

    @staticmethod
    def ledger_key(case: Case, sender_id: str) -> str:
        digest = hashlib.sha256(sender_id.encode()).hexdigest()[:10]
        return f"progress:{case.ticket_no}:{case.status.value}:{case.status_round()}:{digest}"

    async def _deliver(
        self, row_id: int, case: Case, binding: ProgressBinding, *, attempts: int, report: NotifierReport
    ) -> None:
        key = self.ledger_key(case, binding.sender_id)
        facts = await self._facts(case)
        attempt = attempts + 1
        reason = ""
        if binding.channel == "wechat":
            if self.wechat is not None and self.settings.template_id:
                try:
                    await self.wechat.send_template(
                        binding.address,
                        self.settings.template_id,
                        self.replies.template_data(
                            case, self.settings.template_fields, case.updated_at or self.clock(), facts
                        ),
                        client_msg_id=key,
                    )
                except WeChatAPIError as exc:
                    if exc.errcode in TRANSIENT_WECHAT and attempt < self.settings.notify_max_attempts:
                        await self._schedule_retry(row_id, attempts, f"wechat {exc.errcode}", report)
                        return
                    reason = f"wechat {exc.errcode}"
                    log.info(
                        "WeChat refused the progress notification; falling back to SMS",
                        extra={"sender": mask_sender(binding.sender_id), "errcode": exc.errcode},
                    )
                else:
                    await self._sent(row_id, attempt, "wechat", case, binding, report)
                    return
            else:
                reason = "no wechat template"
            phone = sms_address(case.applicant.phone) if case.applicant.phone else ""
        elif binding.channel == "sms":
            phone = binding.address
        else:  # the console and other channels have no way to push
            await self.store.finish(row_id, state="skipped", attempts=attempt, lease_until=None)
            report.skipped += 1
            return
        if self.sms is None or not phone:
            await self.store.finish(
                row_id,
                state="failed",
                attempts=attempt,
                lease_until=None,
                last_error=(reason or "no sms")[:200],
            )
            report.failed += 1
            await self._count("none", "failed")
            return
        try:
            await self.sms.send(
                phone,
                self.replies.notification_sms(case, facts),
                purpose=Purpose.NOTIFICATION,
                key=key,
                templated=self.replies.notification_template(case),  # template-bound SMS (Aliyun)
            )
        except Exception as exc:
            log.warning("SMS progress notification failed", exc_info=True)
            if attempt < self.settings.notify_max_attempts:
                await self._schedule_retry(row_id, attempts, f"sms {type(exc).__name__}", report)
            else:
                await self.store.finish(
                    row_id, state="failed", attempts=attempt, lease_until=None, last_error=type(exc).__name__
                )
                report.failed += 1
                await self._count("sms", "failed")
            return
        await self._sent(row_id, attempt, "sms", case, binding, report, note=reason)

    async def _sent(
        self,
        row_id: int,
        attempt: int,
        via: str,
        case: Case,
        binding: ProgressBinding,
        report: NotifierReport,
        note: str = "",
    ) -> None:
        await self.store.finish(
            row_id,
            state="sent",
            via=via,
            attempts=attempt,
            lease_until=None,
            sent_at=self._now(),
            last_error=note[:200] or None,
        )
        report.sent += 1
        await self._count(via, "sent")
        log.info(
            "progress notification sent",
            extra={
                "via": via,
                "sender": mask_sender(binding.sender_id),
                "ticket": mask_ticket(case.ticket_no),
                "status": case.status.value,
            },
        )

    async def _schedule_retry(self, row_id: int, attempts: int, error: str, report: NotifierReport) -> None:
        delay = self.settings.notify_retry_delay * (2**attempts)
        await self.store.finish(
            row_id,
            state="retry",
            attempts=attempts + 1,
            lease_until=None,
            next_attempt_at=self._now() + timedelta(seconds=delay),
            last_error=error[:200],
        )
        report.retried += 1
        await self._count("none", "retry")

    async def _facts(self, case: Case) -> ItemFacts | None:
        if self.items is None or (case.item_name and case.window and case.window_phone):
            return None
        try:
            return await self.items.facts(case.item_code)
        except Exception:
            log.warning("catalogue facts unavailable", exc_info=True)
            return None

    async def _count(self, via: str, result: str) -> None:
        if self.metrics is not None:
            await self.metrics.inc("govbot_progress_notifications_total", {"via": via, "result": result})
