"""Complaint triage accuracy on labelled descriptions.

    python -m eval.triage [--split dev|test|holdout|all] [--failures]

Prints, per split, how often the classifier (``bot.domains.complaints.classify``) picks the labelled
category and kind.  ``triage.tsv`` (dev and test halves) is what the cues were tuned on — its test half was
looked at once (63% category), then tuned on too; ``triage_holdout.tsv`` was written afterwards by someone
who saw neither the cues nor the first set, and is the figure to report.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.domains.complaints.classify import classify

TRIAGE = Path(__file__).resolve().parent / "triage.tsv"  # tuned on (its dev and test halves)
HOLDOUT = Path(__file__).resolve().parent / "triage_holdout.tsv"  # written later, never tuned on


@dataclass(frozen=True)
class Labelled:
    description: str
    category: str
    kind: str
    split: str


@dataclass
class TriageResult:
    rows: int = 0
    category: float = 0.0
    kind: float = 0.0
    other_used: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def load(path: Path = TRIAGE, split: str = "") -> list[Labelled]:
    """Rows of ``path`` (``description category kind [split]``); ``split`` names a file without one."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["description", "category", "kind"], lines[0]
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    return [Labelled(r[0], r[1], r[2], r[3] if len(r) > 3 else split) for r in rows]


def evaluate(rows: list[Labelled]) -> TriageResult:
    res = TriageResult(rows=len(rows))
    category_ok = kind_ok = 0
    for row in rows:
        got = classify(row.description)
        category_ok += got.category == row.category
        kind_ok += got.kind.value == row.kind
        res.other_used += got.category == "other"
        if got.category != row.category or got.kind.value != row.kind:
            res.confusion[(row.category, got.category)] += 1
            got_label = f"{got.category}/{got.kind.value}"
            res.failures.append(f"{row.category}/{row.kind} → {got_label}  {row.description}  {got.scores}")
    n = max(1, len(rows))
    res.category, res.kind = category_ok / n, kind_ok / n
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["dev", "test", "holdout", "all"], default="all")
    parser.add_argument("--failures", action="store_true")
    args = parser.parse_args(argv)
    rows = load() + load(HOLDOUT, "holdout")
    splits = ["dev", "test", "holdout"] if args.split == "all" else [args.split]
    for split in splits:
        res = evaluate([r for r in rows if r.split == split])
        print(
            f"{split}: {res.rows} descriptions  category {res.category:.1%}  kind {res.kind:.1%}  "
            f"其他 chosen {res.other_used}"
        )
        if args.failures:
            for line in res.failures:
                print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
