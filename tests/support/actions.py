"""Helpers for the action-server tests (tests/actions/): Rasa 3.6's action-call payload."""

from __future__ import annotations

from typing import Any


def action_call(
    action: str, text: str, *, intent: str = "ask_service_guide", channel: str = "wechat", **slots: Any
) -> dict[str, Any]:
    """What Rasa 3.6 POSTs to the action endpoint."""
    all_slots = {"last_item_code": None, "pending_choices": None, "pending_question": None, **slots}
    return {
        "next_action": action,
        "sender_id": "wx:oTest",
        "version": "3.6.21",
        "domain": {"slots": {k: {"type": "any"} for k in all_slots}, "responses": {}, "actions": [action]},
        "tracker": {
            "sender_id": "wx:oTest",
            "slots": all_slots,
            "latest_message": {
                "text": text,
                "intent": {"name": intent, "confidence": 0.9},
                "entities": [],
                "metadata": {"channel": channel},
            },
            "latest_event_time": 0,
            "followup_action": None,
            "paused": False,
            "events": [],
            "latest_input_channel": "rest",
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        },
    }
