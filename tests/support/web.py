"""Helpers for the console page tests (tests/web/)."""

from __future__ import annotations

import re


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)
