"""Complaints (投诉/举报/建议/求助): a 工单 lifecycle with working-day deadlines, staff handling, ratings,
citizen notices and an Open311 GeoReport v2 view.

Modules:

* :mod:`.models` — tables ``complaints``, ``complaint_events`` (append-only history), ``complaint_notices``
  (outbox of messages to the citizen);
* :mod:`.service` — :class:`ComplaintService`, the only writer; the state machine lives in :mod:`.states`;
* :mod:`.workdays` — working-day arithmetic on the Chinese calendar (holidays and 调休);
* :mod:`.numbers` — unguessable complaint numbers with a check character;
* :mod:`.triage` — scope triage of free text (emergency, lawful channel, not ours, consultation);
* :mod:`.delivery` — the :class:`ReplySender` protocol and WeChat/SMS adapters;
* :mod:`.staff_api`, :mod:`.open311`, :mod:`.cli` — the staff HTTP API, Open311 and ``govbot complaints``;
* :mod:`.app` — ``setup(app, service)``: both route sets and the periodic sweep in one call.

What the conversational intake calls (all on :class:`~bot.domains.complaints.service.ComplaintService`):
``triage(text)`` first; ``find_duplicate(sender_id, respondent, description, phone)`` → offer 并单 →
``add_to_existing(number, sender_id, text, idempotency_key=…)``; ``confirmation_text(new)`` for the read-back;
``create(new, idempotency_key=…)`` → ``CreateResult.receipt``; ``lookup(text, sender_id)`` for
"查询投诉 TS…"; ``awaiting_rating(sender_id)`` + ``parse_rating(text)`` + ``rate(number, sender_id, score)``.
"""
