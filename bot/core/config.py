"""The gateway's settings, and how the environment is loaded.

Each package declares its own settings class (``SmsSettings``, ``BroadcastSettings``, ``ComplaintSettings``,
``ApprovalSettings``, ``ProgressSettings``); every one reads the environment through
:class:`bot.core.env.Env`, and README's "Configuration" table lists every variable they read (a test keeps
the two equal).

**Modes.** ``GOVBOT_MODE=demo`` runs with the public demo values of ``.env.example`` (read only when there is
no ``.env``); ``make run`` chooses demo mode when neither ``GOVBOT_MODE`` nor ``.env`` says otherwise, and
says so on start.  Any other mode is production: ``.env.example`` is never read, and the gateway refuses
to start while a required secret is empty or equal to a value published in ``.env.example``
(:mod:`bot.gateway.startup`).  The same refusal applies in demo mode whenever the gateway binds an address
other than loopback.  Real environment variables always win over ``.env``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bot.core.env import Env, Secret

ROOT = Path(__file__).resolve().parents[2]
VAR_DIR = ROOT / "var"
ENV_FILE = ".env"
DEMO_ENV_FILE = ".env.example"
MODES = ("demo", "production")


def load_env_files(root: Path = ROOT) -> Path | None:
    """Load ``.env`` when it exists, else ``.env.example`` in demo mode only; real variables win.

    Returns the file loaded, if any."""
    import os

    from dotenv import load_dotenv

    env_file = root / ENV_FILE
    if env_file.is_file():
        load_dotenv(env_file, override=False)
        return env_file
    demo_file = root / DEMO_ENV_FILE
    if Env().text("GOVBOT_MODE").lower() == "demo" and demo_file.is_file():
        load_dotenv(demo_file, override=False)
        os.environ.setdefault("GOVBOT_MODE", "demo")
        return demo_file
    return None


def private_redis_url(url: str, password_file: Path = VAR_DIR / "redis" / "password") -> str:
    """``url`` with the password of the private Redis ``make run`` starts (``var/redis/password``), when
    there is one: every ``govbot`` command on this machine reaches it without REDIS_URL."""
    try:
        password = password_file.read_text().strip()
    except OSError:
        return url
    parts = urlsplit(url)
    if not password or parts.password:
        return url
    return urlunsplit(parts._replace(netloc=f":{password}@{parts.netloc}"))


def published_demo_values(root: Path = ROOT) -> dict[str, str]:
    """The values ``.env.example`` publishes (anyone who read our repository knows them)."""
    from dotenv import dotenv_values

    path = root / DEMO_ENV_FILE
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v}


@dataclass(frozen=True)
class Settings:
    mode: str = "production"  # GOVBOT_MODE: demo | production
    # WeChat official account
    wechat_token: Secret = field(default_factory=Secret)
    wechat_app_id: str = ""
    wechat_app_secret: Secret = field(default_factory=Secret)
    wechat_encoding_aes_key: Secret = field(default_factory=Secret)
    wechat_message_mode: str = "safe"  # plain | compatible | safe
    wechat_allow_plain: bool = False  # plaintext (unencrypted) messages outside demo mode
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timestamp_window: int = 300
    wechat_reply_deadline: float = 4.0
    wechat_max_body_bytes: int = 64 * 1024
    # Service
    public_base_url: str = "http://127.0.0.1:8080"
    redis_url: str = "redis://127.0.0.1:6380/0"  # the private Redis `make run` starts
    database_url: str = f"sqlite+aiosqlite:///{VAR_DIR / 'govbot.db'}"
    rasa_url: str = "http://127.0.0.1:5005"  # one URL, or several comma-separated
    rasa_processes: int = 2  # local Rasa servers `make run` starts, on RASA_URL's port and the next ones
    rasa_timeout: float = 3.5
    actions_port: int = 5055
    host: str = "127.0.0.1"
    port: int = 8080
    gateway_workers: int = 1
    http_idle_timeout: float = 15.0  # a connection without a complete request for this long is closed
    http_body_timeout: float = 15.0  # a request body with no new byte for this long is answered 408
    log_level: str = "INFO"
    # Service center facts used in replies
    center_name: str = "县行政服务中心"
    center_phone: str = "0797-3322110"
    office_hours: str = "周一至周五 上午8:30-12:00，下午14:30-17:30（法定节假日除外）"
    office_hours_spec: str = "mon-fri 08:30-12:00,14:30-17:30"
    calendar_file: str = ""  # CENTER_CALENDAR_FILE
    timezone: str = "Asia/Shanghai"

    @property
    def demo(self) -> bool:
        return self.mode == "demo"

    @property
    def wechat_plaintext_allowed(self) -> bool:
        """Unencrypted WeChat messages are signed only over timestamp and nonce, not over the body: they are
        taken in demo mode, or when WECHAT_ALLOW_PLAIN says the operator accepts that."""
        return self.demo or self.wechat_allow_plain

    @classmethod
    def from_env(cls, env: Mapping[str, str] | Env | None = None) -> Settings:
        e = Env.of(env)
        d = cls()
        return cls(
            mode=e.choice("GOVBOT_MODE", d.mode, MODES),
            wechat_token=e.secret("WECHAT_TOKEN"),
            wechat_app_id=e.text("WECHAT_APP_ID", d.wechat_app_id),
            wechat_app_secret=e.secret("WECHAT_APP_SECRET"),
            wechat_encoding_aes_key=e.secret("WECHAT_ENCODING_AES_KEY"),
            wechat_message_mode=e.choice(
                "WECHAT_MESSAGE_MODE", d.wechat_message_mode, ("plain", "compatible", "safe")
            ),
            wechat_allow_plain=e.flag("WECHAT_ALLOW_PLAIN", d.wechat_allow_plain),
            wechat_api_base=e.text("WECHAT_API_BASE", d.wechat_api_base).rstrip("/"),
            wechat_timestamp_window=e.integer("WECHAT_TIMESTAMP_WINDOW", d.wechat_timestamp_window, 1),
            wechat_reply_deadline=e.number("WECHAT_REPLY_DEADLINE", d.wechat_reply_deadline, 0.0),
            wechat_max_body_bytes=e.integer("WECHAT_MAX_BODY_BYTES", d.wechat_max_body_bytes, 1),
            public_base_url=e.text("PUBLIC_BASE_URL", d.public_base_url).rstrip("/"),
            redis_url=e.text("REDIS_URL", private_redis_url(d.redis_url)),
            database_url=e.text("DATABASE_URL", d.database_url),
            rasa_url=e.text("RASA_URL", d.rasa_url).rstrip("/"),
            rasa_processes=max(1, e.integer("RASA_PROCESSES", d.rasa_processes)),
            rasa_timeout=e.number("RASA_TIMEOUT", d.rasa_timeout, 0.1),
            actions_port=e.integer("ACTIONS_PORT", d.actions_port, 1),
            host=e.text("HOST", d.host),
            port=e.integer("PORT", d.port, 0),
            gateway_workers=max(1, e.integer("GATEWAY_WORKERS", d.gateway_workers)),
            http_idle_timeout=e.number("HTTP_IDLE_TIMEOUT", d.http_idle_timeout, 1.0),
            http_body_timeout=e.number("HTTP_BODY_TIMEOUT", d.http_body_timeout, 1.0),
            log_level=e.text("LOG_LEVEL", d.log_level).upper(),
            center_name=e.text("CENTER_NAME", d.center_name),
            center_phone=e.text("CENTER_PHONE", d.center_phone),
            office_hours=e.text("CENTER_OFFICE_HOURS", d.office_hours),
            office_hours_spec=e.text("CENTER_OFFICE_HOURS_SPEC", d.office_hours_spec),
            calendar_file=e.text("CENTER_CALENDAR_FILE"),
            timezone=e.text("TZ_NAME", d.timezone),
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
