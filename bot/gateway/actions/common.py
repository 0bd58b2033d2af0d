"""Small helpers every action uses to read the tracker."""

from __future__ import annotations

from rasa_sdk import Tracker


def channel_of(tracker: Tracker) -> str:
    meta = tracker.latest_message.get("metadata") or {}
    return str(meta.get("channel") or "wechat")


def user_text(tracker: Tracker) -> str:
    text = tracker.latest_message.get("text") or ""
    return "" if text.startswith("/") else text
