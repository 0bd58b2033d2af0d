"""The systemd units README gives for production (``deploy/systemd``): systemd's own verifier accepts
them, and every command they start exists in this checkout."""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.core.config import ROOT, Settings
from bot.gateway.cli import build_parser

UNITS = ROOT / "deploy" / "systemd"
INSTALL_DIR = "/opt/govbot"


def unit_files() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".target"))


def exec_starts() -> list[tuple[str, list[str]]]:
    found = []
    for path in unit_files():
        for line in path.read_text().splitlines():
            if line.startswith("ExecStart="):
                found.append((path.name, shlex.split(line.removeprefix("ExecStart="))))
    return found


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_verifies_every_unit(tmp_path: Path) -> None:
    """Paths are rewritten to this checkout, since the verifier checks that each command is executable."""
    for path in unit_files():
        (tmp_path / path.name).write_text(path.read_text().replace(INSTALL_DIR, str(ROOT)))
    wanted = re.findall(r"[\w@.-]+\.service", (UNITS / "govbot.target").read_text())
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "govbot.target", *wanted],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_the_target_starts_every_kind_of_process() -> None:
    wanted = set(re.findall(r"[\w@.-]+\.service", (UNITS / "govbot.target").read_text()))
    templates = {re.sub(r"@[^.]+\.", "@.", name) for name in wanted}
    assert templates == {p.name for p in unit_files() if p.suffix == ".service"}


def test_every_command_a_unit_starts_exists() -> None:
    parser = build_parser()
    subcommands = {
        name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }  # fmt: skip
    commands = exec_starts()
    assert len(commands) == len([p for p in unit_files() if p.suffix == ".service"])
    for unit, argv in commands:
        assert argv[0].startswith(INSTALL_DIR + "/.venv/bin/"), unit
        if argv[0].endswith("/govbot"):
            assert argv[1] in subcommands, (unit, argv)
        else:
            assert argv[1] == "-m" and importlib.util.find_spec(argv[2]) is not None, (unit, argv)


def test_govbot_rasa_runs_rasa_as_the_launcher_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """`govbot rasa --port N` (what govbot-rasa@N runs) becomes the launcher's own Rasa command."""
    import os

    from bot.gateway import cli
    from bot.gateway.launcher import DIALOGUES, rasa_command

    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    monkeypatch.setattr(os, "chdir", lambda path: calls.append((str(path), [], {})))
    monkeypatch.setenv("REDIS_URL", "redis://:pw@127.0.0.1:6390/2")
    monkeypatch.setattr(cli, "get_settings", Settings.from_env)
    cli.main(["rasa", "--port", "5011"])
    assert calls[0][0] == str(DIALOGUES)
    path, argv, env = calls[1]
    assert argv == rasa_command(5011) and path == argv[0]
    assert env["RASA_REDIS_PORT"] == "6390" and env["RASA_REDIS_PASSWORD"] == "pw"
