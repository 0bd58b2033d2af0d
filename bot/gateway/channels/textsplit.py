"""Split long replies into parts that fit a channel's size limit, at sensible boundaries."""

from __future__ import annotations

_SOFT_BREAKS = "\n。；;！!？?，,、 "


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def split_by_bytes(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-8 bytes.

    Prefers a line break, then sentence punctuation, then any character boundary; never cuts a character
    and never drops text (``"".join(parts)`` equals the input up to stripped boundary newlines).
    """
    if limit < 4:
        raise ValueError("limit too small")
    parts: list[str] = []
    rest = text.strip("\n")
    while utf8_len(rest) > limit:
        # the longest prefix within the byte budget
        cut, size = 0, 0
        for i, ch in enumerate(rest):
            size += utf8_len(ch)
            if size > limit:
                cut = i
                break
        window = rest[:cut]
        best = -1
        for sep in _SOFT_BREAKS:
            pos = window.rfind(sep)
            if pos >= len(window) // 3:
                best = pos + 1
                break
        if best <= 0:
            best = cut
        parts.append(rest[:best].rstrip("\n"))
        rest = rest[best:].lstrip("\n")
    if rest:
        parts.append(rest)
    return parts


def pack(texts: list[str], limit: int, sep: str = "\n\n") -> list[str]:
    """Messages for a channel: consecutive texts joined while they fit ``limit`` bytes, long ones split."""
    out: list[str] = []
    for text in texts:
        for part in split_by_bytes(text, limit):
            if out and utf8_len(out[-1] + sep + part) <= limit and not _was_split(text, part):
                out[-1] = out[-1] + sep + part
            else:
                out.append(part)
    return out


def _was_split(text: str, part: str) -> bool:
    return len(part) < len(text.strip("\n"))
