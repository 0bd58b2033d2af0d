"""``govbot run`` (what ``make run`` calls): prepare and start every process in the foreground.

1. Redis: ``REDIS_URL`` when set; otherwise a private ``redis-server`` on 127.0.0.1:6380 with its data
   under ``var/redis`` and a password of its own (``var/redis/password``, which other ``govbot`` commands
   on this machine read too).
2. Database migrations; the sample catalogue is loaded into an empty knowledge base.
3. The Rasa model is trained when the training data changed (fingerprint under ``dialogues/models``).
4. Processes: [private Redis], [WeChat API fake when WECHAT_API_BASE points at this machine], [Twilio
   fake when TWILIO_API_BASE does, or the Aliyun SMS fake when SMS_PROVIDER=aliyun and ALIYUN_SMS_ENDPOINT
   does], [the reference approval backend when APPROVAL_API_BASE does],
   [BROADCAST_WORKERS SMS campaign workers when SMS is configured], action server, Rasa (127.0.0.1
   only; ``RASA_PROCESSES`` of them on consecutive ports, or one per local URL in a RASA_URL list),
   and ``GATEWAY_WORKERS`` gateway workers sharing one port.
   Ctrl-C (or SIGTERM) stops them all; if one dies the others are stopped too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from bot.adapters.approval.config import ApprovalSettings
from bot.core.config import ROOT, VAR_DIR, Settings, get_settings
from bot.core.env import Env
from bot.core.processes import port_open
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.mass_send.notices import NoticeSettings
from bot.domains.progress.config import ProgressSettings
from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.config import SmsSettings

DIALOGUES = ROOT / "dialogues"
MODELS = DIALOGUES / "models"
RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
# Rasa runs through this module, which installs fast paths for its costly pieces (see its docstring).
RASA_RUNTIME = "bot.rasa_process.runtime"
PRIVATE_REDIS_URL = "redis://127.0.0.1:6380/0"
PRIVATE_REDIS_DIR = VAR_DIR / "redis"
LOCAL = ("127.0.0.1", "localhost")
TRAINING_INPUTS = ("config.yml", "domain.yml", "data", "jieba_dict")


def say(text: str) -> None:
    print(f"[govbot] {text}", flush=True)


def training_fingerprint(dialogues: Path = DIALOGUES) -> str:
    """A hash over every file that shapes the trained model."""
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        path = dialogues / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.exists():
                digest.update(str(f.relative_to(dialogues)).encode())
                digest.update(f.read_bytes())
    return digest.hexdigest()


def model_is_current(dialogues: Path = DIALOGUES) -> bool:
    stamp = dialogues / "models" / "fingerprint.txt"
    model = dialogues / "models" / "govbot.tar.gz"
    return model.exists() and stamp.exists() and stamp.read_text().strip() == training_fingerprint(dialogues)


def train_if_needed(dialogues: Path = DIALOGUES, rasa_bin: Path = RASA_BIN, *, force: bool = False) -> bool:
    """Train the Rasa model unless it is current. Returns True when it trained."""
    if not force and model_is_current(dialogues):
        say("Rasa 模型已是最新，跳过训练 (model up to date)")
        return False
    say("训练 Rasa 模型… (training the Rasa model, about 5-8 minutes on 2 cores)")
    started = time.monotonic()
    subprocess.run(
        [str(rasa_bin), "train", "--fixed-model-name", "govbot", "--out", "models"],
        cwd=dialogues,
        check=True,
        env={**os.environ, **rasa_env(get_settings())},
    )
    (dialogues / "models" / "fingerprint.txt").write_text(training_fingerprint(dialogues))
    say(f"模型训练完成，用时 {time.monotonic() - started:.0f} 秒")
    return True


def rasa_env(settings: Settings) -> dict[str, str]:
    """Environment for the Rasa process: endpoints.yml reads these."""
    url = urlparse(settings.redis_url)
    db = (url.path or "/0").lstrip("/") or "0"
    return {
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{settings.actions_port}/webhook",
        "RASA_REDIS_HOST": url.hostname or "127.0.0.1",
        "RASA_REDIS_PORT": str(url.port or 6379),
        "RASA_REDIS_DB": db,
        "RASA_LOCK_REDIS_DB": db,
        "RASA_REDIS_PASSWORD": url.password or "",
        "SANIC_WORKERS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_INTRA_OP_PARALLELISM_THREADS": "2",
        "TF_INTER_OP_PARALLELISM_THREADS": "1",
        "RASA_TELEMETRY_ENABLED": "false",
        # `python -m bot.rasa_process.runtime` imports that one module from this checkout.
        "PYTHONPATH": str(ROOT),
    }


def rasa_command(port: int) -> list[str]:
    """``rasa run`` on 127.0.0.1:port (cwd: dialogues/, environment: :func:`rasa_env`)."""
    return [
        str(RASA_PYTHON), "-m", RASA_RUNTIME, "run", "-i", "127.0.0.1", "-p", str(port),
        "--model", "models", "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
    ]  # fmt: skip


def local_rasa_servers(settings: Settings) -> list[tuple[str, int]]:
    """(process name, port) of each Rasa server to start here: the local ones among ``settings.rasa_urls``
    (RASA_PROCESSES of them on consecutive ports, or the local entries of a RASA_URL list)."""
    urls = [urlparse(url) for url in settings.rasa_urls]
    ports = [url.port or 5005 for url in urls if url.hostname in LOCAL]
    if len(ports) == 1:
        return [("rasa", ports[0])]
    return [(f"rasa-{i + 1}", port) for i, port in enumerate(ports)]


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return True
        time.sleep(0.2)
    return False


@dataclass
class Child:
    name: str
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    started: float
    failures: int = 0  # consecutive quick exits, for the back-off
    restart_at: float | None = None  # when an exited child is due to be started again


class Supervisor:
    """Starts the processes and keeps them running: a child that exits is started again after a back-off
    (1 s, 2 s, 4 s … at most ``max_backoff``; a child that ran ``stable`` seconds starts from 1 s again),
    while the others keep serving — one crashed worker never takes the service down."""

    def __init__(
        self, *, max_backoff: float = 60.0, stable: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.children: list[Child] = []
        self.max_backoff = max_backoff
        self.stable = stable
        self.clock = clock

    @property
    def procs(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        return [(c.name, c.proc) for c in self.children]

    def _spawn(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **env}, start_new_session=True)

    def start(
        self, name: str, cmd: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None
    ) -> None:
        proc = self._spawn(cmd, cwd, env or {})
        self.children.append(Child(name, cmd, cwd, dict(env or {}), proc, self.clock()))
        say(f"已启动 {name} (pid {proc.pid})")

    def tend(self) -> list[str]:
        """Schedule exited children for a restart and start those whose back-off is over; returns the
        names of the children that are down right now (for the log and the operator)."""
        now = self.clock()
        down = []
        for child in self.children:
            if child.proc.poll() is None:
                continue
            if child.restart_at is None:
                quick = now - child.started < self.stable
                child.failures = child.failures + 1 if quick else 1
                delay = min(self.max_backoff, 2.0 ** (child.failures - 1))
                child.restart_at = now + delay
                code = child.proc.returncode
                say(f"进程 {child.name} 已退出 (code {code})，{delay:.0f} 秒后重启；其他进程照常服务")
            if now >= child.restart_at:
                child.proc = self._spawn(child.cmd, child.cwd, child.env)
                child.started, child.restart_at = now, None
                say(f"已重启 {child.name} (pid {child.proc.pid})")
            else:
                down.append(child.name)
        return down

    def stop_all(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        say("所有进程已停止 (all processes stopped)")


def start_private_redis(sup: Supervisor, url: str = PRIVATE_REDIS_URL, data: Path = PRIVATE_REDIS_DIR) -> str:
    """Start the private ``redis-server`` (unless it runs already) with a password of its own; returns its
    URL with that password.  The password is generated once into ``data/password`` (mode 0600) and given
    to redis-server in a config file of the same mode, never on the command line (``ps`` shows that)."""
    password = private_redis_password(data)
    parts = urlparse(url)
    port = parts.port or 6380
    authed = f"redis://:{password}@{parts.hostname or '127.0.0.1'}:{port}{parts.path or '/0'}"
    if port_open(port):
        say(f"私有 Redis 已在运行: {url}")
        return authed
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit(
            "找不到 redis-server。请安装 (Debian/Ubuntu: apt-get install redis-server) 或设置 REDIS_URL。"
        )
    conf = data / "redis.conf"
    lines = [
        "bind 127.0.0.1", f"port {port}", f'dir "{data}"', "appendonly yes", "save 60 1",
        "protected-mode yes", f"requirepass {password}",
    ]  # fmt: skip
    _write_private(conf, "\n".join(lines) + "\n")
    sup.start("redis", [server, str(conf)])
    if not wait_for_port("127.0.0.1", port, 10):
        raise SystemExit("私有 Redis 启动失败")
    return authed


def private_redis_password(data: Path = PRIVATE_REDIS_DIR) -> str:
    """The private Redis's password, generated on first use."""
    file = data / "password"
    if not file.exists():
        _write_private(file, secrets.token_hex(24) + "\n")
    return file.read_text().strip()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def run_all() -> int:
    from bot.core.config import load_env_files
    from bot.gateway.startup import check_startup

    env_file = load_env_files()
    check_startup(get_settings())
    sup = Supervisor()
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        settings = _announce_and_redis(sup, env_file)
        asyncio.run(_prepare_data(settings))
        train_if_needed()
        _start_fakes(sup, settings)
        _start_services(sup, settings)
        wait_for_port(settings.host, settings.port, 20)
        say(f"网关: http://{settings.host}:{settings.port}  (微信回调 /wechat，健康检查 /healthz)")
        say("Rasa 正在加载模型（约 20-40 秒），就绪前机器人会礼貌地回复稍后再试。")
        say(f"工作台: http://{settings.host}:{settings.port}/console/  （演示账号见 README）")
        say("试用: 另开终端运行 `.venv/bin/govbot login` 后 `.venv/bin/govbot chat`；Ctrl-C 停止全部进程。")
        while not stopping:
            sup.tend()  # a crashed worker, action server or Rasa server is restarted with back-off
            time.sleep(0.5)
        return 0
    finally:
        sup.stop_all()


def _announce_and_redis(sup: Supervisor, env_file: Path | None) -> Settings:
    """Say which configuration runs; start the private Redis unless REDIS_URL is given."""
    say(f"配置文件: {env_file.name if env_file else '(仅环境变量)'}")
    settings = get_settings()
    if settings.demo:
        say(
            "演示模式 (GOVBOT_MODE=demo)：使用 .env.example 中公开的演示值，只监听本机；"
            "生产请设置 GOVBOT_MODE=production"
        )
    if not Env().raw("REDIS_URL"):
        redis_url = start_private_redis(sup)
        os.environ["REDIS_URL"] = redis_url  # for every process started below
        settings = dataclasses.replace(settings, redis_url=redis_url)
    return settings


def _start_fakes(sup: Supervisor, settings: Settings) -> None:
    """The fakes of the outside world, for every external base URL that points at this machine."""
    api = urlparse(settings.wechat_api_base)
    if api.hostname in LOCAL:
        templates = [
            t
            for t in (
                ProgressSettings.from_env().template_id,
                ComplaintSettings.from_env().template_id,
                NoticeSettings.from_env().template_id,
            )
            if t
        ]
        sup.start(  # secrets go in the environment, not the arguments (`ps` shows those to everyone)
            "wechat-api-fake",
            [sys.executable, "-m", "bot.adapters.wechat.fake_api", "--host", "127.0.0.1",
             "--port", str(api.port or 80), "--app-id", settings.wechat_app_id,
             *[arg for t in templates for arg in ("--template-id", t)],
             "--event-url", f"{settings.public_base_url}/wechat"],
            env={"WECHAT_APP_SECRET": settings.wechat_app_secret.get_secret_value(),
                 "WECHAT_TOKEN": settings.wechat_token.get_secret_value(),
                 "WECHAT_ENCODING_AES_KEY": settings.wechat_encoding_aes_key.get_secret_value()
                 if settings.wechat_message_mode != "plain" else ""},
        )  # fmt: skip
    approval = ApprovalSettings.from_env()
    if urlparse(approval.api_base).hostname in LOCAL:
        sup.start(
            "approval-reference-backend",
            [sys.executable, "-m", "bot.adapters.approval.reference_backend", "--host", "127.0.0.1",
             "--port", str(approval.reference_port), "--db", str(approval.reference_db)],
            env={"APPROVAL_API_TOKEN": approval.api_token.get_secret_value()},
        )  # fmt: skip
    sms = SmsSettings.from_env()
    twilio = urlparse(sms.twilio_api_base)
    if sms.provider == "twilio" and twilio.hostname in LOCAL:
        sup.start(
            "twilio-fake",
            [sys.executable, "-m", "sms_gateway.twilio.fake", "--host", "127.0.0.1",
             "--port", str(twilio.port or 80)],
        )  # fmt: skip
    aliyun = urlparse(
        sms.aliyun_endpoint if "://" in sms.aliyun_endpoint else f"https://{sms.aliyun_endpoint}"
    )
    if sms.provider == "aliyun" and aliyun.hostname in LOCAL:
        sup.start(  # the key pair and the push token reach it through the environment
            "aliyun-sms-fake",
            [sys.executable, "-m", "sms_gateway.aliyun.fake", "--host", "127.0.0.1",
             "--port", str(aliyun.port or 80), "--sign", sms.signature,
             "--templates", str(sms.aliyun_templates),
             "--push-base", f"{sms.public_base_url}/sms/aliyun"],
            env={"ALIBABA_CLOUD_ACCESS_KEY_ID": sms.aliyun_access_key_id,
                 "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sms.aliyun_access_key_secret.get_secret_value(),
                 "ALIYUN_SMS_PUSH_TOKEN": sms.aliyun_push_token.get_secret_value()},
        )  # fmt: skip


def _start_services(sup: Supervisor, settings: Settings) -> None:
    """Broadcast workers, the action server, the Rasa servers and the gateway workers."""
    sms = SmsSettings.from_env()
    if sms.enabled and sms.configured:
        for i in range(BroadcastSettings.from_env().workers):
            sup.start(f"broadcast-worker-{i + 1}", [sys.executable, "-m", "sms_gateway.broadcast.worker"])
    sup.start("actions", [sys.executable, "-m", "bot", "actions"])
    for name, port in local_rasa_servers(settings):
        sup.start(name, rasa_command(port), cwd=DIALOGUES, env=rasa_env(settings))
    # Every gateway worker spreads turns over all Rasa servers (bot/gateway/conversation/dialogue.py).
    gateway_env = {"RASA_URL": ",".join(settings.rasa_urls)}
    for i in range(settings.gateway_workers):
        sup.start(f"gateway-{i + 1}", [sys.executable, "-m", "bot", "serve"], env=gateway_env)


async def _prepare_data(settings: Settings) -> None:
    import redis.asyncio as aioredis

    from bot.core.db import create_engine, session_factory
    from bot.core.migrate import upgrade
    from bot.domains.staff import DEMO_PASSWORD, Staff
    from bot.domains.staff.config import StaffSettings
    from bot.gateway.startup import prepare_staff
    from knowledge_base.cli import ensure_sample_loaded

    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    redis = aioredis.from_url(settings.redis_url, decode_responses=False)
    try:
        if await ensure_sample_loaded(session_factory(engine)):
            say("已导入示例办事指南目录 (sample catalogue loaded)")
        staff = Staff.build(session_factory(engine), redis, StaffSettings.from_env())
        created = await prepare_staff(settings, staff)
        if created:
            say(f"已创建演示账号（密码 {DEMO_PASSWORD}）：{', '.join(created)}")
    finally:
        await engine.dispose()
        await redis.aclose()
