"""Settings from the environment.

Every variable the system reads is declared here (and listed in README.md).  When no ``.env`` file exists
the demo values in ``.env.example`` are loaded, so a fresh clone runs out of the box.  Real environment
variables always win over both files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
VAR_DIR = ROOT / "var"


def load_env_files(root: Path = ROOT) -> Path | None:
    """Load ``.env`` (or ``.env.example`` when there is no ``.env``) without overriding real env vars."""
    from dotenv import load_dotenv

    for name in (".env", ".env.example"):
        path = root / name
        if path.is_file():
            load_dotenv(path, override=False)
            return path
    return None


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw not in (None, "") else default


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    # WeChat official account
    wechat_token: str = "govbot-demo-token"
    wechat_app_id: str = "wxdemo0000000000"
    wechat_app_secret: str = "demo-app-secret"
    wechat_encoding_aes_key: str = ""
    wechat_message_mode: str = "safe"  # plain | compatible | safe
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timestamp_window: int = 300
    wechat_reply_deadline: float = 4.0
    wechat_max_body_bytes: int = 64 * 1024
    # Service
    public_base_url: str = "http://127.0.0.1:8080"
    staff_api_token: str = ""
    redis_url: str = "redis://127.0.0.1:6380/0"  # the private Redis `make run` starts
    database_url: str = f"sqlite+aiosqlite:///{VAR_DIR / 'govbot.db'}"
    rasa_url: str = "http://127.0.0.1:5005"  # one URL, or several comma-separated
    rasa_processes: int = 2  # local Rasa servers `make run` starts, on RASA_URL's port and the next ones
    rasa_timeout: float = 3.5
    actions_port: int = 5055
    host: str = "127.0.0.1"
    port: int = 8080
    gateway_workers: int = 1
    log_level: str = "INFO"
    # Service center facts used in replies
    center_name: str = "县行政服务中心"
    center_phone: str = "0797-3322110"
    office_hours: str = "周一至周五 上午8:30-12:00，下午14:30-17:30（法定节假日除外）"
    office_hours_spec: str = "mon-fri 08:30-12:00,14:30-17:30"
    timezone: str = "Asia/Shanghai"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        d = cls()
        mode = (e.get("WECHAT_MESSAGE_MODE") or d.wechat_message_mode).strip().lower()
        if mode not in {"plain", "compatible", "safe"}:
            raise ValueError(f"WECHAT_MESSAGE_MODE must be plain, compatible or safe, not {mode!r}")
        return cls(
            wechat_token=e.get("WECHAT_TOKEN") or d.wechat_token,
            wechat_app_id=e.get("WECHAT_APP_ID") or d.wechat_app_id,
            wechat_app_secret=e.get("WECHAT_APP_SECRET") or d.wechat_app_secret,
            wechat_encoding_aes_key=e.get("WECHAT_ENCODING_AES_KEY") or d.wechat_encoding_aes_key,
            wechat_message_mode=mode,
            wechat_api_base=(e.get("WECHAT_API_BASE") or d.wechat_api_base).rstrip("/"),
            wechat_timestamp_window=_int(e, "WECHAT_TIMESTAMP_WINDOW", d.wechat_timestamp_window),
            wechat_reply_deadline=_float(e, "WECHAT_REPLY_DEADLINE", d.wechat_reply_deadline),
            wechat_max_body_bytes=_int(e, "WECHAT_MAX_BODY_BYTES", d.wechat_max_body_bytes),
            public_base_url=(e.get("PUBLIC_BASE_URL") or d.public_base_url).rstrip("/"),
            staff_api_token=e.get("STAFF_API_TOKEN") or d.staff_api_token,
            redis_url=e.get("REDIS_URL") or d.redis_url,
            database_url=e.get("DATABASE_URL") or d.database_url,
            rasa_url=(e.get("RASA_URL") or d.rasa_url).rstrip("/"),
            rasa_processes=max(1, _int(e, "RASA_PROCESSES", d.rasa_processes)),
            rasa_timeout=_float(e, "RASA_TIMEOUT", d.rasa_timeout),
            actions_port=_int(e, "ACTIONS_PORT", d.actions_port),
            host=e.get("HOST") or d.host,
            port=_int(e, "PORT", d.port),
            gateway_workers=max(1, _int(e, "GATEWAY_WORKERS", d.gateway_workers)),
            log_level=(e.get("LOG_LEVEL") or d.log_level).upper(),
            center_name=e.get("CENTER_NAME") or d.center_name,
            center_phone=e.get("CENTER_PHONE") or d.center_phone,
            office_hours=e.get("CENTER_OFFICE_HOURS") or d.office_hours,
            office_hours_spec=e.get("CENTER_OFFICE_HOURS_SPEC") or d.office_hours_spec,
            timezone=e.get("TZ_NAME") or d.timezone,
        )

    @property
    def rasa_urls(self) -> list[str]:
        """The Rasa servers turns are spread over: RASA_URL's comma-separated list as given; a single
        RASA_URL on this machine (127.0.0.1/localhost) stands for the RASA_PROCESSES servers `make run`
        starts there, on its port and the following ones."""
        urls = url_list(self.rasa_url)
        first = urlsplit(urls[0]) if len(urls) == 1 else None
        if first is None or first.hostname not in ("127.0.0.1", "localhost"):
            return urls
        port = first.port or 5005
        return [
            urlunsplit(first._replace(netloc=f"{first.hostname}:{port + i}"))
            for i in range(self.rasa_processes)
        ]


def url_list(value: str) -> list[str]:
    """``"http://a:5005, http://b:5005/"`` → ``["http://a:5005", "http://b:5005"]``."""
    return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]


_settings: Settings | None = None


def get_settings() -> Settings:
    """Process-wide settings (env files loaded once)."""
    global _settings
    if _settings is None:
        load_env_files()
        _settings = Settings.from_env()
    return _settings
