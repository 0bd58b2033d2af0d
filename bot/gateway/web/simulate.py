"""Messages signed and encrypted exactly as WeChat's servers sign and encrypt them (wechatpy's own crypto),
for the console's WeChat simulator: what a citizen's message looks like on the wire to ``POST /wechat``,
and the reading of the (encrypted) passive reply.  No I/O here; secrets never leave these objects (their
``repr`` hides them) and nothing is logged."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import xmltodict
from wechatpy.crypto import WeChatCrypto

from bot.core.config import Settings

OPENID = re.compile(r"[A-Za-z0-9_-]{6,64}")
_OPENID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def new_openid() -> str:
    """An openid shaped like WeChat's (28 characters starting with ``o``)."""
    return "o" + "".join(secrets.choice(_OPENID_ALPHABET) for _ in range(27))


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SignedRequest:
    """The path with its query (``/wechat?signature=…``) and the XML body to POST."""

    path_qs: str
    body: bytes
    nonce: str
    timestamp: str


@dataclass(frozen=True)
class WeChatReply:
    """What the gateway answered: its text (empty for ``success``), whether it hands the citizen to human
    agents, and whether the reply came encrypted and its signature checked."""

    text: str = ""
    transfer: bool = False
    encrypted: bool = False
    raw_type: str = ""


class ReplyError(ValueError):
    """The reply could not be read (bad signature, not XML)."""


@dataclass(frozen=True)
class WeChatSigner:
    token: str = field(repr=False)
    aes_key: str = field(repr=False)
    app_id: str
    mode: str  # plain | compatible | safe
    account: str = "gh_simulator"  # ToUserName: the official account's original id

    @classmethod
    def from_settings(cls, settings: Settings) -> WeChatSigner:
        return cls(
            token=settings.wechat_token.get_secret_value(),
            aes_key=settings.wechat_encoding_aes_key.get_secret_value(),
            app_id=settings.wechat_app_id,
            mode=settings.wechat_message_mode,
        )

    @property
    def encrypts(self) -> bool:
        return self.mode in ("safe", "compatible") and bool(self.aes_key)

    def _crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.app_id)

    def message_xml(self, openid: str, text: str, now: int, msg_id: int) -> str:
        data = {
            "ToUserName": self.account,
            "FromUserName": openid,
            "CreateTime": now,
            "MsgType": "text",
            "Content": text,
            "MsgId": msg_id,
        }
        return str(xmltodict.unparse({"xml": data}, full_document=False))

    def sign_text(
        self,
        openid: str,
        text: str,
        *,
        now: int | None = None,
        nonce: str | None = None,
        msg_id: int | None = None,
    ) -> SignedRequest:
        """A text message from ``openid`` as WeChat would POST it to our URL."""
        ts = str(now if now is not None else int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10)).zfill(10)
        msg_id = msg_id if msg_id is not None else time.time_ns() // 1000 + secrets.randbelow(1000)
        xml = self.message_xml(openid, text, int(ts), msg_id)
        query = {"signature": sha1_signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce,
                 "openid": openid}  # fmt: skip
        body = xml.encode("utf-8")
        if self.encrypts:
            envelope = xmltodict.parse(self._crypto().encrypt_message(xml, nonce, ts))["xml"]
            encrypt = envelope["Encrypt"]
            query["encrypt_type"] = "aes"
            query["msg_signature"] = sha1_signature(self.token, ts, nonce, encrypt)
            inner: dict[str, Any] = {"ToUserName": self.account, "Encrypt": encrypt}
            if self.mode == "compatible":  # the plaintext fields travel alongside the ciphertext
                inner = {**xmltodict.parse(xml)["xml"], "Encrypt": encrypt}
            body = xmltodict.unparse({"xml": inner}, full_document=False).encode("utf-8")
        return SignedRequest("/wechat?" + urlencode(query), body, nonce, ts)

    def read_reply(self, body: str) -> WeChatReply:
        """The passive reply: decrypted (its ``MsgSignature`` checked) when it came encrypted."""
        body = body.strip()
        if body in ("", "success"):
            return WeChatReply()
        encrypted = "<Encrypt>" in body
        try:
            if encrypted:
                if not self.aes_key:
                    raise ReplyError("回复已加密，但未配置 EncodingAESKey")
                env = xmltodict.parse(body)["xml"]
                body = self._crypto().decrypt_message(
                    body, env["MsgSignature"], env["TimeStamp"], env["Nonce"]
                )
            data = xmltodict.parse(body)["xml"]
        except ReplyError:
            raise
        except Exception as exc:  # a bad signature, padding or XML
            raise ReplyError(f"无法读取回复：{type(exc).__name__}") from None
        kind = str(data.get("MsgType") or "")
        if kind == "transfer_customer_service":
            return WeChatReply(transfer=True, encrypted=encrypted, raw_type=kind)
        return WeChatReply(text=str(data.get("Content") or ""), encrypted=encrypted, raw_type=kind)


# ---------------------------------------------------------------------------------------------- SMS (Twilio)

PHONE = re.compile(r"\+[1-9]\d{7,14}")


def new_phone() -> str:
    """A made-up mainland mobile number in E.164 (the 1990 block, not issued to subscribers in the area)."""
    return "+86199" + str(secrets.randbelow(10**8)).zfill(8)


@dataclass(frozen=True)
class SignedSms:
    path: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class TwilioSigner:
    """An incoming SMS as Twilio posts it: the form fields of its webhook, signed with the account's auth
    token over the public URL (``RequestValidator.compute_signature``), as ``X-Twilio-Signature``."""

    account_sid: str
    auth_token: str = field(repr=False)
    public_base_url: str
    to_number: str

    def sign_inbound(self, sender: str, text: str, message_sid: str | None = None) -> SignedSms:
        from twilio.request_validator import RequestValidator

        sid = message_sid or "SM" + secrets.token_hex(16)
        form = {
            "ToCountry": "", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
            "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
            "Body": text, "FromCountry": "CN", "To": self.to_number, "ToZip": "", "NumSegments": "1",
            "MessageSid": sid, "AccountSid": self.account_sid, "From": sender, "ApiVersion": "2010-04-01",
        }  # fmt: skip
        path = "/sms/twilio"
        signature = RequestValidator(self.auth_token).compute_signature(self.public_base_url + path, form)
        return SignedSms(path, form, {"X-Twilio-Signature": signature})


def read_twiml(body: str) -> list[str]:
    """The texts of a TwiML answer's ``<Message>`` elements (none: the reply is sent later)."""
    try:
        response = xmltodict.parse(body, force_list=("Message",)).get("Response") or {}
    except Exception:
        raise ReplyError("无法读取 TwiML 回复") from None
    texts = []
    for message in response.get("Message") or [] if isinstance(response, dict) else []:
        if isinstance(message, dict):
            message = message.get("#text") or message.get("Body") or ""
        texts.append(str(message or ""))
    return texts
