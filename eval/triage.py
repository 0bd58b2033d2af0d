"""Complaint triage accuracy (``bot.domains.complaints.classify``).

    python -m eval.triage [--failures]

Prints the five-fold cross-validation on the training descriptions
(``bot/domains/complaints/data/triage_train_*.tsv``) and the accuracy on ``eval/triage_holdout.tsv``: 149
descriptions written later by someone who saw neither the cues nor the training data, never trained on —
the figure to report.  (History: the cue-only first version scored 65% category / 82% kind on it.)
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bot.domains.complaints.classify import Labelled, classify, cross_validate, load_labelled, training_data

HOLDOUT = Path(__file__).resolve().parent / "triage_holdout.tsv"
GOALS = {"category": 0.90, "kind": 0.95}


@dataclass
class TriageResult:
    rows: int = 0
    category: float = 0.0
    kind: float = 0.0
    other_used: int = 0
    failures: list[str] = field(default_factory=list)


def evaluate(rows: list[Labelled]) -> TriageResult:
    res = TriageResult(rows=len(rows))
    category_ok = kind_ok = 0
    for row in rows:
        got = classify(row.description)
        category_ok += got.category == row.category
        kind_ok += got.kind.value == row.kind
        res.other_used += got.category == "other"
        if got.category != row.category or got.kind.value != row.kind:
            got_label = f"{got.category}/{got.kind.value}"
            res.failures.append(f"{row.category}/{row.kind} → {got_label}  {row.description}")
    n = max(1, len(rows))
    res.category, res.kind = category_ok / n, kind_ok / n
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="list the held-out rows it got wrong")
    args = parser.parse_args(argv)
    rows = training_data()
    random.Random(7).shuffle(rows)
    category, kind = cross_validate(rows)
    figures = f"category {category:.1%}  kind {kind:.1%}"
    print(f"training, 5-fold cross-validation: {len(rows)} descriptions  {figures}")
    res = evaluate(load_labelled(HOLDOUT))
    print(
        f"held out: {res.rows} descriptions  category {res.category:.1%}  kind {res.kind:.1%}  "
        f"(goals {GOALS['category']:.0%} / {GOALS['kind']:.0%})  其他 chosen {res.other_used}"
    )
    if args.failures:
        for line in res.failures:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
