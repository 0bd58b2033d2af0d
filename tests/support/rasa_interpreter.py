"""Run a check script in Rasa's own interpreter (``.venv-rasa``, Python 3.10) as ``make run`` runs Rasa."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from bot.core.config import Settings
from bot.gateway.launcher import DIALOGUES, RASA_PYTHON, rasa_env


def run_in_rasa(script: str, *args: str, timeout: float) -> Any:
    """Run ``script`` with ``args`` in Rasa's interpreter (cwd ``dialogues/``, Rasa's environment, the
    repository importable) and return the JSON its last line of output holds."""
    assert RASA_PYTHON.exists(), "the Rasa virtualenv is missing: run `make test` (scripts/setup.sh makes it)"
    proc = subprocess.run(
        [str(RASA_PYTHON), "-c", script, *args],
        cwd=DIALOGUES,
        env={**os.environ, **rasa_env(Settings())},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
