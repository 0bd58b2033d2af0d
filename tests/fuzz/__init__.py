"""Property-based fuzzing (hypothesis) of everything that reads outside input (issue #16): the WeChat XML and
crypto path, the Twilio webhook, the CSV/XLSX importers, ticket, phone and date parsing, masking and text
normalisation.  The property is always the same: a documented answer (a reply, a 400/403/413, the module's
own error type), never an exception escaping as a 500 or as silence.

Runs in ``make test`` with the ``ci`` profile (few examples, ``derandomize=True``: every run tries the same
inputs, so CI is reproducible; 1–1.5 minutes on 2 cores).  A deeper local run (about half an hour)::

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/fuzz

``long`` tries 25 times as many random inputs per test, different ones each run, and keeps failing examples
in ``var/hypothesis`` so they are replayed first next time (a failure prints a ``@reproduce_failure`` blob).
The profiles are registered in ``conftest.py``; each test takes its settings from :func:`fuzz_settings` (not
a globally loaded profile, so other tests' hypothesis settings are unaffected).
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"


def profile_name() -> str:
    return os.environ.get(PROFILE_ENV) or "ci"


def fuzz_settings(examples: int) -> settings:
    """The active profile with ``examples`` tries per test in ``ci`` (scaled by the profile's factor)."""
    profile = settings.get_profile(profile_name())
    scale = profile.max_examples / 100  # ci: 100 → 1×; long: 2500 → 25×
    return settings(profile, max_examples=max(1, round(examples * scale)))
