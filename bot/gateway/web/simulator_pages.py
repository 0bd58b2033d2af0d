"""微信模拟器: staff type as a citizen.  Each message is signed and encrypted as WeChat's servers do it
(:mod:`bot.gateway.web.simulate`), POSTed over HTTP to this very gateway's ``/wechat``, and the passive
reply decrypted and shown; when the WeChat API fake is in use (``WECHAT_API_BASE`` on this machine), the
customer-service pushes and template notices it recorded for the simulated openid are shown too.

The conversation so far is kept in Redis per staff account and openid (12 hours)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from bot.core.clock import utcnow
from bot.core.masking import mask_phone, mask_text
from bot.gateway.channels.sms.channel import SmsChannel
from bot.gateway.staff.auth import actor_of, audit
from bot.gateway.web.app_services import services_of
from bot.gateway.web.listing import BEIJING
from bot.gateway.web.render import PREFIX, page
from bot.gateway.web.simulate import (
    OPENID,
    PHONE,
    ReplyError,
    TwilioSigner,
    WeChatSigner,
    new_openid,
    new_phone,
    read_twiml,
)

log = logging.getLogger(__name__)

PATH = PREFIX + "/simulator"
KEEP = 100  # lines of conversation kept
TTL = 12 * 3600
MAX_TEXT = 600
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=15)


def _key(account_id: int, ident: str) -> str:
    return f"console:simulator:{account_id}:{ident}"  # ident: an openid, or sms:+E.164


def _openid_of(raw: str | None) -> str | None:
    return raw if raw and OPENID.fullmatch(raw) else None


def gateway_base(request: web.Request) -> str:
    """Where this gateway is reached over HTTP: the local address of this very connection (so the message
    goes to this process, not through a proxy), else ``PUBLIC_BASE_URL``."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = str(sockname[0]), int(sockname[1])
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return str(services_of(request).settings.public_base_url).rstrip("/")


def fake_api_base(request: web.Request) -> str | None:
    """The WeChat API fake's base URL when ``WECHAT_API_BASE`` points at this machine, else None."""
    base = services_of(request).settings.wechat_api_base.rstrip("/")
    parts = urlsplit(base)
    return base if parts.scheme == "http" and (parts.hostname or "") in LOCAL_HOSTS else None


async def _history(request: web.Request, openid: str) -> list[dict[str, Any]]:
    redis = services_of(request).redis
    rows = await redis.lrange(_key(actor_of(request).account_id, openid), 0, -1)
    return [json.loads(r) for r in rows]


async def _remember(request: web.Request, openid: str, *lines: dict[str, Any]) -> None:
    redis = services_of(request).redis
    key = _key(actor_of(request).account_id, openid)
    for line in lines:
        await redis.rpush(key, json.dumps(line, ensure_ascii=False))
    await redis.ltrim(key, -KEEP, -1)
    await redis.expire(key, TTL)


def _now() -> str:
    return utcnow().astimezone(BEIJING).strftime("%H:%M:%S")


async def pushes_for(request: web.Request, openid: str) -> tuple[list[dict[str, str]], str]:
    """The fake's recorded pushes to ``openid`` (kind, time, text) and an error note ('' when fine)."""
    base = fake_api_base(request)
    if base is None:
        return [], ""
    http = services_of(request).http
    try:
        async with http.get(f"{base}/_fake/sent", params={"touser": openid},
                            timeout=aiohttp.ClientTimeout(total=3)) as resp:  # fmt: skip
            sent = await resp.json() if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        sent = None
    if not isinstance(sent, list):
        return [], "无法读取微信接口模拟服务记录的推送"
    out = []
    for item in sent:
        payload = item.get("payload") or {}
        at = item.get("time")
        when = ""
        if isinstance(at, int | float):
            when = datetime.fromtimestamp(at, BEIJING).strftime("%H:%M:%S")
        if item.get("kind") == "template":
            data = payload.get("data") or {}
            lines = [f"{k}：{(v or {}).get('value', '')}" for k, v in data.items() if isinstance(v, dict)]
            text = "\n".join(lines)
            out.append({"kind": "模板消息", "time": when, "text": text,
                        "detail": str(payload.get("template_id", ""))})  # fmt: skip
        else:
            text = str((payload.get("text") or {}).get("content", "")) or f"[{payload.get('msgtype', '?')}]"
            out.append({"kind": "客服消息", "time": when, "text": text, "detail": ""})
    return out, ""


async def _values(request: web.Request, openid: str, error: str = "", text: str = "") -> dict[str, Any]:
    pushes, push_error = await pushes_for(request, openid)
    settings = services_of(request).settings
    return {
        "openid": openid,
        "ident_field": "openid",
        "ident": openid,
        "post_to": PATH,
        "max_text": MAX_TEXT,
        "new_openid": new_openid(),
        "history": await _history(request, openid),
        "pushes": pushes,
        "push_error": push_error,
        "fake": fake_api_base(request) is not None,
        "mode": settings.wechat_message_mode,
        "error": error,
        "text": text,
    }


async def simulator(request: web.Request) -> web.Response:
    openid = _openid_of(request.query.get("openid")) or new_openid()
    return page(request, "simulator.html", await _values(request, openid))


async def pushes(request: web.Request) -> web.Response:
    openid = _openid_of(request.query.get("openid"))
    if openid is None:
        raise web.HTTPBadRequest(text="openid")
    found, push_error = await pushes_for(request, openid)
    values = {"openid": openid, "pushes": found, "push_error": push_error, "fake": True}
    return page(request, "simulator_pushes.html", values)


async def send(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    openid = _openid_of(str(form.get("openid", "")))
    text = str(form.get("text", "")).strip()
    htmx = request.headers.get("HX-Request") == "true"
    if openid is None:
        error = "openid 须为 6-64 位字母、数字、下划线或连字符"
        return page(request, "simulator.html", await _values(request, new_openid(), error, text), status=400)
    if not text or len(text) > MAX_TEXT:
        error = "请输入要发送的文字" if not text else f"一条消息最多 {MAX_TEXT} 字"
        values = await _values(request, openid, error, text)
        if htmx:  # htmx swaps only successful answers: the error shows next to the field
            return page(request, "simulator_chat.html", values)
        return page(request, "simulator.html", values, status=400)
    lines: list[dict[str, Any]] = [{"who": "me", "text": text, "at": _now()}]
    result = await _deliver(request, openid, text)
    lines.append({**result, "at": _now()})
    await _remember(request, openid, *lines)
    await audit(request, "chat.simulate", object_type="wechat", object_id=mask_text(openid),
                summary={"text": mask_text(text)[:200], "outcome": result["who"]})  # fmt: skip
    if htmx:
        return page(request, "simulator_chat.html", await _values(request, openid))
    raise web.HTTPSeeOther(f"{PATH}?openid={openid}")


async def _deliver(request: web.Request, openid: str, text: str) -> dict[str, Any]:
    """POST the signed message to /wechat; the line to show: the bot's reply or a note."""
    services = services_of(request)
    signer = WeChatSigner.from_settings(services.settings)
    signed = signer.sign_text(openid, text)
    url = gateway_base(request) + signed.path_qs
    try:
        async with services.http.post(url, data=signed.body, headers={"Content-Type": "text/xml"},
                                      timeout=HTTP_TIMEOUT) as resp:  # fmt: skip
            status, body = resp.status, await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("simulator could not reach /wechat", extra={"error": type(exc).__name__})
        return {"who": "note", "text": f"无法连接本网关的 /wechat：{type(exc).__name__}"}
    if status != 200:
        return {"who": "note", "text": f"/wechat 拒绝了消息（HTTP {status}）：请检查 WECHAT_TOKEN 等配置"}
    try:
        reply = signer.read_reply(body)
    except ReplyError as exc:
        return {"who": "note", "text": str(exc)}
    if reply.transfer:
        return {"who": "note", "text": "已转人工客服（transfer_customer_service）"}
    if not reply.text:
        return {"who": "note", "text": "被动回复为 success：回复将通过客服消息推送（见下方“后续推送”）"}
    return {"who": "bot", "text": reply.text, "encrypted": reply.encrypted}


# ---------------------------------------------------------------------------------------------- SMS twin

SMS_PATH = PATH + "/sms"
MAX_SMS = 300


def sms_channel(request: web.Request) -> SmsChannel | None:
    return next((c for c in services_of(request).channels if isinstance(c, SmsChannel)), None)


def _phone_of(raw: str | None) -> str | None:
    return raw if raw and PHONE.fullmatch(raw) else None


async def _sms_values(request: web.Request, phone: str, error: str = "", text: str = "") -> dict[str, Any]:
    return {
        "phone": phone,
        "ident_field": "phone",
        "ident": phone,
        "post_to": SMS_PATH,
        "max_text": MAX_SMS,
        "new_phone": new_phone(),
        "enabled": sms_channel(request) is not None,
        "history": await _history(request, f"sms:{phone}"),
        "error": error,
        "text": text,
    }


async def sms_simulator(request: web.Request) -> web.Response:
    phone = _phone_of(request.query.get("phone")) or new_phone()
    return page(request, "simulator_sms.html", await _sms_values(request, phone))


async def sms_send(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    phone = _phone_of(str(form.get("phone", "")))
    text = str(form.get("text", "")).strip()
    htmx = request.headers.get("HX-Request") == "true"
    if phone is None:
        error = "手机号须为国际格式，如 +8613812345678"
        return page(request, "simulator_sms.html", await _sms_values(request, new_phone(), error, text), 400)
    if not text or len(text) > MAX_SMS:
        error = "请输入要发送的文字" if not text else f"一条短信最多 {MAX_SMS} 字"
        values = await _sms_values(request, phone, error, text)
        return page(
            request, "simulator_chat.html" if htmx else "simulator_sms.html", values, 200 if htmx else 400
        )
    lines: list[dict[str, Any]] = [{"who": "me", "text": text, "at": _now()}]
    lines += [{**line, "at": _now()} for line in await _deliver_sms(request, phone, text)]
    await _remember(request, f"sms:{phone}", *lines)
    await audit(request, "chat.simulate", object_type="sms", object_id=mask_phone(phone),
                summary={"text": mask_text(text)[:200], "outcome": lines[-1]["who"]})  # fmt: skip
    if htmx:
        return page(request, "simulator_chat.html", await _sms_values(request, phone))
    raise web.HTTPSeeOther(f"{SMS_PATH}?{urlencode({'phone': phone})}")


async def _deliver_sms(request: web.Request, phone: str, text: str) -> list[dict[str, Any]]:
    """POST the signed webhook to /sms/twilio; the lines to show: the TwiML reply's messages or a note."""
    channel = sms_channel(request)
    if channel is not None and channel.provider.name == "aliyun":
        return await _deliver_sms_push(request, channel, phone, text)
    if channel is None or channel.provider.name != "twilio":
        return [{"who": "note", "text": "短信渠道未启用（需配置 SMS_PROVIDER 及其凭据）"}]
    s = channel.settings
    signer = TwilioSigner(s.twilio_account_sid, s.twilio_auth_token.get_secret_value(), s.public_base_url,
                          s.twilio_from_number or "+10000000000")  # fmt: skip
    signed = signer.sign_inbound(phone, text)
    url = gateway_base(request) + signed.path
    http = services_of(request).http
    try:
        async with http.post(url, data=signed.form, headers=signed.headers, timeout=HTTP_TIMEOUT) as resp:
            status, body = resp.status, await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("simulator could not reach /sms/twilio", extra={"error": type(exc).__name__})
        return [{"who": "note", "text": f"无法连接本网关的 /sms/twilio：{type(exc).__name__}"}]
    if status != 200:
        return [
            {
                "who": "note",
                "text": f"/sms/twilio 拒绝了短信（HTTP {status}）：请检查 PUBLIC_BASE_URL 与 Twilio 配置",
            }
        ]
    try:
        texts = read_twiml(body)
    except ReplyError as exc:
        return [{"who": "note", "text": str(exc)}]
    if not texts:
        return [{"who": "note", "text": "TwiML 回复为空：回复未及时生成或无需回复，将稍后经短信接口发送"}]
    return [{"who": "bot", "text": t} for t in texts]


async def _deliver_sms_push(
    request: web.Request, channel: SmsChannel, phone: str, text: str
) -> list[dict[str, Any]]:
    """Alibaba Cloud: POST the SmsUp push Aliyun would send (to our own push URL, with its token); the reply
    goes through the ledger, so show the messages written for this number within a few seconds."""
    if not re.fullmatch(r"\+861[3-9]\d{9}", phone):
        return [{"who": "note", "text": "阿里云短信只收发大陆手机号（+861…）"}]
    token = channel.settings.aliyun_push_token.get_secret_value()
    before = {e.id for e in await channel.outbox.entries(recipient=phone)}
    record = {"phone_number": phone[3:], "content": text, "dest_code": "1",
              "send_time": utcnow().astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
              "sequence_id": f"sim-{secrets.token_hex(8)}"}  # fmt: skip
    url = gateway_base(request) + channel.provider.paths()[0].format(token=token)  # the SmsUp push path
    try:
        async with services_of(request).http.post(url, json=[record], timeout=HTTP_TIMEOUT) as resp:
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [{"who": "note", "text": f"无法连接本网关的阿里云推送地址：{type(exc).__name__}"}]
    if status != 200:
        return [
            {"who": "note", "text": f"推送地址拒绝了上行短信（HTTP {status}）：请检查 ALIYUN_SMS_PUSH_TOKEN"}
        ]
    for _ in range(40):  # the reply is written by the background turn: up to 8 s
        await asyncio.sleep(0.2)
        fresh = [e for e in await channel.outbox.entries(recipient=phone) if e.id not in before]
        if fresh and await channel.inbox.pending() == 0:
            return [{"who": "bot", "text": e.body} for e in fresh]
    return [{"who": "note", "text": "回复尚未生成，将稍后经短信接口发送"}]


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get(PATH, simulator),
            web.post(PATH, send),
            web.get(PATH + "/pushes", pushes),
            web.get(SMS_PATH, sms_simulator),
            web.post(SMS_PATH, sms_send),
        ]
    )
