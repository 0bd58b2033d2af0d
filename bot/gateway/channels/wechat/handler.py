"""WeChat official-account channel: ``GET /wechat`` (URL verification) and ``POST /wechat`` (messages).

Every POST is verified (``signature``; in safe mode also ``msg_signature`` over the ciphertext) with
constant-time comparison and a timestamp window, then handed to the shared webhook protocol
(:mod:`bot.gateway.channels.webhook`; WeChat retries a request up to three times when it gets no answer in
5 s): answered passively when the reply is ready before the deadline (default 4.0 s from receipt), else
``success`` at once and the reply pushed later through the customer-service API within its quota (what
cannot be delivered is recorded).  This module keeps what is WeChat's own: verify, decrypt, parse, render
and push.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply, TransferCustomerServiceReply

from bot.adapters.wechat.api_client import WeChatAPI, WeChatAPIError
from bot.core.config import Settings
from bot.core.masking import mask_sender
from bot.core.metrics import Metrics
from bot.gateway import messages
from bot.gateway.channels.textsplit import pack, split_by_bytes, utf8_len
from bot.gateway.channels.webhook import WebhookProtocol, read_body
from bot.gateway.channels.wechat.cs_quota import CsQuota
from bot.gateway.channels.wechat.followers import FollowerStore
from bot.gateway.channels.wechat.menu import MenuConfig
from bot.gateway.conversation.service import Conversation, Inbound, Outcome
from bot.gateway.undelivered import UndeliveredLog

log = logging.getLogger(__name__)

PASSIVE_TEXT_LIMIT = 2048  # bytes of UTF-8, WeChat's limit for a passive text reply
DEDUP_TTL = 300
SUCCESS = "success"
QUOTA_GONE = {45015, 45047}  # window closed / response count used up
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNSUPPORTED_MEDIA = {"image", "location", "link", "video", "shortvideo", "miniprogrampage"}


class BadRequest(Exception):
    """The request is malformed (400)."""


class Forbidden(Exception):
    """The request is not from WeChat (403)."""


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


@dataclass
class Reply:
    """What a WeChat request is answered with: passive text parts, a transfer to human agents, or nothing."""

    texts: list[str]
    transfer: bool = False


def _flatten_repeated_fields(msg: Any) -> None:
    """A message with an element twice (two ``<Content>``) parses to a list: read it as the texts joined,
    so the citizen gets an answer instead of a TypeError (WeChat never sends this; a crafted one might).
    An element with attributes or child elements parses to a dict: that message is malformed."""
    for name in ("source", "target"):
        if isinstance(getattr(msg, name, None), list | dict):
            raise BadRequest(f"repeated or nested {name}")
    for name in ("content", "event", "key", "scene_id", "media_id", "recognition"):
        value = getattr(msg, name, None)
        if isinstance(value, dict):
            raise BadRequest(f"nested {name}")
        if isinstance(value, list):
            setattr(msg, name, "\n".join(str(v) for v in value if isinstance(v, str) and v))


def _check_numbers(msg: Any) -> None:
    """``MsgId`` and ``CreateTime`` are numbers in every real message; wechatpy converts them only when read
    (for the dedup key), so a crafted ``<CreateTime>x</CreateTime>`` is refused here, not failing there."""
    for name in ("id", "time"):
        try:
            getattr(msg, name)
        except ValueError as exc:
            raise BadRequest(f"{name} is not a number") from exc


class WeChatChannel:
    name = "wechat"

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        conversation: Conversation,
        api: WeChatAPI,
        quota: CsQuota,
        followers: FollowerStore,
        undelivered: UndeliveredLog,
        metrics: Metrics,
        menu: MenuConfig | None = None,
    ) -> None:
        self._s = settings
        self._redis = redis
        self._conversation = conversation
        self._api = api
        self._quota = quota
        self._followers = followers
        self._undelivered = undelivered
        self._metrics = metrics
        self._menu = menu or MenuConfig.load()
        # WeChat's MASSSENDJOBFINISH events go here (msg_id, status, counts): bot/domains/mass_send
        self.on_mass_finished: Callable[[int, str, dict[str, int]], Awaitable[None]] | None = None
        # and TEMPLATESENDJOBFINISH (msg_id, status): the template notices of campaigns to bound citizens
        self.on_template_finished: Callable[[int, str], Awaitable[None]] | None = None
        self._crypto: WeChatCrypto | None = None
        self._token = settings.wechat_token.get_secret_value()
        if settings.wechat_encoding_aes_key:
            self._crypto = WeChatCrypto(
                self._token, settings.wechat_encoding_aes_key.get_secret_value(), settings.wechat_app_id
            )
        elif settings.wechat_message_mode != "plain":
            raise ValueError("WECHAT_ENCODING_AES_KEY is required in compatible and safe mode")
        self._protocol: WebhookProtocol[Reply] = WebhookProtocol(
            "wechat",
            redis=redis,
            metrics=metrics,
            deadline=settings.wechat_reply_deadline,
            ttl=max(DEDUP_TTL, 2 * settings.wechat_timestamp_window),  # outlives any replayable request
            ack=SUCCESS,
            fallback=lambda: Reply([messages.fallback_unavailable(settings)]),
        )

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/wechat", self.verify_url), web.post("/wechat", self.receive)]

    async def close(self) -> None:
        await self._protocol.close(grace=10)

    # ------------------------------------------------------------------ verification

    def _check_request(self, request: web.Request) -> tuple[str, str]:
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not (timestamp.isascii() and timestamp.isdigit()) or not nonce:  # "²".isdigit(), int("²") fails
            raise Forbidden("missing timestamp or nonce")
        if abs(time.time() - int(timestamp)) > self._s.wechat_timestamp_window:
            raise Forbidden("stale timestamp")
        expected = sha1_signature(self._token, timestamp, nonce)
        if not signature_ok(expected, q.get("signature")):
            raise Forbidden("bad signature")
        return timestamp, nonce

    async def verify_url(self, request: web.Request) -> web.Response:
        try:
            self._check_request(request)
        except Forbidden as exc:
            log.warning("wechat url verification rejected", extra={"reason": str(exc)})
            return web.Response(status=403, text="forbidden")
        return web.Response(text=request.query.get("echostr", ""))

    async def _read_xml(self, request: web.Request, timestamp: str, nonce: str) -> tuple[bytes, bool]:
        """The plaintext message XML and whether the reply must be encrypted."""
        body = await read_body(request, self._s.wechat_max_body_bytes)
        if not body.strip():
            raise BadRequest("empty body")
        if _DOCTYPE.search(body):
            raise BadRequest("DOCTYPE/ENTITY not allowed")
        encrypted = request.query.get("encrypt_type", "raw").lower() == "aes"
        mode = self._s.wechat_message_mode
        if mode == "safe" and not encrypted:
            raise Forbidden("safe mode requires encrypt_type=aes")
        await self._check_nonce(timestamp, nonce, body)
        if not encrypted:
            if not self._s.wechat_plaintext_allowed:
                raise Forbidden("plaintext message refused outside demo mode (WECHAT_ALLOW_PLAIN)")
            return body, False
        if self._crypto is None:
            raise Forbidden("encrypted message but no EncodingAESKey configured")
        encrypt = _xml_field(body, "Encrypt")
        if encrypt is None:
            raise BadRequest("no Encrypt element")
        expected = sha1_signature(self._token, timestamp, nonce, encrypt)
        if not signature_ok(expected, request.query.get("msg_signature")):
            raise Forbidden("bad msg_signature")
        try:
            plain = self._crypto.decrypt_message(body, request.query["msg_signature"], timestamp, nonce)
        except InvalidSignatureException as exc:
            raise Forbidden("bad msg_signature") from exc
        except InvalidAppIdException as exc:
            raise Forbidden("message for another AppID") from exc
        except Exception as exc:  # bad base64 / padding / xml in the envelope
            raise BadRequest(f"cannot decrypt: {type(exc).__name__}") from exc
        plain_bytes = plain.encode("utf-8") if isinstance(plain, str) else plain
        if _DOCTYPE.search(plain_bytes):
            raise BadRequest("DOCTYPE/ENTITY not allowed")
        return plain_bytes, True

    async def _check_nonce(self, timestamp: str, nonce: str, body: bytes) -> None:
        """A signature is good for one body: the first request with a (timestamp, nonce) pair records its
        body's digest for twice the timestamp window; the same pair with another body is a replay with a
        forged body (plaintext signatures do not cover the body).  The same body again is WeChat's retry,
        left to the message-id dedup."""
        digest = hashlib.sha256(body).hexdigest()
        key = f"wx:nonce:{timestamp}:{hashlib.sha256(nonce.encode()).hexdigest()[:32]}"
        ttl = 2 * self._s.wechat_timestamp_window
        try:
            if await self._redis.set(key, digest, nx=True, ex=ttl):
                return
            seen = await self._redis.get(key)
        except (RedisError, OSError):
            return  # Redis is down: no turn runs either (the protocol answers with the fallback)
        if seen is not None and (seen.decode() if isinstance(seen, bytes) else str(seen)) != digest:
            raise Forbidden("nonce reused with another body")

    # ------------------------------------------------------------------ receive

    async def receive(self, request: web.Request) -> web.StreamResponse:
        received = time.monotonic()
        outcome = "ok"
        try:
            timestamp, nonce = self._check_request(request)
            xml, encrypt_reply = await self._read_xml(request, timestamp, nonce)
            try:
                msg = parse_message(xml)
            except Exception as exc:
                raise BadRequest(f"malformed XML: {type(exc).__name__}") from exc
            if msg is None or not getattr(msg, "source", None):
                raise BadRequest("not a WeChat message")
            _flatten_repeated_fields(msg)
            _check_numbers(msg)
            openid = msg.source
            body = await self._protocol.answer(
                self._dedup_key(msg),
                received,
                turn=lambda: self._reply_for(msg),
                render=lambda reply: self._render(msg, reply),
                deliver=lambda reply: self._push(openid, pack(reply.texts, PASSIVE_TEXT_LIMIT)),
                log_extra={"sender": mask_sender(f"wx:{openid}")},
            )
            if body != SUCCESS and encrypt_reply and self._crypto is not None:
                body = self._crypto.encrypt_message(body, nonce, timestamp)
            return web.Response(
                text=body, content_type="application/xml" if body != SUCCESS else "text/plain"
            )
        except Forbidden as exc:
            outcome = "forbidden"
            log.warning("wechat request rejected", extra={"reason": str(exc)})
            return web.Response(status=403, text="forbidden")
        except BadRequest as exc:
            outcome = "bad_request"
            log.warning("wechat request malformed", extra={"reason": str(exc)})
            return web.Response(status=400, text="bad request")
        except web.HTTPRequestEntityTooLarge:
            outcome = "too_large"
            log.warning("wechat request too large")
            return web.Response(status=413, text="too large")
        except Exception:
            # Never an error page to WeChat: the citizen would see "该公众号暂时无法提供服务".
            outcome = "error"
            log.exception("wechat request failed")
            return web.Response(text=SUCCESS)
        finally:
            await self._protocol.record_request(outcome, received)

    def _dedup_key(self, msg: Any) -> str:
        if msg.type == "event":
            event = getattr(msg, "event", "")
            key = getattr(msg, "key", None) or getattr(msg, "scene_id", None) or ""
            if event in ("masssendjobfinish", "templatesendjobfinish"):  # several in a second: by MsgID
                key = str(msg.id)
            ident = f"e:{msg.source}:{msg.time}:{event}:{key}"
        else:
            ident = f"m:{msg.source}:{msg.id}:{msg.time}"
        return f"wx:in:{self._s.wechat_app_id}:{ident}"

    async def _render(self, msg: Any, reply: Reply) -> str:
        openid = msg.source
        if reply.transfer:
            if reply.texts:
                self._protocol.spawn(self._push(openid, reply.texts))
            return TransferCustomerServiceReply(**_reply_ends(msg)).render()
        if not reply.texts:
            return SUCCESS
        parts = pack(reply.texts, PASSIVE_TEXT_LIMIT)
        first, rest = parts[0], parts[1:]
        if rest:
            if await self._quota.remaining(openid) >= len(rest):
                self._protocol.spawn(self._push(openid, rest))
            else:
                # No quota to push the rest: keep it for "更多", and say so in the first part.
                hint = "\n" + messages.MORE_HINT
                if utf8_len(first + hint) > PASSIVE_TEXT_LIMIT:
                    head = split_by_bytes(first, PASSIVE_TEXT_LIMIT - utf8_len(hint))
                    first, rest = head[0], head[1:] + rest
                first += hint
                await self._conversation.stash_more(f"wx:{openid}", rest)
        return TextReply(**_reply_ends(msg), content=_cdata(first)).render()

    # ------------------------------------------------------------------ dispatch

    async def _reply_for(self, msg: Any) -> Reply:
        openid = msg.source
        sender = f"wx:{openid}"
        meta = {"openid": openid, "msg_type": msg.type}
        if msg.type == "text":
            await self._quota.record_interaction(openid, "message")
            return await self._converse(Inbound(sender, "wechat", text=msg.content or "", metadata=meta))
        if msg.type == "voice":
            await self._quota.record_interaction(openid, "message")
            if msg.recognition:
                return await self._converse(Inbound(sender, "wechat", text=msg.recognition, metadata=meta))
            return Reply([messages.VOICE_NOT_RECOGNISED])
        if msg.type in _UNSUPPORTED_MEDIA:
            await self._quota.record_interaction(openid, "message")
            return Reply([messages.UNSUPPORTED_MEDIA])
        if msg.type != "event":
            return Reply([])
        event = msg.event
        if event in ("subscribe", "subscribe_scan"):
            scene = getattr(msg, "scene_id", None)
            await self._quota.record_interaction(openid, "subscribe")
            await self._followers.subscribed(openid, scene)
            intent = self._menu.intent_for_scene(scene)
            if intent:
                reply = await self._converse(Inbound(sender, "wechat", intent=intent, metadata=meta))
                return Reply([messages.welcome(self._s), *reply.texts], reply.transfer)
            return Reply([messages.welcome(self._s)])
        if event == "unsubscribe":
            await self._followers.unsubscribed(openid)
            return Reply([])
        if event == "masssendjobfinish":  # from 群发助手, not a citizen: record the counts, answer nothing
            if self.on_mass_finished is not None:
                counts = {"total": msg.total_count, "filtered": msg.filter_count, "sent": msg.sent_count,
                          "errors": msg.error_count}  # fmt: skip
                await self.on_mass_finished(int(msg.id), str(msg.status or ""), counts)
            return Reply([])
        if event == "templatesendjobfinish":  # a template message's fate: recorded, never answered
            if self.on_template_finished is not None:
                await self.on_template_finished(int(msg.id), str(msg.status or ""))
            return Reply([])
        if event == "click":
            await self._quota.record_interaction(openid, "click")
            intent = self._menu.intent_for_click(msg.key)
            if intent is None:
                log.warning("unknown menu key", extra={"key": msg.key})
                return Reply([messages.welcome(self._s)])
            return await self._converse(Inbound(sender, "wechat", intent=intent, metadata=meta))
        if event == "scan":
            await self._quota.record_interaction(openid, "subscribe")
            intent = self._menu.intent_for_scene(msg.scene_id)
            if intent:
                return await self._converse(Inbound(sender, "wechat", intent=intent, metadata=meta))
            return Reply([messages.welcome(self._s)])
        return Reply([])

    async def _converse(self, inbound: Inbound) -> Reply:
        outcome: Outcome = await self._conversation.handle(inbound)
        return Reply(outcome.texts, outcome.transfer_to_agent)

    # ------------------------------------------------------------------ push

    async def _push(self, openid: str, texts: list[str]) -> None:
        sender = f"wx:{openid}"
        for text in texts:
            if not await self._quota.try_consume(openid):
                await self._metrics.inc("govbot_push_total", {"channel": "wechat", "result": "no_quota"})
                await self._undelivered.record(sender, "wechat", text, "cs_quota_exhausted")
                continue
            try:
                await self._api.send_text(openid, text)
                await self._metrics.inc("govbot_push_total", {"channel": "wechat", "result": "sent"})
            except WeChatAPIError as exc:
                if exc.errcode in QUOTA_GONE:
                    await self._quota.mark_exhausted(openid)  # WeChat knows better than our count
                await self._metrics.inc(
                    "govbot_push_total", {"channel": "wechat", "result": str(exc.errcode)}
                )
                await self._undelivered.record(sender, "wechat", text, f"errcode {exc.errcode}")
                log.warning(
                    "customer-service push failed",
                    extra={"sender": mask_sender(sender), "errcode": exc.errcode},
                )
            except Exception as exc:
                await self._metrics.inc("govbot_push_total", {"channel": "wechat", "result": "error"})
                await self._undelivered.record(sender, "wechat", text, type(exc).__name__)
                log.warning(
                    "customer-service push failed", extra={"sender": mask_sender(sender)}, exc_info=True
                )


def _cdata(value: Any) -> Any:
    """A text that stays itself inside wechatpy's ``<![CDATA[...]]>``: a ``]]>`` in it (which would end the
    section and leave the reply XML broken: silence for the citizen) is split over two sections, and
    characters XML forbids (control characters) are dropped."""
    if not isinstance(value, str):
        return value
    return _XML_INVALID.sub("", value).replace("]]>", "]]]]><![CDATA[>")


def _reply_ends(msg: Any) -> dict[str, Any]:
    """Sender and recipient of the reply to ``msg``, safe for its XML."""
    return {"source": _cdata(msg.target), "target": _cdata(msg.source)}


def _xml_field(body: bytes, name: str) -> str | None:
    m = re.search(
        rb"<" + name.encode() + rb">\s*(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))\s*</" + name.encode() + rb">",
        body,
        re.S,
    )
    if not m:
        return None
    return (m.group(1) if m.group(1) is not None else m.group(2)).decode("utf-8", "replace").strip()
