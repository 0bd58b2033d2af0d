"""One configuration vocabulary that fails closed.

- README's "Configuration" table lists exactly the variables the code reads (every settings class reads
  through ``bot.core.env.Env``; a scan finds any other read), and no package reads ``os.environ`` itself.
- Secrets never print.
- Outside demo mode, or on a non-loopback address, the gateway refuses to start with an empty required
  secret or one published in ``.env.example``, naming each variable; the demo still starts on loopback.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.adapters.approval.config import ApprovalSettings
from bot.core.config import ROOT, Settings, load_env_files, published_demo_values
from bot.core.env import ConfigError, Env, Secret
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.mass_send.notices import NoticeSettings
from bot.domains.progress.config import ProgressSettings
from bot.gateway.startup import check_startup, credentials, is_loopback, refusals
from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.config import SmsSettings

PACKAGES = ("bot", "sms_gateway", "knowledge_base")
ENV_METHODS = {"raw", "given", "text", "integer", "number", "flag", "choice", "secret"}
# Read by the set-up and test scripts, not by the packages.
TOOLING = {
    "RASA_PYTHON",
    "TEST_REDIS_URL",
    "TEST_POSTGRES_URL",
    "BROADCAST_TEST_REDIS_URL",
    "UPDATE_SCREENSHOTS",
}
DEMO = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}


def _package_files() -> list[Path]:
    return [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]


def _names_read_at_run_time() -> set[str]:
    env = Env({})
    for settings in (
        Settings,
        SmsSettings,
        BroadcastSettings,
        ComplaintSettings,
        ApprovalSettings,
        ProgressSettings,
        NoticeSettings,
    ):
        settings.from_env(env)
    return env.names


def _names_in_env_calls() -> set[str]:
    """Every ``<env>.text("NAME", …)``-style read anywhere in the packages (a literal ALL-CAPS name)."""
    names = set()
    for path in _package_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ENV_METHODS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and re.fullmatch(r"[A-Z][A-Z0-9_]+", node.args[0].value)
            ):
                names.add(node.args[0].value)
    return names


def _readme_names() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def test_readme_lists_exactly_the_variables_the_code_reads() -> None:
    read = _names_read_at_run_time() | _names_in_env_calls()
    readme = _readme_names()
    assert read - readme == set(), "read by the code but missing from README's table"
    assert readme - read - TOOLING == set(), "in README's table but read by nothing"
    scripts = "\n".join(
        p.read_text() for p in [*(ROOT / "scripts").glob("*"), *(ROOT / "tests").rglob("*.py")]
    )
    for name in TOOLING:
        assert name in readme and name in scripts, name


def test_no_package_reads_the_environment_itself() -> None:
    """Reads go through ``Env``; passing the whole environment on to a child process is fine."""
    offenders = []
    for path in _package_files():
        if path == ROOT / "bot" / "core" / "env.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            getenv = isinstance(node, ast.Attribute) and node.attr == "getenv"
            environ_get = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "environ"
            )
            environ_item = (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "environ"
                and isinstance(node.ctx, ast.Load)
            )
            if getenv or environ_get or environ_item:
                offenders.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")
    assert offenders == []


def test_secrets_never_print() -> None:
    env = {**DEMO, "GOVBOT_MODE": "production"}
    shown = " ".join(
        repr(s)
        for s in (
            Settings.from_env(env),
            SmsSettings.from_env(env),
            ApprovalSettings.from_env(env),
            ComplaintSettings.from_env(env),
        )
    )
    for variable in ("WECHAT_TOKEN", "WECHAT_APP_SECRET", "WECHAT_ENCODING_AES_KEY"):
        assert DEMO[variable] not in shown, variable
    for variable in ("TWILIO_AUTH_TOKEN", "APPROVAL_API_TOKEN"):
        assert DEMO[variable] not in shown, variable
    secret = Secret("s3cret")
    assert "s3cret" not in f"{secret} {secret!r} {[secret]}" and secret.get_secret_value() == "s3cret"
    assert secret == Secret("s3cret") and secret != Secret("other") and not Secret("")


@pytest.mark.parametrize(
    ("label", "env", "error"),
    [
        ("not a number", {"PORT": "eighty"}, "PORT must be a number"),
        ("below the minimum", {"WECHAT_TIMESTAMP_WINDOW": "0"}, "WECHAT_TIMESTAMP_WINDOW must be at least 1"),
        ("unknown mode", {"GOVBOT_MODE": "staging"}, "GOVBOT_MODE must be one of demo, production"),
        ("not on/off", {"PROGRESS_NOTIFIER": "maybe"}, "PROGRESS_NOTIFIER must be on or off"),
        ("bad answer days", {"COMPLAINT_ANSWER_DAYS": "complaint=soon"}, "COMPLAINT_ANSWER_DAYS"),
    ],
)
def test_a_malformed_value_names_its_variable(label: str, env: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        for settings in (Settings, ProgressSettings, ComplaintSettings):
            settings.from_env(env)


# ---------------------------------------------------------------------------------------------- fail closed

SAFE = {
    "WECHAT_TOKEN": "t-only-we-know",
    "WECHAT_APP_ID": "wx0123456789abcdef",
    "WECHAT_APP_SECRET": "s-only-we-know",
    "WECHAT_ENCODING_AES_KEY": "a" * 43,
    "TWILIO_AUTH_TOKEN": "tw-only-we-know",
}


def _problems(env: dict[str, str]) -> list[str]:
    e = Env(env)
    items = credentials(Settings.from_env(e), SmsSettings.from_env(e), ApprovalSettings.from_env(e))
    return refusals(items, published_demo_values())


WECHAT = ["WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_ENCODING_AES_KEY"]
OPTIONAL = [
    "TWILIO_AUTH_TOKEN",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIYUN_SMS_PUSH_TOKEN",
    "APPROVAL_API_TOKEN",
]
ALIYUN = {
    "SMS_PROVIDER": "aliyun",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tOurOwnKey00000000",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "ali-only-we-know",
    "ALIYUN_SMS_PUSH_TOKEN": "push-only-we-know-0123",
}


@pytest.mark.parametrize(
    ("label", "env", "refused"),
    [
        ("nothing set", {}, [*WECHAT, "TWILIO_AUTH_TOKEN"]),
        ("own secrets", SAFE, []),
        (
            "plain mode: no AES key",
            {**SAFE, "WECHAT_MESSAGE_MODE": "plain", "WECHAT_ENCODING_AES_KEY": ""},
            [],
        ),
        ("SMS off: no Twilio token", {**SAFE, "SMS_PROVIDER": "none", "TWILIO_AUTH_TOKEN": ""}, []),
        ("Aliyun with its own secrets", {**SAFE, **ALIYUN, "TWILIO_AUTH_TOKEN": ""}, []),
        (
            "Aliyun without a push token",
            {**SAFE, **ALIYUN, "ALIYUN_SMS_PUSH_TOKEN": ""},
            ["ALIYUN_SMS_PUSH_TOKEN"],
        ),
        (
            "Aliyun with the demo secret",
            {**SAFE, **ALIYUN, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEMO["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]},
            ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        ),
        ("the demo configuration", DEMO, [*WECHAT, *OPTIONAL]),
        ("one demo secret", {**SAFE, "WECHAT_TOKEN": DEMO["WECHAT_TOKEN"]}, ["WECHAT_TOKEN"]),
        ("demo approval", {**SAFE, "APPROVAL_API_TOKEN": DEMO["APPROVAL_API_TOKEN"]}, ["APPROVAL_API_TOKEN"]),
        (
            "demo Twilio token",
            {**SAFE, "TWILIO_AUTH_TOKEN": DEMO["TWILIO_AUTH_TOKEN"]},
            ["TWILIO_AUTH_TOKEN"],
        ),
    ],
)
def test_refusals_name_each_variable(label: str, env: dict[str, str], refused: list[str]) -> None:
    problems = _problems(env)
    assert [p.split()[0] for p in problems] == refused, label


@pytest.mark.parametrize(
    ("label", "env", "starts"),
    [
        ("demo on loopback", {**DEMO, "HOST": "127.0.0.1"}, True),
        ("demo on localhost", {**DEMO, "HOST": "localhost"}, True),
        ("demo on IPv6 loopback", {**DEMO, "HOST": "::1"}, True),
        ("demo on every address", {**DEMO, "HOST": "0.0.0.0"}, False),
        ("demo on a LAN address", {**DEMO, "HOST": "10.1.2.3"}, False),
        ("production with demo values", {**DEMO, "GOVBOT_MODE": "production"}, False),
        ("production by default", {k: v for k, v in DEMO.items() if k != "GOVBOT_MODE"}, False),
        ("production with own secrets on every address", {**SAFE, "HOST": "0.0.0.0"}, True),
        # a plaintext message's signature does not cover its body: production takes plain mode only when
        # WECHAT_ALLOW_PLAIN says the operator accepts that
        ("production, plain mode", {**SAFE, "WECHAT_MESSAGE_MODE": "plain"}, "WECHAT_ALLOW_PLAIN"),
        (
            "production, plain mode allowed",
            {**SAFE, "WECHAT_MESSAGE_MODE": "plain", "WECHAT_ALLOW_PLAIN": "1"},
            True,
        ),
        ("production, compatible mode", {**SAFE, "WECHAT_MESSAGE_MODE": "compatible"}, True),
        ("demo, plain mode", {**DEMO, "WECHAT_MESSAGE_MODE": "plain", "HOST": "127.0.0.1"}, True),
    ],
)
def test_check_startup(
    monkeypatch: pytest.MonkeyPatch, label: str, env: dict[str, str], starts: bool | str
) -> None:
    """``starts``: True, False (refused, naming WECHAT_TOKEN) or the variable the refusal names."""
    for name in list(os.environ):
        if name in DEMO or name in SAFE or name in PLAIN_ENV:
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    if starts is True:
        check_startup(settings)
    else:
        with pytest.raises(SystemExit, match=starts or "WECHAT_TOKEN"):
            check_startup(settings)


PLAIN_ENV = ("HOST", "GOVBOT_MODE", "SMS_PROVIDER", "WECHAT_MESSAGE_MODE", "WECHAT_ALLOW_PLAIN")


def test_loopback() -> None:
    assert [is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "", "::", "10.0.0.1", "bot.example.gov.cn")] == [False] * 5


def test_env_example_is_read_only_in_demo_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env.example").write_text("GOVBOT_MODE=demo\nGOVBOT_TEST_MARKER=from-example\n")
    monkeypatch.delenv("GOVBOT_MODE", raising=False)
    monkeypatch.delenv("GOVBOT_TEST_MARKER", raising=False)
    assert load_env_files(tmp_path) is None and "GOVBOT_TEST_MARKER" not in os.environ
    monkeypatch.setenv("GOVBOT_MODE", "demo")
    assert load_env_files(tmp_path) == tmp_path / ".env.example"
    assert os.environ["GOVBOT_TEST_MARKER"] == "from-example"
    monkeypatch.delenv("GOVBOT_TEST_MARKER")
    (tmp_path / ".env").write_text("GOVBOT_TEST_MARKER=from-dotenv\n")
    assert load_env_files(tmp_path) == tmp_path / ".env"
    assert os.environ["GOVBOT_TEST_MARKER"] == "from-dotenv"


def test_serve_refuses_demo_secrets_on_a_public_address(tmp_path: Path) -> None:
    """The real entry point: ``govbot serve`` with the demo values on 0.0.0.0 exits before binding."""
    env = {k: v for k, v in os.environ.items() if k not in DEMO and k not in ("HOST", "GOVBOT_MODE")}
    env.update({**DEMO, "HOST": "0.0.0.0", "PYTHONPATH": str(ROOT)})
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    for variable in ("WECHAT_TOKEN", "WECHAT_APP_SECRET", "TWILIO_AUTH_TOKEN"):
        assert variable in proc.stderr, variable
    assert DEMO["WECHAT_TOKEN"] not in proc.stderr + proc.stdout
