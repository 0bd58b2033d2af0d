"""``ted_only_when_it_can_win`` (``bot.rasa_process.runtime``) predicts exactly what Rasa predicts.

Runs in Rasa's interpreter with the trained model: real citizen conversations (NLU parses every message)
and some deliberately odd ones (an unexpected action, a rejected form) go turn by turn through the policy
ensemble twice — through Rasa's own graph runner and through the one with TED deferred — and every
prediction (action, policy, confidences, events, flags) is compared.  TED must still run where its answer
can matter, and not where a rule or a memorised story already decided.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.gateway.launcher import MODELS, model_is_current
from tests.support.rasa_interpreter import run_in_rasa

CHECK = r"""
import asyncio, json, random, sys

from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected, ActiveLoop, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_process import runtime as rasa_runtime

ted_calls = [0]
ted_max_confidence = [0.0]
ted_predict = TEDPolicy.predict_action_probabilities


def counted(self, *args, **kwargs):
    ted_calls[0] += 1
    prediction = ted_predict(self, *args, **kwargs)
    ted_max_confidence[0] = max(ted_max_confidence[0], float(prediction.max_confidence))
    return prediction


TEDPolicy.predict_action_probabilities = counted
stock_run = DaskGraphRunner.run
installed = rasa_runtime.install(["ted_only_when_it_can_win"])

agent = Agent.load(sys.argv[1])
processor = agent.processor
domain = processor.domain
target = processor.model_metadata.core_target

CONVERSATIONS = [
    ["你好", "营业执照怎么办理", "要带什么材料", "谢谢", "再见"],
    ["身份证丢了怎么补办", "第二个", "收费吗", "几点上班"],
    ["查一下我的办件进度", "20261125000123", "谢谢"],
    ["我要投诉", "窗口工作人员态度很差，让我跑了三趟", "13812345678", "确认", "谢谢"],
    ["我要投訴", "算了不投诉了", "你好"],
    ["转人工", "好的", "再见"],
    ["今天天气怎么样", "你是机器人吗", "結婚登記需要什麼"],
    ["我想咨询一下社保卡", "不是这个", "在哪个窗口办", "要多久"],
]


def summary(prediction):
    return {
        "action": domain.action_names_or_texts[prediction.max_confidence_index],
        "policy": prediction.policy_name,
        "priority": prediction.policy_priority,
        "probabilities": [round(float(p), 6) for p in prediction.probabilities],
        "events": [
            [type(e).__name__, {k: v for k, v in e.as_dict().items() if k != "timestamp"}]
            for e in prediction.events
        ],
        "no_user": prediction.is_no_user_prediction,
        "e2e": prediction.is_end_to_end_prediction,
        "hide_rule_turn": prediction.hide_rule_turn,
        "action_metadata": prediction.action_metadata,
        "diagnostic_data": sorted(prediction.diagnostic_data),
    }


cases = []
counts = {"stock": 0, "fast": 0}


def predict(tracker, label):
    before = ted_calls[0]
    stock = stock_run(processor.graph_runner, inputs={"__tracker__": tracker.copy()}, targets=[target])
    counts["stock"] += ted_calls[0] - before
    before = ted_calls[0]
    fast = processor.graph_runner.run(inputs={"__tracker__": tracker.copy()}, targets=[target])
    counts["fast"] += ted_calls[0] - before
    stock, fast = summary(stock[target]), summary(fast[target])
    cases.append({"label": label, "stock": stock, "fast": fast})
    return stock


async def user(tracker, text):
    parse = await processor.parse_message(UserMessage(text))
    tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse), domain)


def decisions():
    # ted_cannot_win on its own, with predictions as the ensemble sees them (TED priority 1).
    def p(action, confidence, priority, **flags):
        probabilities = [0.0] * domain.num_actions
        probabilities[domain.index_for_action(action)] = confidence
        return PolicyPrediction(probabilities, "Policy", priority, **flags)

    listen = DialogueStateTracker.from_events("d", [ActionExecuted(ACTION_LISTEN_NAME)], domain.slots)
    rejected = DialogueStateTracker.from_events(
        "r", [ActionExecuted(ACTION_LISTEN_NAME), ActionExecutionRejected("utter_greet")], domain.slots
    )
    cases = {
        "certain rule": ([p("utter_greet", 1.0, 6)], listen),
        "certain memoized story": ([p("utter_greet", 1.0, 3)], listen),
        "certain, but TED's own priority": ([p("utter_greet", 1.0, 1)], listen),
        "rule fallback only": ([p("action_default_fallback", 0.3, 6)], listen),
        "not certain": ([p("utter_greet", 0.99, 6)], listen),
        "no-user loop prediction": ([p("utter_greet", 0.5, 6, is_no_user_prediction=True)], listen),
        "end-to-end prediction": ([p("utter_greet", 0.4, 2, is_end_to_end_prediction=True)], listen),
        "certain rule for a rejected action": ([p("utter_greet", 1.0, 6)], rejected),
        "nothing": ([], listen),
    }
    return {
        name: rasa_runtime.ted_cannot_win(predictions, tracker, domain, 1)
        for name, (predictions, tracker) in cases.items()
    }


async def main():
    rng = random.Random(2026)
    odd_actions = [a for a in domain.action_names_or_texts if a.startswith(("utter_", "action_"))]
    for n, texts in enumerate(CONVERSATIONS):
        for odd in (False, True):
            tracker = DialogueStateTracker.from_events(
                f"check{n}{odd}", [ActionExecuted(ACTION_LISTEN_NAME)], domain.slots
            )
            for t, text in enumerate(texts):
                await user(tracker, text)
                if odd and t == 1:  # something the training data never shows
                    tracker.update(ActionExecuted(rng.choice(odd_actions)), domain)
                for step in range(5):
                    predicted = predict(tracker, f"{n}/{odd}/{text}/{step}")
                    action = predicted["action"]
                    if odd and action in domain.form_names and step == 0:
                        tracker.update(ActionExecutionRejected(action), domain)  # the form declines
                        continue
                    if action in domain.form_names:
                        tracker.update(ActiveLoop(action), domain)
                    tracker.update(ActionExecuted(action), domain)
                    if action == "action_start_complaint":  # its FollowupAction starts the form
                        tracker.update_with_events(
                            [
                                ActionExecuted("complaint_form"),
                                ActiveLoop("complaint_form"),
                                SlotSet("requested_slot", "complaint_description"),
                            ],
                            domain,
                        )
                    if action == ACTION_LISTEN_NAME:
                        break
    result = {
        "installed": installed,
        "cases": cases,
        "ted_calls": counts,
        "ted_max_confidence": ted_max_confidence[0],
        "decisions": decisions(),
    }
    print(json.dumps(result, ensure_ascii=False))


asyncio.run(main())
"""


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """One run in Rasa's interpreter: loading the model takes 20–45 s."""
    assert model_is_current(), "the Rasa model is missing or stale: run `.venv/bin/govbot train`"
    return run_in_rasa(CHECK, str(MODELS), timeout=600)


def test_the_fast_path_is_installed(results) -> None:
    assert results["installed"] == ["ted_only_when_it_can_win"]


def test_every_prediction_is_rasas_own(results) -> None:
    cases = results["cases"]
    assert len(cases) > 60
    for case in cases:
        assert case["fast"] == case["stock"], case["label"]
    # The conversations reach rules, TED, the form (no-user loop predictions) and rejected form runs.
    policies = {case["stock"]["policy"] for case in cases}
    assert {"RulePolicy", "TEDPolicy"} <= policies, policies
    assert any(case["stock"]["no_user"] for case in cases)
    assert any(case["stock"]["events"] for case in cases)  # the ensemble's own events are compared too


def test_ted_runs_only_where_it_can_win(results) -> None:
    cases, calls = results["cases"], results["ted_calls"]
    assert calls["stock"] == len(cases)  # Rasa runs TED for every prediction
    won_by_ted = sum(case["stock"]["policy"] == "TEDPolicy" for case in cases)
    assert won_by_ted <= calls["fast"] < len(cases) / 2, calls


def test_ted_never_claims_more_than_certainty(results) -> None:
    # What the shortcut rests on: TED's softmax confidences never exceed a rule's 1.0.
    assert 0.0 < results["ted_max_confidence"] <= 1.0


def test_ted_is_skipped_exactly_when_it_cannot_win(results) -> None:
    assert results["decisions"] == {
        "certain rule": True,
        "certain memoized story": True,
        "certain, but TED's own priority": False,  # a tie: the winner depends on order, so TED runs
        "rule fallback only": False,
        "not certain": False,
        "no-user loop prediction": True,  # overrules every prediction that uses the user's message
        "end-to-end prediction": True,  # overrules TED's intent-based prediction
        "certain rule for a rejected action": False,  # the ensemble zeroes the rejected action first
        "nothing": False,
    }
