"""How catalogue texts and questions become search features.

Pure functions shared by the index (``search.py``) when it builds its fields and when it analyses a question:
an official name's parts that citizens use on their own, jieba's sub-words, character bigrams and their
pinyin, the synonym phrases found in a text, the county the catalogue serves, and a verb's direction
complement that hides the verb.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

from knowledge_base.synonyms import EXPANSIONS, STOPWORDS
from knowledge_base.textproc import compact, cut, has_word, is_cjk, normalize_text, pinyin_of


def name_variants(name: str) -> list[str]:
    """Parts of an official name that citizens use on their own: bracketed parts, "/" and "、" alternatives.

    A bracketed text is a variant as a whole (网吧, 新生儿落户); pieces of a list are variants only when they
    are long enough to name something on their own (初级中学 yes, 变更 / 小学 no).
    """
    out: list[str] = []
    base = re.sub(r"[（(][^）)]*[）)]", "", name).strip()
    if base and base != name:
        out.append(base)
    for inner in re.findall(r"[（(]([^）)]*)[）)]", name):
        parts = [p for p in re.split(r"[/、；;，,]", inner) if p]
        if len(parts) == 1:
            out.append(re.sub(r"^[含即]", "", parts[0]))
        else:
            out.extend(p for p in parts if len(p) >= 4)
    for part in re.split(r"[/、]", base):
        if part and part != base and len(part) >= 4:
            out.append(part)
    # "营业执照遗失补领/换发": the alternative after "/" keeps the subject of the first part.
    if "/" in base:
        head, _, tail = base.partition("/")
        stem = re.sub(r"(遗失|补领|补发|新办|换领|换发|申领|登记|注销|变更|设立)+$", "", head)
        if stem and stem != head:
            out.append(stem + tail)
    return [v for v in dict.fromkeys(v.strip() for v in out) if len(v) >= 2 and v != name]


# A verb's direction complement (迁过来, 转回去, 寄回来) adds nothing to what is asked and hides the verb.
COMPLEMENT = re.compile(r"([\u4e00-\u9fff])(?:过来|过去|回来|回去)(?=[^\u4e00-\u9fff]|[了吗呢的啊呀吧]|$)")


def home_place(departments: Iterable[str]) -> frozenset[str]:
    """The county the catalogue serves, as citizens write it ("信丰", "信丰县"): the place most departments'
    names begin with ("信丰县市场监督管理局").  Naming it says nothing about which service is asked."""
    starts: dict[str, int] = defaultdict(int)
    for dept in departments:
        m = re.match(r"([\u4e00-\u9fff]{1,4}?)(县|市|区|旗)", dept or "")
        if m:
            starts[m.group(1)] += 1
    if not starts:
        return frozenset()
    name = max(starts, key=starts.__getitem__)
    return frozenset({name, *(name + suffix for suffix in ("县", "市", "区", "旗", "人", "这边", "这里"))})


def subwords(token: str) -> list[str]:
    """jieba's for-search sub-words: dictionary 2- and 3-grams inside a longer token."""
    out: list[str] = []
    n = len(token)
    if n > 2:
        out += [token[i : i + 2] for i in range(n - 1) if has_word(token[i : i + 2])]
    if n > 3:
        out += [token[i : i + 3] for i in range(n - 2) if has_word(token[i : i + 3])]
    return out


def bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]


def pinyin_bigram(bigram: str) -> str | None:
    if all(is_cjk(c) for c in bigram):
        return "p:" + pinyin_of(bigram[0]) + " " + pinyin_of(bigram[1])
    return None


SYN_PHRASES: tuple[str, ...] = tuple(
    sorted({*EXPANSIONS, *(t for ts in EXPANSIONS.values() for t in ts)}, key=len, reverse=True)
)


SYN_KEYS_BY_LEN: tuple[str, ...] = tuple(
    sorted((k for k in EXPANSIONS if len(k) >= 2), key=len, reverse=True)
)


@lru_cache(maxsize=65536)
def field_features(text: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, int], ...], str]:
    """Cached (word features, n-gram features, synonym phrases with counts, compact text) of a catalogue text.

    Catalogue texts repeat a lot (departments, windows, office hours, shared conditions), so a rebuild after
    a re-import analyses each distinct text once.
    """
    words, ngrams = analyze_field(text)
    cmp_text = compact(text)
    phrases = tuple((ph, cmp_text.count(ph)) for ph in SYN_PHRASES if ph in cmp_text)
    return tuple(words), tuple(ngrams), phrases, cmp_text


def analyze_field(text: str) -> tuple[list[str], list[str]]:
    """(word features, n-gram features) of one catalogue text, tokenised like a question."""
    norm = normalize_text(text)
    tokens = cut(norm)
    words: list[str] = []
    runs: list[str] = []
    run = ""
    for tok in tokens:
        if tok in STOPWORDS or not tok.strip():
            if run:
                runs.append(run)
            run = ""
            continue
        run += tok
        if len(tok) >= 2 or is_cjk(tok):
            words.append(tok)
            words.extend(subwords(tok))
    if run:
        runs.append(run)
    ngrams: list[str] = []
    for r in runs:
        for bg in bigrams(r):
            ngrams.append("c:" + bg)
            py = pinyin_bigram(bg)
            if py:
                ngrams.append(py)
    return words, ngrams
