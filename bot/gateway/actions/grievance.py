"""Whether a first message tells of a grievance at the center, though it names no complaint.

"出入境窗口那位说话很冲，我就问了句多久能拿到护照…", "叫号机又坏了，大家拿着号不知道叫到哪" are complaints to
take down, not guide questions; NLU often hears the topic (护照, 叫号) and the knowledge base answers it.

Two signals must agree:

* a naive Bayes model over character uni- and bigrams that tells complaint descriptions from questions:
  complaints, reports and suggestions from the triage training files
  (``bot/domains/complaints/data/triage_train_*.tsv``) and NLU's ``complain`` examples, against NLU's
  examples of guide, out-of-scope, progress and hand-off messages and the examples generated from the
  catalogue (``dialogues/data``) — the log-odds must exceed :data:`THRESHOLD`;
* and words of a grievance, unless the model is sure: a message that asks nothing needs to be about the
  center (its windows, staff, hall) or carry complaint words or cues, or log-odds above :data:`SURE`; a
  message that asks something ("…这钱交哪去了？") needs complaint words *and* to be about the center, or
  log-odds above :data:`SURE_ASKING` and one of them — so "人社窗口星期六开不开" stays a question.

The thresholds were chosen so that none of the 2,300 guide, out-of-scope and progress questions of the
evaluation sets then written (``eval/chat_questions*.tsv``) counts as a grievance (of the 700 written since,
dev6 and dev7, one does: "讲个笑话听听 排队排得好无聊").  ``python -m eval.chat`` measures the
routing; the triage hold-out (``eval/triage_holdout.tsv``) sent as first messages measures how many
complaints are taken down.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from bot.core.textnorm import normalize
from bot.domains.complaints.classify import Labelled, NaiveBayes, cue_strength, training_data
from bot.domains.complaints.triage import about_the_center, has_complaint_words

DIALOGUE_DATA = Path(__file__).resolve().parents[3] / "dialogues" / "data"
THRESHOLD = 10.0  # log-odds of a grievance over a question, with words of a grievance
SURE = 40.0  # … alone, for a message that asks nothing
SURE_ASKING = 60.0  # … with some words of a grievance, for a message that asks something
_QUESTION_INTENTS = ("ask_service_guide", "out_of_scope", "check_progress", "human_handoff")
_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")  # "[护照](item)" → "护照"

# A question, including the forms the chat's own question words miss: 开不开, 有人没, 找谁, 是…还是
_ASKS = re.compile(
    r"吗|呢|[？?]|怎么|怎样|如何|什么|啥|多少|哪|几|是否|咋|谁|(.)不\1|有没有|没有?$|不$|是.{1,12}还是"
    r"|可以.{0,8}吗|能否|真的假的|是不是真的|靠谱吗"
)
_UNKNOWING = re.compile(r"不(知道|晓得|清楚|懂)[^，。,；;！!？?\s]*")  # "不知道叫到哪" tells, it does not ask
# asked of no one: "…让我等一个礼拜 什么意思啊", "…让我下礼拜再来 耍人呢"
_RHETORICAL = re.compile(r"什么意思|耍(人|我)(呢|吗)?|搞什么(名堂|鬼)?|凭什么|有没有搞错|像话吗")


def _examples(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
        if "intent" in block:
            lines = str(block.get("examples", "")).splitlines()
            texts = [_ANNOTATION.sub(r"\1", line[2:].strip()) for line in lines if line.startswith("- ")]
            out.setdefault(block["intent"], []).extend(texts)
    return out


@cache
def _model() -> NaiveBayes:
    rows = [Labelled(r.description, "grievance", r.kind) for r in training_data() if r.kind != "help"]
    for path in sorted(DIALOGUE_DATA.glob("nlu*.yml")):
        for intent, texts in _examples(path).items():
            if intent == "complain":
                rows += [Labelled(t, "grievance", "") for t in texts]
            elif intent in _QUESTION_INTENTS or path.name != "nlu.yml":
                rows += [Labelled(t, "question", "") for t in texts]
    return NaiveBayes(rows)


def warm_up() -> None:
    """Build the model now (about 0.2 s), not on the first citizen's message."""
    _model()


def grievance_odds(text: str) -> float:
    """Log-odds that ``text`` tells of a grievance rather than asks a question."""
    scores = _model().log_scores(text)
    return scores["grievance"] - scores["question"]


def asks(text: str) -> bool:
    """The message asks something, in any of the forms a question takes (开不开, 是…还是, 真的假的), not
    counting what the citizen says they do not know ("不知道叫到哪")."""
    return bool(_ASKS.search(normalize(_RHETORICAL.sub("", _UNKNOWING.sub("", text)))))


def tells_of_a_grievance(text: str) -> bool:
    """The message tells of something wrong at the center (see the module's docstring)."""
    odds = grievance_odds(text) if len(text.strip()) >= 8 else 0.0
    if odds <= THRESHOLD:
        return False
    words, center = has_complaint_words(text), about_the_center(text)
    cues = cue_strength(text) >= 3
    if not asks(text):
        return odds > SURE or words or center or cues
    # a question, perhaps rhetorical ("这钱交哪去了？", "这叫为人民服务？")
    return (words and center) or (odds > SURE_ASKING and (words or center or cues))
