"""Start Rasa with cheaper turns.  This module runs INSIDE the Rasa process (Python 3.10, ``.venv-rasa``).

``govbot run`` starts Rasa as ``.venv-rasa/bin/python -m bot.rasa_process.runtime run …`` (with the
repository on ``PYTHONPATH``) instead of the ``rasa`` script.  Before handing over to Rasa's own command
line, :func:`install` replaces five costly pieces of Rasa 3.6.21 with fast paths that give the same
results.  Each one falls back to Rasa's own code whenever its shortcut does not apply:

1. **The action server's answer is validated with a compiled validator.**  Rasa checks every answer with
   ``jsonschema.validate(answer, schema)``, which re-checks the *schema* against the draft 2020-12
   meta-schema and rebuilds the validator on every call: 35–60 ms of CPU per custom action on the
   2-core machine, half of a whole turn.  The schema is constant, so it is checked and compiled once.
   An answer the compiled validator rejects is handed to Rasa's own check, which raises exactly as
   before.
2. **A new session carries over each slot's value once.**  With ``carry_over_slots_to_new_session``,
   Rasa's ``action_session_start`` copies *every* ``SlotSet`` event of the previous session, including
   the copies that session itself started with, so each session starts with more events than the one
   before and a returning citizen's tracker grows quadratically (measured: 100 turns in 10 sessions →
   2,900 events and 4 s per turn).  Here it copies the last ``SlotSet`` of each slot (value and
   metadata), which leaves every slot with the same value.
3. **The Redis tracker store reads and writes without replaying history.**  ``retrieve`` deserialises
   only the events of the last session (Rasa deserialises and replays the whole stored history, then
   splits it into sessions and replays each).  ``save`` appends the tracker's events to the stored
   history when the two line up (the tracker is the stored history, or its last session, plus new
   events); Rasa instead deserialises the stored history and merges it with a comparison of every new
   event against every stored one, which it does on every turn because the first session starts
   after a ``session_started_metadata`` event that ``retrieve`` leaves out.  When they do not line up,
   Rasa's own ``save`` runs.
4. **Event classes are looked up in a table.**  ``Event.resolve_by_type`` walks all subclasses of
   ``Event`` for every event it deserialises; found classes are remembered (a miss still walks them).
5. **TEDPolicy predicts only when its prediction can win.**  Every prediction runs all policies, but a
   certain rule or memorised story outranks TED, whose TensorFlow call was a third of a turn's CPU; see
   :func:`install_ted_only_when_it_can_win`.

Nothing is replaced when the installed Rasa is not the version these fast paths were written and
tested against (:data:`RASA_VERSION`): Rasa then runs unchanged.

Only the standard library and Rasa's own dependencies may be imported here, and the syntax must stay
valid for Python 3.10: this module is imported by Rasa's interpreter, never by the gateway's.
"""

from __future__ import annotations

import json
import logging
import sys
import weakref
from typing import Any

log = logging.getLogger(__name__)

RASA_VERSION = "3.6.21"

_installed: list[str] = []


def install_compiled_response_validator() -> None:
    """Validate action-server answers with a validator compiled once from Rasa's (constant) schema."""
    from jsonschema import validators
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)  # what jsonschema.validate repeats on every call
    validator = validator_class(schema)
    rasa_check = RemoteAction._validate_action_result

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        if validator.is_valid(result):
            return True
        return rasa_check(self, result)  # raises Rasa's own ValidationError with its message

    _validate_action_result.__doc__ = rasa_check.__doc__
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


def install_compact_session_carry_over() -> None:
    """``action_session_start`` carries over the last ``SlotSet`` of each slot, not all of them."""
    from rasa.core.actions.action import ActionSessionStart
    from rasa.shared.core.events import SlotSet

    def _slot_set_events_from_tracker(tracker: Any) -> list[SlotSet]:
        latest: dict[str, SlotSet] = {}
        for event in tracker.applied_events():
            if isinstance(event, SlotSet):
                latest.pop(event.key, None)  # keep the order in which the slots got their values
                latest[event.key] = event
        return [SlotSet(key=e.key, value=e.value, metadata=e.metadata) for e in latest.values()]

    _slot_set_events_from_tracker.__doc__ = ActionSessionStart._slot_set_events_from_tracker.__doc__
    ActionSessionStart._slot_set_events_from_tracker = staticmethod(_slot_set_events_from_tracker)  # type: ignore[method-assign]


def install_incremental_redis_tracker_store() -> None:
    """``RedisTrackerStore``: retrieve the last session without replaying older ones; save by appending."""
    from rasa.core.tracker_store import RedisTrackerStore
    from rasa.shared.core.constants import ACTION_SESSION_START_NAME
    from rasa.shared.core.conversation import Dialogue
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.utils.common import all_subclasses

    # Rasa splits sessions at every ActionExecuted (or subclass) event of `action_session_start`.
    action_types = {ActionExecuted.type_name} | {c.type_name for c in all_subclasses(ActionExecuted)}
    rasa_save = RedisTrackerStore.save
    rasa_retrieve = RedisTrackerStore._retrieve

    def last_session_start(events: list[dict[str, Any]]) -> int:
        for index in range(len(events) - 1, -1, -1):
            event = events[index]
            if event.get("event") in action_types and event.get("name") == ACTION_SESSION_START_NAME:
                return index
        return -1

    async def _retrieve(
        self: RedisTrackerStore, sender_id: str, fetch_all_sessions: bool
    ) -> DialogueStateTracker | None:
        stored = self.red.get(self.key_prefix + sender_id) if not fetch_all_sessions else None
        if stored is None:
            return await rasa_retrieve(self, sender_id, fetch_all_sessions)
        dialogue = json.loads(stored)
        events = dialogue.get("events") or []
        start = last_session_start(events)
        if start <= 0:  # a single session: Rasa returns the whole tracker
            tracker = self.init_tracker(sender_id)
            tracker.recreate_from_dialogue(Dialogue.from_parameters(dialogue))
            return tracker
        last_session = Dialogue.from_parameters({"name": sender_id, "events": events[start:]})
        return DialogueStateTracker.from_events(  # as Rasa builds the last of the split sessions
            sender_id,
            last_session.events,
            self.init_tracker(sender_id).slots.values(),
            max_event_history=self.max_event_history,
        )

    def appended(stored: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The stored events followed by the tracker's new ones, if the tracker holds the whole stored
        history or its last session; otherwise None."""
        for start in dict.fromkeys((0, last_session_start(stored))):
            if start < 0:
                continue
            overlap = len(stored) - start
            if len(current) >= overlap and stored[start:] == current[:overlap]:
                return stored[:start] + current
        return None

    async def save(
        self: RedisTrackerStore,
        tracker: DialogueStateTracker,
        timeout: float | None = None,  # noqa: ASYNC109 - Rasa's signature: the key's expiry in seconds
    ) -> None:
        key = self.key_prefix + tracker.sender_id
        events = [event.as_dict() for event in tracker.events]
        stored = self.red.get(key)
        if stored is not None:
            merged = appended(json.loads(stored).get("events") or [], events)
            if merged is None:
                await rasa_save(self, tracker, timeout)
                return
            events = merged
        await self.stream_events(tracker)
        if not timeout and self.record_exp:
            timeout = self.record_exp
        # The layout of Rasa's serialise_tracker: json.dumps(Dialogue(sender_id, events).as_dict())
        self.red.set(key, json.dumps({"events": events, "name": tracker.sender_id}), ex=timeout)

    save.__doc__ = rasa_save.__doc__
    RedisTrackerStore._retrieve = _retrieve  # type: ignore[method-assign]
    RedisTrackerStore.save = save  # type: ignore[method-assign]


def install_event_class_table() -> None:
    """Remember the classes ``Event.resolve_by_type`` finds."""
    from rasa.shared.core.events import Event

    rasa_resolve = Event.resolve_by_type
    found: dict[str, type[Event]] = {}

    def resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
        cls = found.get(type_name)
        if cls is None:
            cls = rasa_resolve(type_name, default)
            if cls is not None and cls is not default and getattr(cls, "type_name", None) == type_name:
                found[type_name] = cls
        return cls

    resolve_by_type.__doc__ = rasa_resolve.__doc__
    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign]


def ted_cannot_win(predictions: list[Any], tracker: Any, domain: Any, ted_priority: int) -> bool:
    """Whether the ensemble would pick one of these predictions whatever a (non-end-to-end) TEDPolicy
    prediction of priority ``ted_priority`` said.

    The ensemble (``DefaultPolicyPredictionEnsemble._pick_best_policy``) lets "no user" predictions
    overrule all others, then end-to-end ones, then picks the highest (confidence, priority).  TED's
    confidences come from a softmax (at most 1.0) and, without end-to-end training data, its predictions
    are never "no user" nor end-to-end.  So TED cannot win when the best of the other predictions, after
    the ensemble's own zeroing of a rejected action, is "no user" or end-to-end, or is certain (1.0) and
    from a policy of higher priority (ties go to the higher priority)."""
    from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble

    if not predictions:
        return False
    best = DefaultPolicyPredictionEnsemble._best_policy_prediction(predictions, tracker, domain)
    if best.is_no_user_prediction or best.is_end_to_end_prediction:
        return True
    return best.max_confidence >= 1.0 and best.policy_priority > ted_priority


def install_ted_only_when_it_can_win() -> None:
    """Run TEDPolicy's TensorFlow prediction only when a rule or a memorised story has not already decided.

    Every prediction runs all policies, and the ensemble then picks one.  Rules and memorised stories
    predict with confidence 1.0 and outrank TED (priority 6 and 3 against 1), so whenever one of them is
    certain, TED's prediction (a third of a turn's CPU: two or three TensorFlow calls per turn) is computed
    and thrown away.  Here the node that combines the predictions runs the other policies first and calls
    TED's graph node only when :func:`ted_cannot_win` says its answer could matter; the ensemble then
    combines exactly what it would have combined, minus a TED prediction that could not have won (TED adds
    no events of its own when it does not win).  Graphs whose TED was trained with end-to-end stories (text
    features: its predictions may then overrule the others) or whose confidences are not a softmax (margin
    loss: unbounded similarities) and any other graph shape run unchanged.  One difference remains: when
    TED would have raised on a turn a rule decides, the turn now succeeds."""
    import dask
    from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.nlu.constants import TEXT
    from rasa.utils.tensorflow.constants import (
        CROSS_ENTROPY,
        LOSS_TYPE,
        MODEL_CONFIDENCE,
        SOFTMAX,
    )

    rasa_run = DaskGraphRunner.run
    # runner -> target -> its graph with TED deferred (None: run as Rasa does)
    plans: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()

    class DeferredTed:
        """Replaces the ensemble's task: other policies' outputs in, TED called only when needed."""

        def __init__(self, runner: Any, target: str, ted_nodes: list[str]) -> None:
            schema = runner._graph_schema.nodes
            self.ensemble = runner._instantiated_nodes[target]
            self.ensemble_needs = schema[target].needs  # parameter -> node name
            self.ted = {name: runner._instantiated_nodes[name] for name in ted_nodes}
            self.ted_needs = {name: sorted(set(schema[name].needs.values())) for name in ted_nodes}
            self.ted_priority = max(node._component.priority for node in self.ted.values())
            self.inputs = sorted(
                {n for n in self.ensemble_needs.values() if n not in self.ted}
                | {n for needs in self.ted_needs.values() for n in needs}
            )

        def __call__(self, *outputs: Any) -> Any:
            received = dict(o for o in outputs if isinstance(o, tuple))
            others = [  # the other policies' predictions, as combine_predictions_from_kwargs picks them
                received[node]
                for node in self.ensemble_needs.values()
                if node not in self.ted and isinstance(received[node], PolicyPrediction)
            ]
            tracker = received[self.ensemble_needs["tracker"]]
            domain = received[self.ensemble_needs["domain"]]
            try:
                skip = ted_cannot_win(others, tracker, domain, self.ted_priority)
            except Exception:  # run TED: the ensemble's node then fails as in Rasa
                skip = False
            if skip:
                ted_outputs = [(name, None) for name in self.ted]  # not a prediction: the ensemble skips it
            else:
                ted_outputs = [
                    node(*[(n, received[n]) for n in self.ted_needs[name]]) for name, node in self.ted.items()
                ]
            return self.ensemble(*[(n, v) for n, v in received.items() if n not in self.ted], *ted_outputs)

    def ted_is_plain(node: Any) -> bool:
        """TED's confidences are a softmax (at most 1.0) and it never predicts from the message's text."""
        component = getattr(node, "_component", None)
        return (
            component is not None
            and TEXT not in component.fake_features
            and component.config.get(MODEL_CONFIDENCE) == SOFTMAX
            and component.config.get(LOSS_TYPE) == CROSS_ENTROPY
        )

    def plan_for(runner: Any, target: str) -> Any:
        per_target = plans.setdefault(runner, {})
        if target not in per_target:
            try:
                per_target[target] = deferred_graph(runner, target)
            except Exception:  # an unexpected graph: run it as Rasa does
                log.warning("running %s as Rasa does: cannot defer its TED prediction", target, exc_info=True)
                per_target[target] = None
        return per_target[target]

    def deferred_graph(runner: Any, target: str) -> dict[str, Any] | None:
        """``target``'s dask graph with TED called from the ensemble's task, or None to run as Rasa does."""
        schema = runner._graph_schema
        node = schema.nodes.get(target)
        if node is None or node.uses is not DefaultPolicyPredictionEnsemble:
            return None
        ted_nodes = [
            n for n in node.needs.values() if n in schema.nodes and schema.nodes[n].uses is TEDPolicy
        ]
        minimal = schema.minimal_graph_schema([target])
        used_elsewhere = any(
            t in other.needs.values()
            for name, other in minimal.nodes.items()
            if name != target
            for t in ted_nodes
        )
        if (
            not ted_nodes
            or used_elsewhere
            or not {"tracker", "domain"} <= set(node.needs)
            or not all(ted_is_plain(runner._instantiated_nodes[n]) for n in ted_nodes)
        ):
            return None
        graph = runner._build_dask_graph(minimal)
        deferred = DeferredTed(runner, target, ted_nodes)
        for name in ted_nodes:
            del graph[name]
        graph[target] = (deferred, *deferred.inputs)
        return graph

    def run(
        self: Any, inputs: dict[str, Any] | None = None, targets: list[str] | None = None
    ) -> dict[str, Any]:
        graph = plan_for(self, targets[0]) if targets and len(targets) == 1 else None
        if graph is None:
            return rasa_run(self, inputs, targets)
        run_graph = dict(graph)
        self._add_inputs_to_graph(inputs, run_graph)
        try:
            return dict(dask.get(run_graph, targets))
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e

    run.__doc__ = rasa_run.__doc__
    DaskGraphRunner.run = run  # type: ignore[method-assign]


FAST_PATHS = {
    "compiled_response_validator": install_compiled_response_validator,
    "compact_session_carry_over": install_compact_session_carry_over,
    "incremental_redis_tracker_store": install_incremental_redis_tracker_store,
    "event_class_table": install_event_class_table,
    "ted_only_when_it_can_win": install_ted_only_when_it_can_win,
}


def install(names: list[str] | None = None) -> list[str]:
    """Install the named fast paths (default: all) that are not installed yet; returns the names of all
    installed ones.  Nothing is installed for another Rasa version."""
    import rasa

    if rasa.__version__ != RASA_VERSION:
        log.warning(
            "Rasa %s is not %s: running it unchanged, without the fast paths of %s",
            rasa.__version__,
            RASA_VERSION,
            __name__,
        )
        return []
    for name in names if names is not None else list(FAST_PATHS):
        if name not in _installed:
            FAST_PATHS[name]()
            _installed.append(name)
    return list(_installed)


def main() -> None:
    # Run with `python -m`, this file is `__main__`: install through the importable module, so that an
    # `import bot.rasa_process.runtime` elsewhere sees the same installed fast paths.
    from bot.rasa_process import runtime

    installed = runtime.install()
    print(f"[govbot] Rasa fast paths: {', '.join(installed) or 'none'}", file=sys.stderr, flush=True)
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
