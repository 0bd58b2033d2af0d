"""Retrieval over the catalogue: which 事项 is a citizen's question about?

Pipeline for a question (all steps are pure Python and in-memory; the index is rebuilt when the catalogue
version changes):

1. Normalise (:func:`knowledge_base.textproc.normalize_text`: NFKC incl. full-width digits, Traditional →
   Simplified, lower case, punctuation noise removed, canonical spellings), then correct homophone typos
   against the catalogue vocabulary (公基金 → 公积金, 身份正 → 身份证: a span that is not a word itself, has
   the same pinyin as a catalogue term and shares at least one character with it).
2. Detect the aspects asked about (``aspects.py``); cue words are not used for retrieval.
3. Score every item with three signals, each a *coverage* in [0, 1] (the share of the question's weighted
   content that the item matches, so scores are comparable across questions and can be thresholded):
   - **word**: BM25F over jieba tokens (private tokenizer + user dictionary of names, departments, aliases
     and synonym terms; for-search sub-words too) of the fields name, name variants, aliases, FAQ questions,
     department, window and conditions; each question word is a *group* with its curated synonyms
     (``synonyms.EXPANSIONS``) and sub-words, scored as the best member;
   - **ngram**: BM25F over character bigrams of the same fields, each bigram grouped with its pinyin bigram
     (robust to segmentation errors, unknown words and homophone typos);
   - **exact**: the question contains an item's name, a name variant (the parts of 出生登记（新生儿落户）) or
     an alias, weighted by how much of the question's content it covers.
4. Fuse: ``W_WORD*word + W_NGRAM*ngram + W_EXACT*exact``.  :meth:`SearchIndex.decide` answers only when the
   top score passes :attr:`SearchParams.answer_threshold` and beats the second by :attr:`SearchParams.margin`;
   otherwise it offers numbered choices (scores above :attr:`SearchParams.choice_threshold`) or reports
   not-found.  Thresholds were calibrated on ``eval/questions.tsv`` (see ``eval/run_eval.py``).

The text features both sides share (name variants, sub-words, bigrams and their pinyin, the home county)
are pure functions in ``features.py``.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from knowledge_base.aspects import cue_spans, order_aspects
from knowledge_base.features import (
    COMPLEMENT,
    SYN_KEYS_BY_LEN,
    SYN_PHRASES,
    bigrams,
    field_features,
    home_place,
    name_variants,
    pinyin_bigram,
    subwords,
)
from knowledge_base.schema import GuideItem
from knowledge_base.synonyms import EXPANSION_WEIGHT, EXPANSIONS, REWRITES, STOPWORDS
from knowledge_base.textproc import (
    add_user_words,
    apply_rewrites,
    area_names,
    compact,
    cut,
    has_word,
    is_cjk,
    non_topical,
    normalize_text,
    pinyin_of,
)

Decision = Literal["answer", "choices", "not_found"]

# Field weights of the BM25F document (how much a match in each field counts).
FIELD_WEIGHTS: dict[str, float] = {
    "name": 3.0,
    "variant": 2.0,
    "alias": 2.5,
    "faq": 1.0,
    "department": 0.6,
    "window": 0.6,
    "conditions": 0.25,
}
# Action words (lost / replace / new / cancel …): they refine WHICH variant of a service is meant but never
# identify a service on their own.
ACTION_KEYS: frozenset[str] = frozenset(
    """丢了 丢失 掉了 弄丢 不见了 找不到 被偷 遗失 补办 补 补个 重办 坏了 损坏 破损 过期 到期 快到期
    失效 换 换证 换新 更换 续期 延期 第一次 头一次 初次 新办 不干了 不开了 不做了 关门 关店 倒闭
    停业 改名 改名字 改 变了 搬家 搬迁 取出来 取钱 提钱 转移 外省
    """.split()
)
# Items whose name has a qualifier (补领, 换领, 注销, 变更 …) are the less likely reading of a
# question that does not mention that kind of action: 营业执照怎么办 is about getting one, not
# replacing a lost one.
QUALIFIERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # class: (name markers, question cues)
    "lost": (
        ("补领", "补发", "补换", "补证", "遗失"),
        ("丢", "掉", "遗失", "补", "不见", "找不到", "被偷", "没了"),
    ),
    "renew": (("换领", "换发", "延续", "补换"), ("换", "过期", "到期", "延续", "续", "失效", "坏", "旧")),
    "cancel": (
        ("注销",),
        (
            "注销",
            "不干",
            "不开",
            "不做",
            "关门",
            "关店",
            "倒闭",
            "停业",
            "销户",
            "去世",
            "死亡",
            "过世",
            "解押",
            "撤押",
            "解除抵押",
            "还清",
            "还完",
        ),
    ),
    "change": (("变更", "更名", "过户"), ("变更", "改", "变", "搬", "更名", "过户", "转让", "迁", "换")),
}
# Long free-text fields take part in word matching only (their character n-grams are mostly noise).
_NO_NGRAM_FIELDS = frozenset({"conditions"})
_SYN_MAX_TOKENS = 3
_NAME_COVERAGE_TOP = 30
_RANKED_TOP = 50
_PHRASE = "§"  # prefix of phrase features (synonym keys and targets matched as substrings)


@dataclass(frozen=True)
class SearchParams:
    k1: float = 1.2
    b: float = 0.3
    w_word: float = 0.45
    w_ngram: float = 0.30
    w_exact: float = 0.25
    w_name: float = 0.10  # share of the item's own name that the question (with synonyms) mentions
    oov_factor: float = 0.4  # weight of a question word the catalogue never uses (lowers coverage)
    subword_weight: float = 0.7
    action_weight: float = 0.5  # action words (丢了, 换 …) count half: they refine, the subject identifies
    qualifier_penalty: float = 0.88  # 补领/换领/注销/变更 items when the question has no such action …
    qualifier_bonus: float = 1.06  # … and when it has one
    pinyin_weight: float = 0.8
    answer_threshold: float = 0.40  # answer when the top item scores this much and leads by `margin` …
    margin: float = 0.06
    clear_threshold: float = 0.28  # … or scores this much and the second has at most `clear_ratio` of it
    clear_ratio: float = 0.6
    choice_threshold: float = 0.22  # below this: not found
    foreign_share: float = 0.45  # not found when this share of the question's weight is foreign …
    foreign_min_score: float = 0.45  # … or half its subject words are and the top item scores below this
    choice_window: float = 0.15
    max_choices: int = 4


@dataclass(frozen=True)
class SearchHit:
    code: str
    name: str
    department: str
    score: float
    aspect: str | None = None


@dataclass
class QueryAnalysis:
    question: str
    text: str  # normalised and typo-corrected
    aspects: list[str]
    content_tokens: list[str]  # retrieval words (no stop words, no aspect cues)
    subject_tokens: list[str]  # content words that are not action words (丢了, 换, 注销 …)
    unmatched: float = 0.0  # share of the question's word weight that the catalogue never uses
    exact: bool = False  # the question contains an item name or alias
    expanded: list[str] = field(default_factory=list)  # official terms the question's colloquial words map to
    foreign: float = 0.0  # share of the question's subject words that the catalogue never uses

    @property
    def aspect(self) -> str | None:
        return self.aspects[0] if self.aspects else None

    @property
    def has_content(self) -> bool:
        return bool(self.content_tokens)


@dataclass
class SearchResult:
    query: QueryAnalysis
    hits: list[SearchHit]
    decision: Decision
    choices: list[SearchHit] = field(default_factory=list)
    subject_matched: bool = False

    @property
    def top(self) -> SearchHit | None:
        return self.hits[0] if self.hits else None


# ------------------------------------------------------------------------------------------- helpers

# What is done to a service, as item names say it: among numbered choices, the items whose name says what
# the question asks to do come first ("小卖部不开了，执照怎么注销": 个体工商户注销登记 before its 设立登记).
_ACTIONS = (
    "注销", "变更", "延续", "补领", "补证", "换领", "换发", "迁出", "迁入", "转移", "抵押", "设立", "新办",
)  # fmt: skip


def action_first(choices: list[SearchHit], asked: str) -> list[SearchHit]:
    wanted = [a for a in _ACTIONS if a in asked]
    if not wanted:
        return choices
    doing = [h for h in choices if any(a in h.name for a in wanted)]
    return doing + [h for h in choices if h not in doing] if doing else choices


class _Field:
    __slots__ = ("ngram_len", "ngrams", "phrases", "word_len", "words")

    def __init__(self) -> None:
        self.words: dict[str, float] = defaultdict(float)
        self.ngrams: dict[str, float] = defaultdict(float)
        self.phrases: dict[str, float] = defaultdict(float)
        self.word_len = 0.0
        self.ngram_len = 0.0


# ------------------------------------------------------------------------------------------- the index


# Grammatical particles: a sound-alike that shares only these with a term is no typo of it.
_PARTICLES = frozenset("的了地得着过个是在吗呢吧啊呀么")


class SearchIndex:
    """In-memory index of one catalogue version."""

    def __init__(
        self,
        items: Sequence[GuideItem],
        aliases: Iterable[tuple[str, str]] = (),
        *,
        version: int = 0,
        params: SearchParams | None = None,
    ) -> None:
        self.params = params or SearchParams()
        self.version = version
        self.items: dict[str, GuideItem] = {it.code: it for it in items}
        self.codes: list[str] = [it.code for it in items]
        self.aliases: dict[str, list[str]] = defaultdict(list)
        for alias, code in aliases:
            if code in self.items:
                self.aliases[code].append(alias)
        self._full_text: str | None = None
        non_topical("")  # jieba's tag tables load here (a worker thread), not at the first question
        self._register_words()
        # the county, and every province, city or district the catalogue itself names (江西省, 赣州市)
        self._home = home_place(it.department for it in items) | frozenset(
            area_names(" ".join(f"{it.department} {it.location} {it.legal_basis}" for it in items))
        )
        self._build()

    # -- build ------------------------------------------------------------------------------------

    def _register_words(self) -> None:
        words: set[str] = set()
        for it in self.items.values():
            for text in (it.name, *name_variants(it.name), it.department, *self.aliases.get(it.code, ())):
                for part in re.split(r"[\s（）()/、“”\"，,；;·]+", normalize_text(text)):
                    if 2 <= len(part) <= 16:
                        words.add(part)
            dept = normalize_text(it.department)
            words.update(p for p in re.findall(r"[\u4e00-\u9fff]{2,12}", dept))
        words.update(k for k in EXPANSIONS if len(k) >= 2)
        words.update(t for ts in EXPANSIONS.values() for t in ts)
        words.update(REWRITES.values())
        add_user_words(sorted(words))

    def _fields_of(self, it: GuideItem) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = [("name", it.name)]
        fields += [("variant", v) for v in name_variants(it.name)]
        fields += [("alias", a) for a in self.aliases.get(it.code, ())]
        fields += [("faq", f.question) for f in it.faq_list]
        fields += [("department", it.department), ("window", it.window), ("conditions", it.conditions)]
        return fields

    def _build(self) -> None:
        p = self.params
        n_docs = max(1, len(self.codes))
        doc_words: list[dict[str, float]] = []
        doc_ngrams: list[dict[str, float]] = []
        word_lens: list[float] = []
        ngram_lens: list[float] = []
        exact: dict[str, dict[str, float]] = defaultdict(dict)  # compact string -> code -> weight
        names: list[str] = []
        self._vocab_terms: set[str] = set()
        for code in self.codes:
            it = self.items[code]
            words: dict[str, float] = defaultdict(float)
            ngrams: dict[str, float] = defaultdict(float)
            wl = nl = 0.0
            for fname, text in self._fields_of(it):
                if not text:
                    continue
                w = FIELD_WEIGHTS[fname]
                fw, fn, phrases, cmp_text = field_features(text)
                for t in fw:
                    words[t] += w
                for phrase, count in phrases:
                    words[_PHRASE + phrase] += w * count
                wl += w * len(fw)
                if fname not in _NO_NGRAM_FIELDS:
                    for g in fn:
                        ngrams[g] += w
                    nl += w * len(fn)
                if fname in ("name", "variant", "alias"):
                    weight = {"name": 1.0, "variant": 0.9, "alias": 1.0}[fname]
                    if len(cmp_text) >= 2:
                        prev = exact[cmp_text].get(code, 0.0)
                        exact[cmp_text][code] = max(prev, weight)
                    names.append(cmp_text)
                    self._vocab_terms.update(t for t in fw if len(t) >= 2)
            doc_words.append(words)
            doc_ngrams.append(ngrams)
            word_lens.append(wl)
            ngram_lens.append(nl)
        self._names_blob = "|".join(names) + "|" + "|".join(SYN_PHRASES)
        self._exact = exact
        self._exact_by_prefix: dict[str, list[str]] = defaultdict(list)
        for s in exact:
            self._exact_by_prefix[s[:2]].append(s)
        self._word_post, self._word_idf = self._postings(doc_words, word_lens, n_docs, p)
        self._ngram_post, self._ngram_idf = self._postings(doc_ngrams, ngram_lens, n_docs, p)
        self._idf0 = math.log(1 + (n_docs + 0.5) / 0.5)
        # Features in a large share of a big catalogue (登记, 申请 …) carry little weight but cost the most to
        # score: above this document frequency they count in the denominator only.  Never prunes a catalogue
        # of up to 2,000 items.
        self._max_df = max(200, n_docs // 10)
        w_name = FIELD_WEIGHTS["name"]
        self._sat_ideal = w_name * (p.k1 + 1) / (w_name + p.k1)
        self._build_pinyin_terms()
        self._name_bigrams: dict[str, frozenset[str]] = {}
        for code in self.codes:
            base = compact(re.sub(r"[（(][^）)]*[）)]", "", self.items[code].name))
            self._name_bigrams[code] = frozenset(base[i : i + 2] for i in range(len(base) - 1))
        self._qualifiers: dict[str, tuple[str, ...]] = {
            code: tuple(
                cls
                for cls, (markers, _cues) in QUALIFIERS.items()
                if any(m in self.items[code].name for m in markers)
            )
            for code in self.codes
        }

    @staticmethod
    def _postings(
        docs: list[dict[str, float]], lens: list[float], n_docs: int, p: SearchParams
    ) -> tuple[dict[str, list[tuple[int, float]]], dict[str, float]]:
        avg = (sum(lens) / len(lens)) if lens else 1.0
        avg = avg or 1.0
        post: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for d, feats in enumerate(docs):
            norm = p.k1 * (1 - p.b + p.b * (lens[d] / avg))
            for f, tf in feats.items():
                post[f].append((d, tf * (p.k1 + 1) / (tf + norm)))
        idf = {f: math.log(1 + (n_docs - len(pl) + 0.5) / (len(pl) + 0.5)) for f, pl in post.items()}
        return dict(post), idf

    def _build_pinyin_terms(self) -> None:
        terms: set[str] = set(self._vocab_terms)
        terms.update(k for k in EXPANSIONS if len(k) >= 2)
        terms.update(t for ts in EXPANSIONS.values() for t in ts)
        terms.update(REWRITES)
        terms.update(REWRITES.values())
        table: dict[tuple[str, ...], str] = {}
        for t in sorted(terms):
            if 2 <= len(t) <= 6 and all(is_cjk(c) for c in t):
                table.setdefault(tuple(pinyin_of(c) for c in t), t)
        self._pinyin_terms = table
        self._pinyin_lens = sorted({len(k) for k in table}, reverse=True)

    # -- query analysis ---------------------------------------------------------------------------

    def correct_typos(self, text: str) -> str:
        """Replace non-word spans that sound like a catalogue term (same pinyin, ≥1 shared character)."""
        if not self._pinyin_terms or not text:
            return text
        py = [pinyin_of(c) for c in text]
        # Spans may not cut through a known word of 3+ characters (税务局报到 is not 税务 + 举报 + 到), nor
        # through a catalogue word of two (办离婚 is not 办理 + 婚).
        blocked: set[tuple[int, int]] = set()
        pos = 0
        for tok in cut(text):
            start = text.find(tok, pos)
            start = pos if start < 0 else start
            pos = start + len(tok)
            if (len(tok) >= 3 and has_word(tok)) or (
                len(tok) == 2 and (tok in self._word_idf or tok in EXPANSIONS)
            ):
                blocked.add((start, pos))
        out: list[str] = []
        i = 0
        n = len(text)
        changed = False
        while i < n:
            replaced = False
            if is_cjk(text[i]):
                for length in self._pinyin_lens:
                    if i + length > n:
                        continue
                    term = self._pinyin_terms.get(tuple(py[i : i + length]))
                    if term is None:
                        continue
                    span = text[i : i + length]
                    if span == term:
                        out.append(span)
                        i += length
                        replaced = True
                        break
                    diff = sum(1 for a, b in zip(span, term, strict=True) if a != b)
                    cuts = any(s < i < e or s < i + length < e for s, e in blocked)
                    shared = {a for a, b in zip(span, term, strict=True) if a == b}
                    if (
                        diff < length
                        and not shared <= _PARTICLES  # "写一首秋天的诗" shares only 的 with 的士
                        and diff <= max(1, length // 3)
                        and not has_word(span)
                        and span not in self._names_blob
                        and not cuts
                    ):
                        out.append(term)
                        i += length
                        replaced = changed = True
                        break
            if not replaced:
                out.append(text[i])
                i += 1
        return apply_rewrites("".join(out)) if changed else text

    def analyze(
        self, question: str
    ) -> tuple[QueryAnalysis, list[list[tuple[str, float]]], list[bool], list[list[tuple[str, float]]]]:
        text = COMPLEMENT.sub(r"\1", self.correct_typos(normalize_text(question)))
        spans = cue_spans(text, self._names_blob)
        aspects = order_aspects(self._resolve(spans), text)
        cue_mask = [False] * len(text)
        for s, e, _a in spans:
            for k in range(s, e):
                cue_mask[k] = True
        tokens = cut(text)
        # Token positions, to drop tokens that are (mostly) aspect cues.
        kept: list[str] = []
        pos = 0
        for tok in tokens:
            start = text.find(tok, pos)
            if start < 0:
                start = pos
            end = start + len(tok)
            pos = end
            if tok in STOPWORDS or all(cue_mask[start:end]) or self._filler(tok):
                kept.append("")  # run boundary
            else:
                kept.append(tok)
        word_groups: list[list[tuple[str, float]]] = []
        group_is_action: list[bool] = []
        expanded: list[str] = []
        foreign_tokens: list[str] = []
        content: list[str] = []
        subject: list[str] = []
        i = 0
        while i < len(kept):
            tok = kept[i]
            if not tok:
                i += 1
                continue
            matched = False
            for span_len in range(min(_SYN_MAX_TOKENS, len(kept) - i), 0, -1):
                parts = kept[i : i + span_len]
                if not all(parts):
                    continue
                key = "".join(parts)
                if key in EXPANSIONS:
                    expanded.extend(EXPANSIONS[key])
                    group = [(_PHRASE + key, 1.0)]
                    group += [(_PHRASE + t, EXPANSION_WEIGHT) for t in EXPANSIONS[key]]
                    if key in self._word_idf:
                        group.append((key, 1.0))
                    word_groups.append(group)
                    group_is_action.append(key in ACTION_KEYS)
                    content.append(key)
                    if key not in ACTION_KEYS:
                        subject.append(key)
                    i += span_len
                    matched = True
                    break
            if matched:
                continue
            inner = self._inner_key(tok)
            if len(tok) >= 2 and inner is None and tok not in self._word_idf and not self._covered(tok):
                foreign_tokens.append(tok)
            if inner is not None:  # 自由职业者 → 自由职业, 开农家乐饭店 → 饭店
                expanded.extend(EXPANSIONS[inner])
                group = [(_PHRASE + inner, 1.0)] + [
                    (_PHRASE + t, EXPANSION_WEIGHT) for t in EXPANSIONS[inner]
                ]
                word_groups.append(group)
                group_is_action.append(inner in ACTION_KEYS)
                content.append(tok)
                if inner not in ACTION_KEYS:
                    subject.append(tok)
            elif len(tok) >= 2 or (is_cjk(tok) and tok in self._word_idf):
                subs = subwords(tok)
                if tok in self._word_idf or not subs:
                    group = [(tok, 1.0 if len(tok) >= 2 else 0.6)]
                    group += [(s, self.params.subword_weight) for s in subs]
                    word_groups.append(group)
                    group_is_action.append(False)
                else:  # unknown compound: its known parts are separate words
                    for part in dict.fromkeys(x for x in subs if x not in STOPWORDS):
                        word_groups.append([(part, 1.0)])
                        group_is_action.append(False)
                content.append(tok)
                subject.append(tok)
            i += 1
        runs: list[str] = []
        run = ""
        for tok in kept:
            if tok:
                run += tok
            elif run:
                runs.append(run)
                run = ""
        if run:
            runs.append(run)
        ngram_groups: list[list[tuple[str, float]]] = []
        for r in runs:
            for bg in bigrams(r):
                group = [("c:" + bg, 1.0)]
                py = pinyin_bigram(bg)
                if py:
                    group.append((py, self.params.pinyin_weight))
                ngram_groups.append(group)
        n_subject = sum(1 for t in subject if len(t) >= 2)
        foreign_share = len(foreign_tokens) / n_subject if n_subject else 0.0
        qa = QueryAnalysis(
            question, text, aspects, content, subject, expanded=expanded, foreign=foreign_share
        )
        return qa, word_groups, group_is_action, ngram_groups

    def _covered(self, token: str) -> bool:
        """Every character of an unknown compound lies in a catalogue word inside it ("动物防疫条件合格证":
        动物, 防疫, 条件, 合格证): not a word foreign to the catalogue, only one it never wrote together."""
        covered = [False] * len(token)
        for n in (2, 3):
            for i in range(len(token) - n + 1):
                if token[i : i + n] in self._word_idf:
                    covered[i : i + n] = [True] * n
        return len(token) > 2 and all(covered)

    def mentions_anywhere(self, word: str) -> bool:
        """Some item's text (any field: papers, conditions, steps, Q&A …) has ``word`` in it."""
        if self._full_text is None:
            self._full_text = "\n".join(
                normalize_text(" ".join(str(v) for v in vars(item).values())) for item in self.items.values()
            )
        return word in self._full_text

    @property
    def home(self) -> frozenset[str]:
        """The county the catalogue serves, as citizens write it (信丰, 信丰县 …)."""
        return self._home

    def names_a_service(self, qa: QueryAnalysis) -> bool:
        """The question holds a word that narrows the catalogue down to a few items (仲裁, 烟草证, 过户 — not
        登记 or 申请, which most items share), or a colloquial term the synonyms know."""
        few = max(3, len(self.codes) // 20)
        return any(t in EXPANSIONS or 0 < len(self._word_post.get(t, ())) <= few for t in qa.subject_tokens)

    def _filler(self, tok: str) -> bool:
        """A word the catalogue never uses and that names no service (a person, a time, a filler): it is
        neither matched nor counted as a foreign word."""
        if tok in self._home:
            return True
        return tok not in self._word_idf and tok not in EXPANSIONS and non_topical(tok)

    def _inner_key(self, tok: str) -> str | None:
        """The longest synonym key inside a word the catalogue does not use (None if known or no key)."""
        if len(tok) < 3 or tok in self._word_idf:
            return None
        best: str | None = None
        for key in SYN_KEYS_BY_LEN:
            if len(key) < len(tok) and key in tok:
                best = key
                break
        return best

    @staticmethod
    def _resolve(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        spans = sorted(spans, key=lambda m: (-(m[1] - m[0]), m[0]))
        taken: list[tuple[int, int, str]] = []
        for s, e, a in spans:
            if all(e <= ts or s >= te for ts, te, _ in taken):
                taken.append((s, e, a))
        return taken

    # -- scoring ----------------------------------------------------------------------------------

    def _coverage(
        self,
        groups: list[list[tuple[str, float]]],
        post: dict[str, list[tuple[int, float]]],
        idf: dict[str, float],
        track: list[bool] | None = None,
    ) -> tuple[dict[int, float], dict[int, float], float]:
        """Per document: matched share of the groups' weight, and the share matched by non-action groups;
        plus the share of the groups' weight that no document matches at all (words foreign to the catalogue).
        """
        scores: dict[int, float] = defaultdict(float)
        subject: dict[int, float] = defaultdict(float)
        total = 0.0
        unmatched = 0.0
        sat = self._sat_ideal
        oov = self._idf0 * self.params.oov_factor
        for gi, group in enumerate(groups):
            is_action = track[gi] if track is not None else False
            best_weight = 0.0
            for feat, w in group:
                f_idf = idf.get(feat)
                best_weight = max(best_weight, w * (f_idf if f_idf is not None else oov))
            if is_action:
                best_weight *= self.params.action_weight
            if best_weight <= 0:
                continue
            cap = best_weight * sat
            total += cap
            per_doc: dict[int, float] = {}
            for feat, w in group:
                pl = post.get(feat)
                if not pl or len(pl) > self._max_df:
                    continue
                wi = w * idf[feat] * (self.params.action_weight if is_action else 1.0)
                for d, s in pl:
                    v = wi * s
                    if v > per_doc.get(d, 0.0):
                        per_doc[d] = v
            if not per_doc:
                unmatched += cap
            for d, v in per_doc.items():
                v = min(v, cap)
                scores[d] += v
                if not is_action:
                    subject[d] += v
        if total <= 0:
            return {}, {}, 0.0
        return (
            {d: v / total for d, v in scores.items()},
            {d: v / total for d, v in subject.items()},
            unmatched / total,
        )

    def _names_in(self, text: str) -> list[tuple[int, int, str]]:
        """Every item name, name variant or alias in ``text`` (normalised; spaces dropped), with its span."""
        cmp_text = text.replace(" ", "")
        return [
            (i, i + len(word), word)
            for i in range(len(cmp_text) - 1)
            for word in self._exact_by_prefix.get(cmp_text[i : i + 2], ())
            if cmp_text.startswith(word, i)
        ]

    def names_spans(self, text: str) -> list[tuple[int, int]]:
        """Where ``text`` (normalised, without spaces) holds an item's name, a name variant or an alias."""
        return [(s, e) for s, e, _word in self._names_in(text)]

    def _exact_scores(self, text: str, content_len: int) -> dict[str, float]:
        found = self._names_in(text)
        if not found:
            return {}
        # Keep maximal matches only (a match inside a longer one is not evidence of its own).
        maximal = [m for m in found if not any(o[0] <= m[0] and m[1] <= o[1] and o != m for o in found)]
        out: dict[str, float] = {}
        denom = max(content_len, 2)
        for s, e, string in maximal:
            cover = min(1.0, (e - s) / denom)
            for code, weight in self._exact[string].items():
                out[code] = max(out.get(code, 0.0), weight * cover)
        return out

    def score(self, question: str) -> tuple[QueryAnalysis, list[tuple[str, float]], dict[str, float]]:
        """The best-scoring items (at most 50), best first, plus per-item subject coverage."""
        qa, word_groups, is_action, ngram_groups = self.analyze(question)
        p = self.params
        word, word_subject, unmatched = self._coverage(
            word_groups, self._word_post, self._word_idf, is_action
        )
        qa.unmatched = unmatched
        ngram, _, _ = self._coverage(ngram_groups, self._ngram_post, self._ngram_idf)
        content_len = sum(len(t) for t in qa.content_tokens)
        exact = self._exact_scores(qa.text, content_len) if qa.content_tokens else {}
        qa.exact = bool(exact)
        combined: dict[str, float] = defaultdict(float)
        subject: dict[str, float] = {}
        for d, v in word.items():
            combined[self.codes[d]] += p.w_word * v
        for d, v in word_subject.items():
            subject[self.codes[d]] = v
        for d, v in ngram.items():
            combined[self.codes[d]] += p.w_ngram * v
        for code, v in exact.items():
            combined[code] += p.w_exact * v
            subject[code] = max(subject.get(code, 0.0), v)
        # Name coverage: how much of the item's own name the question mentions (directly or via synonyms) —
        # 身份证到期了怎么换 covers more of 居民身份证换领 than of 临时居民身份证申领.
        mentioned = qa.text.replace(" ", "")
        q_bigrams = {mentioned[i : i + 2] for i in range(len(mentioned) - 1)}
        for phrase in qa.expanded:
            q_bigrams.update(phrase[i : i + 2] for i in range(len(phrase) - 1))
        for code in heapq.nlargest(_NAME_COVERAGE_TOP, combined, key=combined.__getitem__):
            nb = self._name_bigrams.get(code)
            if nb:
                combined[code] += p.w_name * len(nb & q_bigrams) / len(nb)
        asked = {cls for cls, (_markers, cues) in QUALIFIERS.items() if any(c in qa.text for c in cues)}
        for code in combined:
            classes = self._qualifiers.get(code)
            if classes:
                combined[code] *= p.qualifier_bonus if asked.intersection(classes) else p.qualifier_penalty
        ranked = heapq.nsmallest(_RANKED_TOP, combined.items(), key=lambda kv: (-kv[1], kv[0]))
        return qa, ranked, subject

    def search(self, question: str, limit: int = 10) -> SearchResult:
        qa, ranked, subject = self.score(question)
        hits = [self._hit(code, s, qa.aspect) for code, s in ranked[: max(limit, self.params.max_choices)]]
        top_subject = subject.get(hits[0].code, 0.0) > 0 if hits else False
        foreign = not qa.exact and (
            qa.unmatched >= self.params.foreign_share
            or (
                qa.foreign >= 0.5
                and (not hits or hits[0].score < self.params.foreign_min_score)
                and not (hits and self._names_part_of(qa, hits[0].code))
            )
        )
        decision, choices = self.decide(hits, subject_matched=top_subject, foreign=foreign)
        if decision == "choices":
            choices = action_first(choices, " ".join([qa.text, *qa.expanded]))
        return SearchResult(qa, hits[:limit], decision, choices, top_subject)

    def _names_part_of(self, qa: QueryAnalysis, code: str) -> bool:
        """The question's words make up half or more of the item's own name (就业创业证 of 就业创业证申领,
        退役军人 and 优待证 of 退役军人优待证申领): the words around them that the catalogue never uses
        (毕业证, 本人系) are the citizen's story, not another subject.  One word of a long name is not enough
        (残疾人 of 困难残疾人生活补贴和重度残疾人护理补贴 when 辅具 is asked)."""
        name = self.items[code].name.split("（")[0]
        said = sum(len(w) for w in set(qa.subject_tokens) if len(w) >= 2 and w in name)
        return said >= len(name) / 2

    def decide(
        self, hits: Sequence[SearchHit], *, subject_matched: bool = True, foreign: bool = False
    ) -> tuple[Decision, list[SearchHit]]:
        """answer / choices / not_found for ranked hits.

        ``subject_matched``: the top item matches more than action words; ``foreign``: a large part of the
        question is words the catalogue never uses (天气, 股票, 商标 …) and no name or alias matched.
        """
        p = self.params
        if not hits or not subject_matched or foreign or hits[0].score < p.choice_threshold:
            return "not_found", []
        top = hits[0].score
        second = hits[1].score if len(hits) > 1 else 0.0
        if (top >= p.answer_threshold and top - second >= p.margin) or (
            top >= p.clear_threshold and second <= p.clear_ratio * top
        ):
            return "answer", [hits[0]]
        floor = max(p.choice_threshold, top - p.choice_window)
        choices = [h for h in hits[: p.max_choices] if h.score >= floor]
        return "choices", choices

    def _hit(self, code: str, score: float, aspect: str | None) -> SearchHit:
        it = self.items[code]
        return SearchHit(
            code=code, name=it.name, department=it.department, score=round(score, 4), aspect=aspect
        )

    def item(self, code: str) -> GuideItem | None:
        return self.items.get(code)

    @property
    def names_blob(self) -> str:
        return self._names_blob
