"""Text processing for retrieval: normalisation, a private jieba tokenizer, pinyin.

- :func:`normalize_text`: ``bot.core.textnorm.normalize`` (NFKC → full-width digits/letters folded,
  OpenCC t2s, whitespace) + lower case + punctuation/symbol noise → spaces + the canonical spelling
  rewrites of :data:`knowledge_base.synonyms.REWRITES` (户口本 → 户口簿, 身分证 → 身份证 …).
- :func:`tokenizer`: one private ``jieba.Tokenizer`` per process (jieba's module-level default is global state
  shared with every other user of jieba), initialised once under a lock; catalogue terms are added to it with
  :func:`add_user_words` whenever an index is built.
- :func:`pinyin_of`: toneless pinyin of a character from the shipped table ``data/pinyin.tsv`` (most common
  reading of each CJK character, generated with pypinyin), used for homophone-typo matching.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.textnorm import normalize
from knowledge_base.synonyms import PEOPLE_AND_FILLERS, REWRITES

if TYPE_CHECKING:
    import jieba

PINYIN_FILE = Path(__file__).resolve().parent / "data" / "pinyin.tsv"

_SPACES = re.compile(r"\s+")
_KEEP = {"+", "#"}  # symbols that carry meaning in short queries (C++ is unlikely, but "#" in codes is)


def _build_punct_table() -> dict[int, str]:
    table: dict[int, str] = {}
    # The BMP plus the emoji / pictograph planes (anything else passes through unchanged).
    for cp in (*range(0x10000), *range(0x1F000, 0x1FB00)):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        if (cat[0] in "PS" or cat in ("Zs", "Cc", "Cf")) and chr(cp) not in _KEEP:
            table[cp] = " "
    return table


_PUNCT_TABLE = _build_punct_table()
_REWRITE_RE = re.compile("|".join(re.escape(k) for k in sorted(REWRITES, key=len, reverse=True)))


def strip_punct(text: str) -> str:
    return _SPACES.sub(" ", text.translate(_PUNCT_TABLE)).strip()


def apply_rewrites(text: str) -> str:
    return _REWRITE_RE.sub(lambda m: REWRITES[m.group(0)], text)


@lru_cache(maxsize=4096)
def normalize_text(text: str) -> str:
    """Normalised form used for matching (both for the catalogue and for questions)."""
    return apply_rewrites(strip_punct(normalize(text).lower()))


def compact(text: str) -> str:
    """Normalised text without any spaces (for substring matching of names and aliases)."""
    return normalize_text(text).replace(" ", "")


_tokenizer: jieba.Tokenizer | None = None
_tokenizer_lock = threading.Lock()
_added_words: set[str] = set()


def tokenizer() -> jieba.Tokenizer:
    """The process-wide private jieba tokenizer (initialised once)."""
    global _tokenizer
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                import jieba  # imported (and its dictionary loaded) by the first process that tokenizes

                jieba.setLogLevel(logging.WARNING)
                tok = jieba.Tokenizer()
                tok.initialize()
                _tokenizer = tok
    return _tokenizer


def add_user_words(words: Iterable[str], freq: int = 1000) -> None:
    """Add catalogue terms (names, departments, aliases, synonyms) to the private tokenizer's dictionary.

    Words jieba already knows keep their frequency (boosting them would make them swallow characters of
    their neighbours: 农药店 must stay 农药 + 店, not 农 + 药店); new words get a moderate explicit frequency,
    which also avoids jieba's slow ``suggest_freq``.  Words already added are skipped, so a rebuild after a
    re-import only adds the new terms.
    """
    tok = tokenizer()
    with _tokenizer_lock:
        for w in words:
            w = w.strip()
            if len(w) >= 2 and w not in _added_words and " " not in w:
                if not tok.FREQ.get(w):
                    tok.add_word(w, freq)
                _added_words.add(w)


def has_word(word: str) -> bool:
    return bool(tokenizer().FREQ.get(word))


def cut(text: str) -> list[str]:
    """jieba segmentation of normalised text, without spaces.

    HMM discovery of unknown words is off: it glues stray characters into pseudo-words (在哪补 → 在 / 哪补)
    that match nothing; without it unknown text falls apart into single characters, which are ignored.
    """
    return [t for t in tokenizer().lcut(text, HMM=False) if t.strip()]


# jieba's part-of-speech tags of words that never name a service: time words, numerals and measure words,
# pronouns, adverbs, prepositions, conjunctions, particles, interjections, onomatopoeia, position and place
# words, state words and place names (adjectives can be the point: 好吃; another place's own service is
# judged by ``another_place_owns``).
_NON_TOPICAL_TAGS = frozenset(
    "t tg m mq mg q r rr rz rg d dg df p c u ud ug uj ul uv uz y e o f s z zg ad b x k h ns".split()
)


@lru_cache(maxsize=1)
def _tagged_words() -> tuple[frozenset[str], frozenset[str]]:
    """(non-topical words, place names) from jieba's dictionary, plus the people and fillers."""
    import jieba

    words = set(PEOPLE_AND_FILLERS)
    places: set[str] = set()
    with open(Path(jieba.__file__).with_name("dict.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] in _NON_TOPICAL_TAGS:
                words.add(parts[0])
                if parts[2] == "ns":
                    places.add(parts[0])
    return frozenset(words), frozenset(places)


def is_place(word: str) -> bool:
    """jieba's dictionary knows ``word`` as a place name (苏州, 东莞, 苏州工业园区)."""
    return word in _tagged_words()[1]


def non_topical(word: str) -> bool:
    """jieba's dictionary tags ``word`` as a word that cannot be the subject of a question (下个月, 要么 …),
    or it is a person or a filler (老头子, 同志, 看到): it says nothing about which service is asked."""
    return word in _tagged_words()[0]


# Districts that are parts of any town, not another place: 城区的房子 is here.
_GENERIC_AREAS = (
    "工业园区 开发区 工业区 商业区 老城区 市区 城区 新区 社区 小区 园区 景区 郊区 辖区 本区 "
    "本县 本市 县区 老区 山区 库区 灾区 街区 片区 校区 厂区 矿区 牧区 林区".split()
)
_AREA = re.compile(r"^[\u4e00-\u9fff]{2,6}(?:省|市|县|区)$")


_AREA_IN_TEXT = re.compile(r"[\u4e00-\u9fff]{2,3}?(?:省|市|县|区)")


def area_names(text: str) -> set[str]:
    """The provinces, cities, counties and districts ``text`` names (江西省, 赣州市, 章贡区), found by their
    shape: the tokenizer may know a department's whole name (赣州市住房公积金管理中心) as one word."""
    return {m.group() for m in _AREA_IN_TEXT.finditer(text) if not _generic_area(m.group())}


def _generic_area(tok: str) -> bool:
    for area in _GENERIC_AREAS:
        if tok.endswith(area):
            head = tok[: -len(area)]  # 苏州工业园区 is Suzhou's; 老城区, 工业园区 are any town's
            return not (is_place(head[:2]) or is_place(head[:3]))
    return False


def another_place_owns(text: str, home: Iterable[str] = ()) -> bool:
    """The question asks about another place's own service: a province, city, county or district, then
    的, then the thing ("苏州工业园区的营业执照", "赣州章贡区的房产证") — not the county's own province
    or city (``home``), not "身份证是赣州市区的，…" nor "在东莞交的社保".  (Named cities and provinces
    without a suffix, "上海的公积金", are the knowledge base's ``_ELSEWHERE``.)"""
    tokens = cut(text)
    home = set(home)
    for i, tok in enumerate(tokens[:-2]):
        if tok in home or not _AREA.match(tok) or _generic_area(tok):
            continue
        j = i + 1
        if tokens[j] in ("那边", "那里", "这边"):
            j += 1
        if j + 1 < len(tokens) and tokens[j] == "的" and is_cjk(tokens[j + 1][0]):
            return True
    return False


@lru_cache(maxsize=1)
def _pinyin_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in PINYIN_FILE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        syllable, chars = line.split("\t", 1)
        for ch in chars:
            table[ch] = syllable
    return table


def pinyin_of(ch: str) -> str:
    """Toneless pinyin of a CJK character, or the character itself when it has none."""
    return _pinyin_table().get(ch, ch)


def is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"
