"""Hypothesis profiles for the fuzz tests (see the package docstring): ``ci`` (the default) and ``long``
(``HYPOTHESIS_PROFILE=long``)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

# The HTTP fuzz tests reuse one gateway (function-scoped fixtures) for all their examples on purpose: a fresh
# app per example would cost most of the time budget.  Each example uses fresh nonces and message ids.
_SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESS,
)
settings.register_profile(
    "long",
    max_examples=2500,
    derandomize=False,
    database=DirectoryBasedExampleDatabase(str(Path(__file__).resolve().parents[2] / "var" / "hypothesis")),
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESS,
)
