"""Text normalisation applied to every citizen message before it reaches Rasa or the knowledge base.

NFKC folds full-width digits and letters (１２３ → 123, ＡＢＣ → ABC); OpenCC ``t2s`` turns Traditional
Chinese into Simplified; whitespace is collapsed and trimmed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from opencc_purepy import OpenCC

_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def normalize(text: str) -> str:
    """NFKC, Traditional → Simplified, collapse whitespace, trim."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = to_simplified(text)
    return _SPACES.sub(" ", text).strip()
