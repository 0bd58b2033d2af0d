"""Public services the center does not handle, and where citizens go for them instead.

Citizens ask the center about whatever is public business: a driving licence (the traffic police), a lawsuit
(the court), a trademark.  Retrieval alone answers such a question with the nearest catalogue item —
二手车过户 with 二手房转移登记 — which is wrong and wastes a trip.  ``data/elsewhere.tsv`` lists those
services with the office that handles them (staff edit it like the aliases); a question that matches one and
names none of the catalogue's own items is told where to go, with the center's phone — unless the catalogue
answers it directly and either names the item ("新生儿落户要带疫苗接种本吗") or speaks of the
matched words somewhere ("二手房过户要带银行卡吗"); "二手车过户", answered with 二手房, is another
office's: the catalogue never says 二手车.  An entry marked ``always`` goes elsewhere even then: a lawsuit
about a divorce is the court's, however well the catalogue answers 离婚.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ELSEWHERE_FILE = Path(__file__).resolve().parent / "data" / "elsewhere.tsv"


@dataclass(frozen=True)
class Elsewhere:
    pattern: re.Pattern[str]
    where: str
    always: bool = False  # even when the catalogue answers the question and speaks of the words


@dataclass(frozen=True)
class Diversion:
    where: str
    words: list[str]  # the words of the question that said so
    always: bool


def read_elsewhere(path: Path = ELSEWHERE_FILE) -> list[Elsewhere]:
    """The entries of ``path`` (comment lines start with #; the first other line is the header; a third
    column ``always`` marks an entry that goes elsewhere even when the catalogue answers the question)."""
    entries: list[Elsewhere] = []
    lines = [
        ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")
    ]
    for n, line in enumerate(lines[1:], start=2):
        pattern, sep, rest = line.partition("\t")
        where, _, flag = rest.partition("\t")
        if not sep or not pattern.strip() or not where.strip():
            raise ValueError(f"{path.name}: entry {n} needs a pattern, a tab and where to go: {line!r}")
        if flag.strip() not in ("", "always"):
            raise ValueError(f"{path.name}: entry {n}: the third column is empty or 'always': {line!r}")
        entries.append(Elsewhere(re.compile(pattern.strip()), where.strip(), flag.strip() == "always"))
    return entries


@lru_cache(maxsize=1)
def default_elsewhere() -> tuple[Elsewhere, ...]:
    return tuple(read_elsewhere())


def where_else(
    text: str,
    names: Sequence[tuple[int, int]] = (),
    entries: Sequence[Elsewhere] | None = None,
) -> Diversion | None:
    """Where to go for the service ``text`` (normalised, without spaces) asks about when it is another
    office's, with the words that said so; else None.  ``names``: the spans of catalogue names and aliases in
    ``text`` — a match inside one (驾驶证 in the alias 网约车驾驶证) is the catalogue's own item."""
    for entry in default_elsewhere() if entries is None else entries:
        words = [
            m.group()
            for m in entry.pattern.finditer(text)
            if not any(start <= m.start() and m.end() <= end for start, end in names)
        ]
        if words:
            return Diversion(entry.where, words, entry.always)
    return None
