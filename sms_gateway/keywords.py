"""Keywords handled before the conversation: opt-out, opt-in and help.

A keyword is the whole message (case, width, Traditional characters, surrounding spaces and a trailing
full stop or exclamation mark do not matter): "退订" opts out, "我要退订短信" goes to the conversation.
Twilio's own extra keywords (END, QUIT, CANCEL, ...) are not mirrored: when Twilio blocks a number for
one of them, the next send fails with 21610 and the number is marked opted out here as well.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from bot.core.textnorm import normalize


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_WORDS = frozenset({"T", "TD", "N", "退订", "退訂", "STOP", "UNSUBSCRIBE"})
OPT_IN_WORDS = frozenset({"START", "订阅", "恢复"})
HELP_WORDS = frozenset({"HELP", "帮助", "?"})
_TRAILING = re.compile(r"[\s.。!！~～]+$")  # "退订。", "T !", "TD。 ！": any mix of stops and spaces


def keyword_of(text: str) -> Keyword | None:
    raw = _TRAILING.sub("", unicodedata.normalize("NFKC", text or "").strip())
    if not raw:
        return None
    candidates = {raw.upper(), normalize(raw).upper()}
    if candidates & OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if candidates & OPT_IN_WORDS:
        return Keyword.OPT_IN
    if candidates & HELP_WORDS:
        return Keyword.HELP
    return None
