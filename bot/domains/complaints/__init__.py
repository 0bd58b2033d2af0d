"""Complaints (投诉/举报/建议/求助): a 工单 lifecycle with working-day deadlines, staff handling, ratings,
citizen notices and an Open311 GeoReport v2 view.  Working days come from :mod:`bot.core.workdays`.

Modules:

* :mod:`.models` — tables ``complaints``, ``complaint_events`` (append-only history), ``complaint_notices``
  (outbox of messages to the citizen);
* :mod:`.states` — the state machine, its labels and which actions each state allows;
* :mod:`.service` — :class:`ComplaintService`, the one object callers hold: the staff transitions and
  search, and the rest delegated to its parts:

  * :mod:`.store` — the reads by number and the single write path (conditional UPDATE + history row +
    notice in one transaction);
  * :mod:`.intake` — :class:`NewComplaint` → ``create`` (exactly once per idempotency key) and the receipt;
  * :mod:`.merging` — 并单: ``find_duplicate``, ``add_to_existing``, staff ``merge``;
  * :mod:`.citizen` — the read-back, "查询投诉 TS…" and 好差评;
  * :mod:`.sweep` — 督办 of overdue complaints; :mod:`.outbox` — delivery and retry of notices;
  * :mod:`.errors` — :class:`ComplaintError` and its kinds (400/404/409);

* :mod:`.config` — :class:`ComplaintSettings` (deadlines, limits, Open311 keys);
* :mod:`.categories` — the complaint categories (also Open311's services);
* :mod:`.numbers` — unguessable complaint numbers with a check character;
* :mod:`.triage` — scope triage of free text (emergency, lawful channel, not ours, consultation);
* :mod:`.delivery` — the :class:`ReplySender` protocol and WeChat/SMS adapters;
* :mod:`.staff_api`, :mod:`.open311`, :mod:`.cli` — the staff HTTP API, Open311 and ``govbot complaints``;
* :mod:`.app` — ``setup(app, service)``: both route sets and the periodic sweep in one call.

What the conversational intake calls: ``triage(text)`` (:mod:`.triage`) first; on
:class:`~bot.domains.complaints.service.ComplaintService`: ``find_duplicate(sender_id, respondent,
description, phone)`` → offer 并单 → ``add_to_existing(number, sender_id, text, idempotency_key=…)``;
``confirmation_text(new)`` (:mod:`.citizen`) for the read-back; ``create(new, idempotency_key=…)`` →
``CreateResult.receipt``; ``lookup(text, sender_id)`` for "查询投诉 TS…"; ``awaiting_rating(sender_id)`` +
``parse_rating(text)`` (:mod:`.citizen`) + ``rate(number, sender_id, score)``.
"""
