"""SMS configuration, the provider boundary (no twilio import outside the adapter), and the 0003 migration."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import inspect

from bot.core.config import ROOT
from bot.core.db import Base, create_engine
from bot.core.env import Secret
from bot.core.phone import to_e164
from bot.gateway.channels.sms import build_sms_channel
from sms_gateway import models  # noqa: F401 - registers the SMS tables on Base.metadata
from sms_gateway.config import SmsSettings

DEMO_ENV = {
    "SMS_PROVIDER": "twilio",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "TWILIO_AUTH_TOKEN": "demo-twilio-auth-token",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "TWILIO_MESSAGING_SERVICE_SID": "",
    "TWILIO_API_BASE": "http://127.0.0.1:8182/",
    "SMS_SIGNATURE": "【县行政服务中心】",
    "PUBLIC_BASE_URL": "https://gov.example.cn/bot/",
    "SMS_REPLY_SEGMENT_BUDGET": "2",
    "SMS_MAX_SEGMENTS_PER_MESSAGE": "6",
    "SMS_SYNC_REPLY_DEADLINE": "4.5",
    "SMS_SEND_TIMEOUT": "8",
    "SMS_RETRY_DELAYS": "60, 180",
    "SMS_RECONCILE_DELAY": "5",
    "SMS_THROTTLE_BACKOFF": "1",
    "SMS_THROTTLE_MAX_RETRIES": "3",
    "SMS_MAX_ATTEMPTS": "4",
    "SMS_WORKER_INTERVAL": "1",
    "SMS_INBOUND_DEDUP_TTL": "3600",
    "CENTER_PHONE": "0797-1234567",
}


def test_every_variable_is_read() -> None:
    s = SmsSettings.from_env(DEMO_ENV)
    assert s.provider == "twilio" and s.enabled
    assert s.twilio_account_sid == DEMO_ENV["TWILIO_ACCOUNT_SID"]
    assert s.twilio_auth_token == Secret("demo-twilio-auth-token")
    assert s.twilio_from_number == "+15005550006" and s.twilio_messaging_service_sid == ""
    assert s.twilio_api_base == "http://127.0.0.1:8182"
    assert s.signature == "县行政服务中心" and s.signature_prefix == "【县行政服务中心】"
    assert s.public_base_url == "https://gov.example.cn/bot"
    assert (s.reply_segment_budget, s.max_segments_per_message) == (2, 6)
    assert (s.sync_reply_deadline, s.send_timeout, s.reconcile_delay) == (4.5, 8.0, 5.0)
    assert s.retry_delays == (60.0, 180.0)
    assert (s.throttle_backoff, s.throttle_max_retries, s.max_attempts) == (1.0, 3, 4)
    assert (s.worker_interval, s.inbound_dedup_ttl, s.center_phone) == (1.0, 3600, "0797-1234567")
    s.check()


def test_defaults() -> None:
    s = SmsSettings.from_env({})
    assert s.provider == "twilio" and s.twilio_api_base == "https://api.twilio.com"
    assert (
        s.signature == "县行政服务中心" and s.reply_segment_budget == 3 and s.retry_delays == (300.0, 600.0)
    )
    assert s.center_phone == "0797-3322110"
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        s.check()  # nothing configured: the channel refuses to start rather than run unsigned
    assert not SmsSettings.from_env({"SMS_PROVIDER": "none"}).enabled
    assert SmsSettings.from_env({"SMS_SIGNATURE": ""}).signature_prefix == ""


ALIYUN = {
    "SMS_PROVIDER": "aliyun",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tConfigTest0000000",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "config-test-secret",
    "ALIYUN_SMS_PUSH_TOKEN": "push-token-0123456789",
}


@pytest.mark.parametrize(
    ("label", "change", "message"),
    [
        ("no key id", {"ALIBABA_CLOUD_ACCESS_KEY_ID": ""}, "ACCESS_KEY"),
        ("no secret", {"ALIBABA_CLOUD_ACCESS_KEY_SECRET": ""}, "ACCESS_KEY"),
        ("no push token", {"ALIYUN_SMS_PUSH_TOKEN": ""}, "PUSH_TOKEN"),
        ("short push token", {"ALIYUN_SMS_PUSH_TOKEN": "abc"}, "PUSH_TOKEN"),
        ("push token with a slash", {"ALIYUN_SMS_PUSH_TOKEN": "abcdefgh/ijklmnopq"}, "PUSH_TOKEN"),
        ("no signature", {"SMS_SIGNATURE": ""}, "SMS_SIGNATURE"),
    ],
)
def test_aliyun_refuses_to_start_without_what_it_needs(
    label: str, change: dict[str, str], message: str
) -> None:
    settings = SmsSettings.from_env({**ALIYUN, **change})
    with pytest.raises(ValueError, match=message):
        settings.check()


def test_aliyun_settings_are_read() -> None:
    settings = SmsSettings.from_env({**ALIYUN, "ALIYUN_SMS_ENDPOINT": "http://127.0.0.1:8184/"})
    settings.check()
    assert settings.provider == "aliyun" and settings.aliyun_endpoint == "http://127.0.0.1:8184"
    assert settings.aliyun_push_token.get_secret_value() == "push-token-0123456789"
    assert SmsSettings.from_env({}).aliyun_endpoint == "dysmsapi.aliyuncs.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMS_PROVIDER": "aliyunx"}, "SMS_PROVIDER"),
        ({"SMS_SIGNATURE": "县"}, "2-8"),
        ({"SMS_SIGNATURE": "县行政服务中心办公室"}, "2-8"),
        ({"SMS_REPLY_SEGMENT_BUDGET": "0"}, "BUDGET"),
        ({"SMS_MAX_SEGMENTS_PER_MESSAGE": "11"}, "1-10"),
        ({"SMS_RETRY_DELAYS": "1,2,3"}, "at most two"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "MG123"}, "MG"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmsSettings.from_env(env)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_FROM_NUMBER": ""}, "TWILIO_FROM_NUMBER"),
        ({"PUBLIC_BASE_URL": "gov.example.cn"}, "PUBLIC_BASE_URL"),
    ],
)
def test_check_refuses_an_unusable_configuration(change: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmsSettings.from_env({**DEMO_ENV, **change}).check()


def test_a_messaging_service_alone_is_enough() -> None:
    env = {**DEMO_ENV, "TWILIO_FROM_NUMBER": "", "TWILIO_MESSAGING_SERVICE_SID": "MG" + "1" * 32}
    SmsSettings.from_env(env).check()


async def test_factory_refuses_a_disabled_or_unconfigured_channel() -> None:
    for env in ({"SMS_PROVIDER": "none"}, {}):
        with pytest.raises(ValueError):
            build_sms_channel(
                SmsSettings.from_env(env),
                redis=None,  # type: ignore[arg-type]
                conversation=None,  # type: ignore[arg-type]
                sessions=None,  # type: ignore[arg-type]
                metrics=None,  # type: ignore[arg-type]
                http=None,  # type: ignore[arg-type]
            )


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13812345678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("8613812345678", "+8613812345678"),
        ("+86 138-1234-5678", "+8613812345678"),
        ("008613812345678", "+8613812345678"),
        ("+15005550006", "+15005550006"),
    ],
)
def test_phone_normalisation(raw: str, e164: str) -> None:
    assert to_e164(raw) == e164


@pytest.mark.parametrize("raw", ["", "12345", "0797-3322110", "abc", "+0123456789"])
def test_phone_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        to_e164(raw)


# ---------------------------------------------------------------------------------------------- boundary

PACKAGE = ROOT / "sms_gateway"
# The module that may reach the Twilio adapter: the factory that chooses the provider.
WIRING = {"providers.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_adapter_imports_twilio() -> None:
    outside = [p for p in PACKAGE.rglob("*.py") if "twilio" not in p.relative_to(PACKAGE).parts]
    assert outside
    for path in outside:
        imported = _imports(path)
        assert not any(n == "twilio" or n.startswith("twilio.") for n in imported), path
        if path.name not in WIRING:
            assert not any(n.startswith("sms_gateway.twilio") for n in imported), path
    adapter = _imports(PACKAGE / "twilio" / "provider.py")
    assert "twilio.request_validator" in adapter and "twilio.http.async_http_client" in adapter


# ---------------------------------------------------------------------------------------------- migration


def migration_head() -> str:
    from alembic.script import ScriptDirectory

    from bot.core.migrate import _config

    return str(ScriptDirectory.from_config(_config("sqlite://")).get_current_head())


async def test_migration_creates_the_tables_the_models_describe(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:

            def _schema(sync_conn):
                insp = inspect(sync_conn)
                out: dict[str, object] = {}
                for table in ("sms_outbound", "sms_delivery_events", "sms_opt_outs"):
                    out[table] = {c["name"]: c["nullable"] for c in insp.get_columns(table)}
                    out[table + ":indexes"] = {i["name"] for i in insp.get_indexes(table)}
                out["version"] = sync_conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
                return out

            schema = await conn.run_sync(_schema)
    finally:
        await engine.dispose()
    assert schema["version"] == migration_head()
    for table in ("sms_outbound", "sms_delivery_events", "sms_opt_outs"):
        model = Base.metadata.tables[table]
        expected = {c.name: c.nullable for c in model.columns}
        assert schema[table] == expected, table
    assert {"ix_sms_outbound_due", "ix_sms_outbound_recipient", "ix_sms_outbound_provider_sid"} <= schema[
        "sms_outbound:indexes"
    ]


def test_migration_revision_chain() -> None:
    text = (ROOT / "migrations" / "versions" / "0003_sms.py").read_text(encoding="utf-8")
    assert 'revision = "0003"' in text and 'down_revision = "0002"' in text
