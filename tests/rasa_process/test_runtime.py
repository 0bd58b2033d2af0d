"""The fast paths ``bot.rasa_process.runtime`` installs in the Rasa process give Rasa's own results.

Each check runs in Rasa's interpreter (``.venv-rasa``) with the project's domain and a real Redis: the same
deterministic conversation (several sessions, slots, a form) goes through stock Rasa and through Rasa with
the fast paths, and the stored and retrieved trackers, slot values, validation errors and event classes
are compared.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest

from tests.support.rasa_interpreter import run_in_rasa
from tests.support.services import TEST_REDIS_URL

CHECK = r"""
import asyncio, itertools, json, sys, time

REDIS_HOST, REDIS_PORT, REDIS_DB = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
clock = itertools.count(1_700_000_000_000)
time.time = lambda: next(clock) / 1000  # deterministic, strictly increasing event timestamps

import jsonschema
from rasa.core.actions.action import ActionSessionStart, RemoteAction
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted, ActiveLoop, BotUttered, Event, SlotSet, UserUttered, deserialise_events,
)
from rasa.shared.utils.common import all_subclasses

from bot.rasa_process import runtime as rasa_runtime

domain = Domain.load("domain.yml")
merges = []
rasa_merge = RedisTrackerStore._merge_trackers
RedisTrackerStore._merge_trackers = staticmethod(lambda a, b: merges.append(1) or rasa_merge(a, b))


def user(text, intent="ask_service_guide"):
    parse = {"intent": {"name": intent, "confidence": 0.9}, "entities": [], "text": text}
    return UserUttered(text, parse["intent"], [], parse)


async def conversation(prefix, sessions, turns, metadata):
    # What MessageProcessor does around each turn: fetch (last session), start a session when due, save.
    global clock
    clock = itertools.count(1_700_000_000_000)
    merges.clear()
    store = RedisTrackerStore(
        domain, host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, key_prefix=prefix, record_exp=600
    )
    sender = "wx:oRuntimeCheck"
    store.red.delete(store.key_prefix + sender)
    fetched = []
    for s in range(sessions):
        for t in range(turns):
            tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
            events = [e.as_dict() for e in tracker.events]
            fetched.append({"events": events, "slots": tracker.current_slot_values()})
            if t == 0:
                if metadata:
                    tracker.update(SlotSet("session_started_metadata", {"channel": "wechat"}), domain)
                started = await ActionSessionStart().run(None, None, tracker.copy(), domain)
                tracker.update_with_events([ActionExecuted("action_session_start"), *started], domain)
            tracker.update(user(f"问题{s}-{t}"), domain)
            tracker.update(ActionExecuted("action_answer_guide"), domain)
            tracker.update_with_events(
                [
                    SlotSet("last_item_code", f"ITEM-{s}-{t}"),
                    SlotSet("pending_choices", None if t % 2 else ["36072200-XK-001", "36072200-XK-008"]),
                    SlotSet("complaint_description", f"描述{t}" if t % 3 == 0 else None),
                ],
                domain,
            )
            if t == 1:
                tracker.update_with_events(
                    [ActiveLoop("complaint_form"), SlotSet("requested_slot", "complaint_description")], domain
                )
            if t == 2:
                tracker.update_with_events([ActiveLoop(None), SlotSet("requested_slot", None)], domain)
            tracker.update(BotUttered(f"答复{s}-{t}", {"elements": None}), domain)
            tracker.update(ActionExecuted("action_listen"), domain)
            await store.save(tracker)
    stored = json.loads(store.red.get(store.key_prefix + sender))
    full = await store.retrieve_full_tracker(sender)
    # Timestamps differ only by how often each variant read the clock: compare their order instead.
    rank = {ts: i for i, ts in enumerate(sorted({e["timestamp"] for e in stored["events"]}))}

    def relabel(events):
        return [{**e, "timestamp": rank.get(e["timestamp"], e["timestamp"])} for e in events]

    return {
        "fetched": [{**f, "events": relabel(f["events"])} for f in fetched],
        "stored": relabel(stored["events"]),
        "slots": full.current_slot_values(),
        "slot_values_per_turn": [f["slots"] for f in fetched],
        "merges": len(merges),
        "session_sizes": session_sizes(stored["events"]),
    }


def session_sizes(events):
    starts = [i for i, e in enumerate(events) if e.get("name") == "action_session_start"]
    return [b - a for a, b in zip(starts, starts[1:] + [len(events)])]


def validation_error(answer):
    try:
        RemoteAction("action_answer_guide", None)._validate_action_result(answer)
        return None
    except jsonschema.ValidationError as exc:
        return exc.message


ANSWERS = [
    {"events": [{"event": "slot", "name": "last_item_code", "value": "X"}], "responses": [{"text": "好"}]},
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "value": "X"}], "responses": []},
    {"events": [{"event": "no_such_event"}], "responses": []},
    {"events": "not a list", "responses": []},
    {"events": [], "responses": "not a list"},
]
EVENT_TYPES = sorted({c.type_name for c in all_subclasses(Event)}) + ["no_such_event"]


def event_classes():
    out = {}
    for name in EVENT_TYPES:
        try:
            out[name] = Event.resolve_by_type(name).__name__
        except ValueError as exc:
            out[name] = f"ValueError: {exc}"
    return out


async def main():
    stock = {
        "store_with_metadata": await conversation("stock1", 4, 5, True),
        "store_without_metadata": await conversation("stock2", 4, 5, False),
        "validation": [validation_error(a) for a in ANSWERS],
        "event_classes": event_classes(),
    }
    rasa_runtime.install(["incremental_redis_tracker_store", "event_class_table"])
    store = {
        "store_with_metadata": await conversation("store1", 4, 5, True),
        "store_without_metadata": await conversation("store2", 4, 5, False),
        "event_classes": event_classes(),
    }
    fast = {
        "installed": rasa_runtime.install(),
        "installed_again": rasa_runtime.install(),
        "store_with_metadata": await conversation("fast1", 4, 5, True),
        "store_without_metadata": await conversation("fast2", 4, 5, False),
        "validation": [validation_error(a) for a in ANSWERS],
    }
    print(json.dumps({"stock": stock, "store": store, "fast": fast}, ensure_ascii=False))


asyncio.run(main())
"""


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """Run the comparison once in Rasa's interpreter (a few seconds: it imports Rasa)."""
    redis = urlparse(TEST_REDIS_URL)
    db = (redis.path or "/15").lstrip("/") or "15"
    return run_in_rasa(CHECK, redis.hostname or "127.0.0.1", str(redis.port or 6379), db, timeout=300)


def test_every_fast_path_is_installed_once(results) -> None:
    assert sorted(results["fast"]["installed"]) == [
        "compact_session_carry_over",
        "compiled_response_validator",
        "event_class_table",
        "incremental_redis_tracker_store",
        "ted_only_when_it_can_win",
    ]
    assert results["fast"]["installed_again"] == results["fast"]["installed"]


@pytest.mark.parametrize("case", ["store_with_metadata", "store_without_metadata"])
def test_tracker_store_keeps_exactly_rasas_trackers(results, case) -> None:
    stock, store = results["stock"][case], results["store"][case]
    assert store["fetched"] == stock["fetched"]  # what every turn starts from
    assert store["stored"] == stock["stored"]  # what is kept in Redis, all sessions
    assert store["slots"] == stock["slots"]
    # Rasa merges the stored history into every save; the fast path appends without merging.
    assert stock["merges"] > 0 and store["merges"] == 0


@pytest.mark.parametrize("case", ["store_with_metadata", "store_without_metadata"])
def test_new_sessions_carry_over_the_same_slot_values(results, case) -> None:
    stock, fast = results["stock"][case], results["fast"][case]
    assert fast["slot_values_per_turn"] == stock["slot_values_per_turn"]
    assert fast["slots"] == stock["slots"]
    assert fast["merges"] == 0
    # Rasa's sessions start with every SlotSet of all earlier sessions: each one longer than the last.
    assert stock["session_sizes"] == sorted(stock["session_sizes"]) and len(set(stock["session_sizes"])) > 2
    # With the fast paths later sessions do not grow (± the next session's metadata event at the end).
    later = fast["session_sizes"][1:]
    assert max(later) - min(later) <= 1, fast["session_sizes"]
    assert sum(fast["session_sizes"]) < sum(stock["session_sizes"])


def test_invalid_action_answers_fail_as_in_rasa(results) -> None:
    stock, fast = results["stock"]["validation"], results["fast"]["validation"]
    assert fast == stock
    assert stock[:2] == [None, None] and all(error for error in stock[2:])


def test_event_classes_resolve_as_in_rasa(results) -> None:
    assert results["store"]["event_classes"] == results["stock"]["event_classes"]
    assert results["stock"]["event_classes"]["no_such_event"].startswith("ValueError")
