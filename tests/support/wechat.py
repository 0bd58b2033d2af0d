"""Signs and encrypts requests exactly as WeChat's servers do (wechatpy's own crypto), so channel tests
can be written as tables of (label, request, expected status, expected reply)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import xmltodict
from aiohttp.test_utils import TestClient
from wechatpy.crypto import WeChatCrypto

from bot.core.config import Settings
from bot.core.env import Secret

TOKEN = "test-token"
APP_ID = "wx1234567890abcdef"
APP_SECRET = "test-secret"
AES_KEY = "0kardLgiHtjdb9uZh1x/B+PpoWJ9S41cr048sXINIsw"
OPENID = "oUser0000000000000000000001"
ACCOUNT = "gh_0123456789ab"


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


_msg_seq = [int(time.time() * 1000)]


def next_msg_id() -> int:
    _msg_seq[0] += 1
    return _msg_seq[0]


def message_xml(msg_type: str, openid: str = OPENID, create_time: int | None = None, **fields: Any) -> str:
    """A WeChat push: ``message_xml("text", Content="你好")``, ``message_xml("event", Event="subscribe")``."""
    data: dict[str, Any] = {
        "ToUserName": ACCOUNT,
        "FromUserName": openid,
        "CreateTime": create_time or int(time.time()),
        "MsgType": msg_type,
    }
    if msg_type != "event":
        data["MsgId"] = fields.pop("MsgId", None) or next_msg_id()
    data.update(fields)
    return xmltodict.unparse({"xml": data}, full_document=False)


@dataclass
class WeChatRequest:
    """One request as WeChat would send it, with knobs to break it."""

    xml: str | bytes
    mode: str = "safe"  # plain | compatible | safe
    timestamp: int | None = None
    nonce: str = field(default_factory=lambda: str(secrets.randbelow(10**10)).zfill(10))
    signature: str | None = None  # override to forge
    msg_signature: str | None = None  # override to forge
    raw_body: bytes | None = None  # send these bytes instead of the (encrypted) xml
    extra_query: dict[str, str] = field(default_factory=dict)
    _built: dict[tuple[str, str, str], tuple[str, bytes]] = field(default_factory=dict, repr=False)

    def build(self, token: str = TOKEN, aes_key: str = AES_KEY, app_id: str = APP_ID) -> tuple[str, bytes]:
        """The request's path and body; the same each time (a retry by WeChat repeats the same bytes)."""
        key = (token, aes_key, app_id)
        if key not in self._built:
            self._built[key] = self._build(token, aes_key, app_id)
        return self._built[key]

    def _build(self, token: str, aes_key: str, app_id: str) -> tuple[str, bytes]:
        ts = str(self.timestamp if self.timestamp is not None else int(time.time()))
        query = {
            "signature": self.signature or sign(token, ts, self.nonce),
            "timestamp": ts,
            "nonce": self.nonce,
            "openid": OPENID,
        }
        xml = self.xml.decode() if isinstance(self.xml, bytes) else self.xml
        body = xml.encode()
        if self.mode in ("safe", "compatible"):
            crypto = WeChatCrypto(token, aes_key, app_id)
            envelope = crypto.encrypt_message(xml, self.nonce, ts)
            parsed = xmltodict.parse(envelope)["xml"]
            encrypt = parsed["Encrypt"]
            query["encrypt_type"] = "aes"
            query["msg_signature"] = self.msg_signature or sign(token, ts, self.nonce, encrypt)
            inner = {"ToUserName": ACCOUNT, "Encrypt": encrypt}
            if self.mode == "compatible":
                inner = {**xmltodict.parse(xml)["xml"], "Encrypt": encrypt}
            body = xmltodict.unparse({"xml": inner}, full_document=False).encode()
        query.update(self.extra_query)
        if self.raw_body is not None:
            body = self.raw_body
        return "/wechat?" + urlencode(query), body


def decrypt_reply(
    body: str, mode: str, token: str = TOKEN, aes_key: str = AES_KEY, app_id: str = APP_ID
) -> dict:
    """The reply as a dict (``{}`` for ``success``), decrypting and checking its signature in safe mode."""
    if body in ("success", ""):
        return {}
    if mode in ("safe", "compatible") and "<Encrypt>" in body:
        env = xmltodict.parse(body)["xml"]
        crypto = WeChatCrypto(token, aes_key, app_id)
        body = crypto.decrypt_message(body, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
    return dict(xmltodict.parse(body)["xml"])


def settings_for(message_mode: str, api_base: str, db_url: str, **overrides: Any) -> Settings:
    overrides.setdefault("wechat_allow_plain", True)  # most cases send plaintext; the refusal has its own
    return dataclasses.replace(
        Settings(),
        wechat_token=Secret(TOKEN),
        wechat_app_id=APP_ID,
        wechat_app_secret=Secret(APP_SECRET),
        wechat_encoding_aes_key=Secret(AES_KEY),
        wechat_message_mode=message_mode,
        wechat_api_base=api_base,
        database_url=db_url,
        **overrides,
    )


async def post(client: TestClient, req: WeChatRequest) -> tuple[int, str]:
    path, body = req.build()
    resp = await client.post(path, data=body, headers={"Content-Type": "text/xml"})
    return resp.status, await resp.text()


async def pushed(fake_wechat, kind: str = "custom", wait: float = 3.0, count: int = 1) -> list[dict]:
    """What the WeChat API fake received, waiting briefly for background pushes."""
    deadline = time.monotonic() + wait
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(fake_wechat.make_url("/_fake/sent")) as resp:
                sent = [s for s in await resp.json() if kind in s.get("kind", "")]
            if len(sent) >= count or time.monotonic() > deadline:
                return sent
            await asyncio.sleep(0.05)
