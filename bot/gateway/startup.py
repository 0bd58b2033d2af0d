"""Fail closed: the gateway refuses to start with secrets anyone could know, or without an administrator.

Outside demo mode, and in any mode when the gateway binds an address other than loopback, every required
secret must be set, and no secret may equal a value published in ``.env.example`` (our repository is
public: those values are known to everyone who has read it).  ``govbot run`` and ``govbot serve`` call
:func:`check_startup` before they start anything; the message names each variable to fix.  Then
:func:`prepare_staff`: in demo mode the demo accounts are created; otherwise there must be an active
administrator (``govbot staff create-admin`` makes the first one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from bot.adapters.approval.config import ApprovalSettings
from bot.core.config import Settings, published_demo_values
from bot.core.env import Secret
from bot.domains.staff import Staff
from sms_gateway.config import SmsSettings


@dataclass(frozen=True)
class Credential:
    variable: str
    value: str
    required: bool


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials(core: Settings, sms: SmsSettings, approval: ApprovalSettings) -> list[Credential]:
    """What must be secret, and whether this configuration needs it."""

    def reveal(secret: Secret) -> str:
        return secret.get_secret_value()

    return [
        Credential("WECHAT_TOKEN", reveal(core.wechat_token), True),
        Credential("WECHAT_APP_ID", core.wechat_app_id, True),
        Credential("WECHAT_APP_SECRET", reveal(core.wechat_app_secret), True),
        Credential(
            "WECHAT_ENCODING_AES_KEY",
            reveal(core.wechat_encoding_aes_key),
            core.wechat_message_mode != "plain",
        ),
        Credential("TWILIO_AUTH_TOKEN", reveal(sms.twilio_auth_token), sms.provider == "twilio"),
        Credential(
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET", reveal(sms.aliyun_access_key_secret), sms.provider == "aliyun"
        ),
        Credential("ALIYUN_SMS_PUSH_TOKEN", reveal(sms.aliyun_push_token), sms.provider == "aliyun"),
        Credential("APPROVAL_API_TOKEN", reveal(approval.api_token), False),
    ]


def refusals(items: list[Credential], published: Mapping[str, str]) -> list[str]:
    """One line per variable that must change (empty when the configuration may start)."""
    problems = []
    for item in items:
        known = published.get(item.variable, "")
        if item.required and not item.value:
            problems.append(f"{item.variable} 未设置 (is empty)")
        elif item.value and known and _same_values(item.value, known):
            problems.append(f"{item.variable} 仍是 .env.example 中公开的演示值 (is the public demo value)")
    return problems


def _same_values(value: str, known: str) -> bool:
    """Equal, or (for a comma-separated list) sharing any member with the published list."""
    mine = {v.strip() for v in value.split(",") if v.strip()}
    theirs = {v.strip() for v in known.split(",") if v.strip()}
    return value == known or bool(mine & theirs)


def must_check(core: Settings) -> bool:
    return not core.demo or not is_loopback(core.host)


def check_startup(core: Settings) -> None:
    """Raise ``SystemExit`` with a message naming every variable to fix, when this configuration may not
    start (see the module docstring)."""
    if not must_check(core):
        return
    items = credentials(core, SmsSettings.from_env(), ApprovalSettings.from_env())
    problems = refusals(items, published_demo_values())
    if core.wechat_message_mode == "plain" and not core.wechat_plaintext_allowed:
        problems.append(
            "WECHAT_MESSAGE_MODE=plain 时消息正文未经签名；请改用 safe，或设置 WECHAT_ALLOW_PLAIN=1 表示接受 "
            "(plain mode signs no message body: use safe, or set WECHAT_ALLOW_PLAIN=1 to accept that)"
        )
    if problems:
        why = "非演示模式" if not core.demo else f"监听非本机地址 HOST={core.host}"
        lines = "\n".join(f"  - {p}" for p in problems)
        raise SystemExit(
            f"拒绝启动（{why}）：以下变量必须设置为只有您知道的值 (refusing to start: set these variables to "
            f"values only you know):\n{lines}\n"
            "演示请用 GOVBOT_MODE=demo 并只监听 127.0.0.1 (for a demo: GOVBOT_MODE=demo on 127.0.0.1)."
        )


async def prepare_staff(core: Settings, staff: Staff) -> list[str]:
    """Demo mode: create the missing demo accounts (their usernames).  Otherwise refuse to start without an
    active administrator."""
    if core.demo:
        return await staff.ensure_demo_accounts()
    if not await staff.accounts.has_active_admin():
        raise SystemExit(
            "拒绝启动：还没有管理员账号。请先运行 `govbot staff create-admin` 创建第一个管理员 "
            "(refusing to start: no administrator; run `govbot staff create-admin`)."
        )
    return []
