"""The CLI as a real process: the first administrator, ``govbot login`` and its token file, domain commands
run as the signed-in person with their permission checked and audited, ``govbot logout``."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import redis.asyncio as aioredis

from bot.core.config import ROOT
from bot.core.db import create_engine, session_factory
from bot.domains.staff import Staff
from tests.support.services import TEST_REDIS_URL
from tests.support.staff import OTHER_PASSWORD, PASSWORD


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("GOVBOT_", "XDG_"))}
    return {
        **keep,
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONPATH": str(ROOT),
    }


async def _govbot(env: dict[str, str], *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", *argv],
        input=stdin,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_sign_in_act_and_sign_out_from_the_cli(tmp_path: Path, redis_client: aioredis.Redis) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = _env(tmp_path, database_url)
    first = await _govbot(env, "staff", "create-admin", "--username", "Boss", "--name", "主任",
                          "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert first.returncode == 0, first.stderr
    again = await _govbot(env, "staff", "create-admin", "--username", "boss2", "--name", "x",
                          "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert again.returncode == 3 and "已有管理员" in again.stderr  # only an administrator adds more

    engine = create_engine(database_url)
    staff = Staff.build(session_factory(engine), redis_client)
    await staff.accounts.create("clerk", "科员", OTHER_PASSWORD, ["complaint_handler"], "县人社局", False)

    refused = await _govbot(env, "complaints", "list")
    assert refused.returncode == 2 and "govbot login" in refused.stderr
    wrong = await _govbot(env, "login", "--username", "clerk", "--password-stdin", stdin="nope\n")
    assert wrong.returncode == 1
    signed = await _govbot(
        env, "login", "--username", "clerk", "--password-stdin", stdin=OTHER_PASSWORD + "\n"
    )
    assert signed.returncode == 0 and "科员(clerk)" in signed.stdout, signed.stderr
    token_file = tmp_path / "config" / "govbot" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and token_file.read_text().startswith("gvb_")
    listed = await _govbot(env, "complaints", "list")
    assert listed.returncode == 0 and "没有符合条件的投诉" in listed.stdout, listed.stderr
    sweep = await _govbot(env, "complaints", "sweep")
    assert sweep.returncode == 3 and "没有权限" in sweep.stderr  # 督办 is for supervisors

    admin_env = {**env, "XDG_CONFIG_HOME": str(tmp_path / "admin-config")}
    assert (await _govbot(admin_env, "login", "--username", "boss", "--password-stdin",
                          stdin=PASSWORD + "\n")).returncode == 0  # fmt: skip
    audit = await _govbot(admin_env, "staff", "audit", "--format", "csv")
    assert audit.returncode == 0
    assert "cli.complaints" in audit.stdout and "clerk" in audit.stdout and "denied" in audit.stdout

    out = await _govbot(env, "logout")
    assert out.returncode == 0 and not token_file.exists()
    assert (await _govbot(env, "complaints", "list")).returncode == 2
    clerk = await staff.accounts.by_username("clerk")
    assert clerk is not None
    rows = await staff.tokens.of(clerk.id)
    assert rows and all(
        t.revoked_at is not None for t in rows
    )  # the CLI's token was revoked, not only deleted
    await engine.dispose()
