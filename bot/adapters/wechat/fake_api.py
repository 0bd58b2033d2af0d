"""A fake of WeChat's API server (``api.weixin.qq.com``) for tests and local runs, as an aiohttp app.

In-process: ``build_app(...)`` (e.g. with pytest-aiohttp's ``aiohttp_server``).  As its own process::

    python -m bot.adapters.wechat.fake_api --host 127.0.0.1 --port 8181 --app-id X --app-secret Y \\
        [--enforce-cs-window] [--template-id ID ...] [--ip-whitelist IP ...] [--token-ttl 7200]

WeChat API (errors are ``{"errcode", "errmsg"}`` with WeChat's errmsg text plus a `` rid: ...`` suffix, as
the real server adds one):

* ``POST /cgi-bin/stable_token`` JSON ``{grant_type, appid, secret, force_refresh}``.  Checks 40002 (grant
  type), 41002/40013 (appid), 41004/40125 (secret), 40164 (IP whitelist, when configured), 47001 (body
  not JSON).  Normal mode returns the same token while it is valid, with ``expires_in`` = seconds left; in
  the last 5 minutes it issues a new token and the old one stays valid until it expires (the doc: "平台会
  提前5分钟更新access_token ... 新旧access_token都可用").  ``force_refresh: true`` invalidates the
  previous token at once and returns a new one ("会导致上次获取的access_token失效"); a force refresh less
  than 30 s after the previous one does not refresh ("否则不会刷新": the current token is returned), and
  beyond 20 a day (Beijing time) it fails with 45009.
* ``GET /cgi-bin/token`` (legacy, isolated from stable tokens): every call issues a new token; the
  previous legacy token stays valid for 5 more minutes (research note §4).
* API calls check ``access_token``: missing 41001, unknown or revoked 40001, expired 42001.
* ``POST /cgi-bin/message/custom/send``: 44002 empty body, 47001 not JSON, 40033 ``\\uXXXX`` escapes of
  non-ASCII characters, 40003 missing ``touser``, 40008 unknown ``msgtype``, 44004 empty text content,
  45002 text over 2048 UTF-8 bytes, 40007 missing ``media_id`` (image/voice/video), 44003 empty news,
  45015 after the user unfollowed.  With ``enforce_cs_window``: 45015 when no interaction window is open,
  45047 when the open windows' budget is used (5 per 48 h after a message, 3 per minute after a
  click/scan/subscribe; the model is described in ``cs_quota``).
* ``POST /cgi-bin/message/template/send``: 40037 unless the ``template_id`` is configured, 40003, 47001
  for malformed ``data``, 43004 after the user unfollowed; returns ``msgid``.  ``first``/``remark`` are
  silently dropped (the 2023 change); a repeated ``client_msg_id`` for the same user within 10 minutes
  returns the first ``msgid`` without a second push.
* ``POST /cgi-bin/menu/create``: 1-3 top buttons (40016), names 1-16 bytes (40018) / sub names 1-60 bytes
  (40025), 1-5 sub buttons (40023), known types (40017/40024), click-like types need a key of at most 128
  bytes (40019/40026), view needs a url of at most 1024 bytes (40020/40027), miniprogram needs url,
  appid and pagepath, media_id/view_limited need media_id and article types article_id (40007).  Where
  WeChat's exact code for a case is undocumented the fake uses the closest one.
* ``GET /cgi-bin/menu/get``: ``{"menu": {"button": [...]}}`` (leaves get ``"sub_button": []`` as on the
  real server), 46003 when no menu was created.
* Wrong HTTP method: 43001 (require GET) / 43002 (require POST).

Control endpoints (unauthenticated: bind the fake to localhost only):

* ``GET /_fake/sent`` everything pushed: ``[{kind: custom|template, touser, payload, time, ...}]``
  (``?kind=`` and ``?touser=`` filter);
* ``GET /_fake/stats`` call counts per endpoint (``stable_token``, ``stable_token_force``, ``token``,
  ``custom_send``, ``template_send``, ``menu_create``, ``menu_get``), ``tokens_issued``,
  ``force_refreshes``, ``injected_failures``, ``tokens_valid`` and ``errors`` per errcode;
* ``POST /_fake/reset`` forget tokens, messages, menu, interactions, stats and pending failures;
* ``POST /_fake/fail`` ``{"path": ..., "errcode": 45015, "errmsg": ..., "times": 1, "delay": 6}``: the
  next ``times`` calls to ``path`` (any ``/cgi-bin/`` path when omitted) wait ``delay`` seconds and/or
  fail with ``errcode`` and its real errmsg;
* ``POST /_fake/rotate_token`` revoke every token: the next call with an old one gets 40001;
* ``POST /_fake/interaction`` ``{"openid", "kind": message|click|scan|subscribe|unsubscribe, "time"?}``;
* ``POST /_fake/templates`` ``{"template_ids": [...]}`` adds known template ids.

Mass sending (群发: tags, ``mass/send``, ``mass/sendall``, the MASSSENDJOBFINISH event) is in ``fake_mass``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.core.env import Env

log = logging.getLogger(__name__)

DEFAULT_APP_ID = "wxfake0000000000"
DEFAULT_APP_SECRET = "fake-app-secret"

ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid appid",
    40014: "invalid access_token",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40033: "invalid charset. please check your request, if include \\uxxxx will create fail!",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40164: "invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43004: "require subscribe",
    44002: "empty post data",
    44003: "empty news data",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    46003: "menu no exist",
    47001: "data format error",
    48001: "api unauthorized",
}

# Platform rules (see cs_quota's docstring); kept separate so the fake checks the adapter, not itself.
CS_MESSAGE_WINDOW = 48 * 3600
CS_MESSAGE_LIMIT = 5
CS_EVENT_WINDOW = 60
CS_EVENT_LIMIT = 3
STABLE_PREREFRESH = 300  # normal mode issues a new token in the last 5 minutes
LEGACY_GRACE = 300  # the previous /cgi-bin/token token stays valid this long
FORCE_REFRESH_DAILY = 20
FORCE_REFRESH_INTERVAL = 30
TEMPLATE_DEDUP_WINDOW = 600

_BEIJING = timedelta(hours=8)
_ENDPOINT_STATS = {
    "/cgi-bin/stable_token": "stable_token",
    "/cgi-bin/token": "token",
    "/cgi-bin/message/custom/send": "custom_send",
    "/cgi-bin/message/template/send": "template_send",
    "/cgi-bin/menu/create": "menu_create",
    "/cgi-bin/menu/get": "menu_get",
}
# \uXXXX escapes not themselves escaped (an even number of backslashes before them).
_UNICODE_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u([0-9a-fA-F]{4})")
_KEY_TYPES = frozenset(
    {
        "click",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
    }
)
_BUTTON_TYPES = _KEY_TYPES | {
    "view",
    "miniprogram",
    "media_id",
    "view_limited",
    "article_id",
    "article_view_limited",
}
_INTERACTION_GRANT = {"message": "message", "click": "event", "scan": "event", "subscribe": "event"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _WeChatError(Exception):
    def __init__(self, errcode: int, **fmt: str) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.fmt = fmt


@dataclass
class _Grant:
    at: float
    used: int = 0


@dataclass
class _FailRule:
    path: str | None
    errcode: int | None
    errmsg: str | None
    delay: float
    times: int


def _utf8_len(value: str) -> int:
    return len(value.encode("utf-8"))


def _beijing_day(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts, UTC) + _BEIJING:%Y%m%d}"


class FakeWeChat:
    """State of the fake server; reachable from tests as ``app[FAKE_STATE]``."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        *,
        enforce_cs_window: bool,
        template_ids: Iterable[str],
        ip_whitelist: Iterable[str] | None,
        clock: Callable[[], float],
        token_ttl: int,
        max_text_bytes: int,
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.enforce_cs_window = enforce_cs_window
        self.template_ids = set(template_ids)
        self.ip_whitelist = None if ip_whitelist is None else frozenset(ip_whitelist)
        self.clock = clock
        self.token_ttl = token_ttl
        self.max_text_bytes = max_text_bytes
        # called with (touser, msgid) after each template message (fake_mass pushes TEMPLATESENDJOBFINISH)
        self.on_template_sent: Callable[[str, int], None] | None = None
        self.reset()

    def reset(self) -> None:
        self.tokens: dict[str, float] = {}  # token -> expires_at; revoked tokens are removed
        self.stable_current: str | None = None
        self.legacy_current: str | None = None
        self.force_refresh_times: list[float] = []
        self.sent: list[dict[str, Any]] = []
        self.menu: dict[str, Any] | None = None
        self.stats: Counter[str] = Counter()
        self.errors: Counter[int] = Counter()
        self.failures: list[_FailRule] = []
        self.grants: dict[str, dict[str, _Grant]] = {}
        self.unsubscribed: set[str] = set()
        self.template_dedup: dict[tuple[str, str], tuple[int, float]] = {}
        self.next_msgid = 1_000_000_001

    # tokens

    def _issue(self, ttl: int) -> str:
        token = "FAKE_" + secrets.token_urlsafe(48)
        self.tokens[token] = self.clock() + ttl
        self.stats["tokens_issued"] += 1
        return token

    def _check_credentials(self, grant_type: Any, appid: Any, secret: Any, remote: str) -> None:
        if grant_type != "client_credential":
            raise _WeChatError(40002)
        if not appid:
            raise _WeChatError(41002)
        if appid != self.app_id:
            raise _WeChatError(40013)
        if not secret:
            raise _WeChatError(41004)
        if secret != self.app_secret:
            raise _WeChatError(40125)
        if self.ip_whitelist is not None and remote not in self.ip_whitelist:
            raise _WeChatError(40164, ip=remote)

    def stable_token(self, body: dict[str, Any], remote: str) -> dict[str, Any]:
        self._check_credentials(body.get("grant_type"), body.get("appid"), body.get("secret"), remote)
        now = self.clock()
        if body.get("force_refresh") is True:
            self.stats["stable_token_force"] += 1
            recent = self.force_refresh_times and now - self.force_refresh_times[-1] < FORCE_REFRESH_INTERVAL
            if not recent:
                today = _beijing_day(now)
                if (
                    sum(1 for t in self.force_refresh_times if _beijing_day(t) == today)
                    >= FORCE_REFRESH_DAILY
                ):
                    raise _WeChatError(45009)
                if self.stable_current is not None:
                    self.tokens.pop(self.stable_current, None)
                self.stable_current = self._issue(self.token_ttl)
                self.force_refresh_times.append(now)
                self.stats["force_refreshes"] += 1
        current = self.stable_current
        expires_at = self.tokens.get(current) if current is not None else None
        if current is None or expires_at is None or expires_at - now <= STABLE_PREREFRESH:
            current = self.stable_current = self._issue(self.token_ttl)
            expires_at = self.tokens[current]
        return {"access_token": current, "expires_in": int(expires_at - now)}

    def legacy_token(self, query: dict[str, str], remote: str) -> dict[str, Any]:
        self._check_credentials(query.get("grant_type"), query.get("appid"), query.get("secret"), remote)
        now = self.clock()
        previous = self.legacy_current
        if previous is not None and previous in self.tokens:
            self.tokens[previous] = min(self.tokens[previous], now + LEGACY_GRACE)
        self.legacy_current = self._issue(self.token_ttl)
        return {"access_token": self.legacy_current, "expires_in": self.token_ttl}

    def check_access_token(self, token: str | None) -> None:
        if not token:
            raise _WeChatError(41001)
        expires_at = self.tokens.get(token)
        if expires_at is None:
            raise _WeChatError(40001)
        if expires_at <= self.clock():
            raise _WeChatError(42001)

    def rotate_tokens(self) -> int:
        revoked = len(self.tokens)
        self.tokens.clear()
        self.stable_current = None
        self.legacy_current = None
        return revoked

    # customer-service window

    def record_interaction(self, openid: str, kind: str, at: float) -> None:
        if kind == "unsubscribe":
            self.unsubscribed.add(openid)
            self.grants.pop(openid, None)
            return
        grant_kind = _INTERACTION_GRANT.get(kind)
        if grant_kind is None:
            raise ValueError(f"unknown interaction kind {kind!r}")
        if kind == "subscribe":
            self.unsubscribed.discard(openid)
        grants = self.grants.setdefault(openid, {})
        current = grants.get(grant_kind)
        if current is None or at >= current.at:
            grants[grant_kind] = _Grant(at)

    def consume_cs(self, openid: str) -> None:
        now = self.clock()
        open_grants: list[tuple[float, _Grant, int]] = []
        for grant_kind, grant in self.grants.get(openid, {}).items():
            window, limit = (
                (CS_MESSAGE_WINDOW, CS_MESSAGE_LIMIT)
                if grant_kind == "message"
                else (CS_EVENT_WINDOW, CS_EVENT_LIMIT)
            )
            if now < grant.at + window:
                open_grants.append((grant.at + window, grant, limit))
        if not open_grants:
            raise _WeChatError(45015)
        usable = sorted((g for g in open_grants if g[1].used < g[2]), key=lambda g: g[0])
        if not usable:
            raise _WeChatError(45047)
        usable[0][1].used += 1

    # failure injection

    def take_failure(self, path: str) -> _FailRule | None:
        for rule in self.failures:
            if rule.path is None or rule.path == path:
                rule.times -= 1
                if rule.times <= 0:
                    self.failures.remove(rule)
                return rule
        return None

    def snapshot_stats(self) -> dict[str, Any]:
        now = self.clock()
        stats: dict[str, Any] = dict(self.stats)
        stats["tokens_valid"] = sum(1 for exp in self.tokens.values() if exp > now)
        stats["errors"] = {str(code): n for code, n in sorted(self.errors.items())}
        return stats


FAKE_STATE = web.AppKey("fake_wechat_state", FakeWeChat)


def _error_response(state: FakeWeChat, errcode: int, errmsg: str | None = None, **fmt: str) -> web.Response:
    state.errors[errcode] += 1
    text = errmsg if errmsg is not None else ERRMSG.get(errcode, "fake error").format(**fmt)
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
    return _json({"errcode": errcode, "errmsg": f"{text} rid: {rid}"})


def _json(payload: Any) -> web.Response:
    return web.json_response(payload, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


def _remote(request: web.Request) -> str:
    return request.remote or "127.0.0.1"


async def _read_json(request: web.Request, *, reject_unicode_escapes: bool) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise _WeChatError(44002)
    if reject_unicode_escapes and any(int(m.group(1), 16) >= 0x80 for m in _UNICODE_ESCAPE.finditer(raw)):
        raise _WeChatError(40033)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _WeChatError(47001) from None
    if not isinstance(body, dict):
        raise _WeChatError(47001)
    return body


def _require(request: web.Request, method: str) -> None:
    if request.method != method:
        raise _WeChatError(43002 if method == "POST" else 43001)


@web.middleware
async def _wechat_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/cgi-bin/"):
        return await handler(request)
    state = request.app[FAKE_STATE]
    name = _ENDPOINT_STATS.get(request.path)
    if name:
        state.stats[name] += 1
    rule = state.take_failure(request.path)
    if rule is not None:
        if rule.delay > 0:
            await asyncio.sleep(rule.delay)
        if rule.errcode is not None:
            state.stats["injected_failures"] += 1
            return _error_response(state, rule.errcode, rule.errmsg, ip=_remote(request))
    try:
        return await handler(request)
    except _WeChatError as exc:
        return _error_response(state, exc.errcode, **exc.fmt)


# WeChat API handlers


async def _stable_token(request: web.Request) -> web.Response:
    _require(request, "POST")
    body = await _read_json(request, reject_unicode_escapes=False)
    return _json(request.app[FAKE_STATE].stable_token(body, _remote(request)))


async def _legacy_token(request: web.Request) -> web.Response:
    _require(request, "GET")
    return _json(request.app[FAKE_STATE].legacy_token(dict(request.query), _remote(request)))


def _validate_text(state: FakeWeChat, body: dict[str, Any]) -> None:
    text = body.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    if not isinstance(content, str) or not content:
        raise _WeChatError(44004)
    if _utf8_len(content) > state.max_text_bytes:
        raise _WeChatError(45002)


def _validate_custom_message(state: FakeWeChat, body: dict[str, Any]) -> str:
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser:
        raise _WeChatError(40003)
    msgtype = body.get("msgtype")
    if msgtype == "text":
        _validate_text(state, body)
    elif msgtype in ("image", "voice", "video"):
        media = body.get(msgtype)
        if not isinstance(media, dict) or not media.get("media_id"):
            raise _WeChatError(40007)
    elif msgtype == "news":
        news = body.get("news")
        articles = news.get("articles") if isinstance(news, dict) else None
        if not isinstance(articles, list) or not articles:
            raise _WeChatError(44003)
    else:
        raise _WeChatError(40008)
    return touser


async def _custom_send(request: web.Request) -> web.Response:
    _require(request, "POST")
    state = request.app[FAKE_STATE]
    state.check_access_token(request.query.get("access_token"))
    body = await _read_json(request, reject_unicode_escapes=True)
    touser = _validate_custom_message(state, body)
    if touser in state.unsubscribed:
        raise _WeChatError(45015)
    if state.enforce_cs_window:
        state.consume_cs(touser)
    state.sent.append(
        {
            "kind": "custom",
            "touser": touser,
            "msgtype": body["msgtype"],
            "payload": body,
            "time": state.clock(),
        }
    )
    return _json({"errcode": 0, "errmsg": "ok"})


async def _template_send(request: web.Request) -> web.Response:
    _require(request, "POST")
    state = request.app[FAKE_STATE]
    state.check_access_token(request.query.get("access_token"))
    body = await _read_json(request, reject_unicode_escapes=True)
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser:
        raise _WeChatError(40003)
    if body.get("template_id") not in state.template_ids:
        raise _WeChatError(40037)
    data = body.get("data", {})
    if not isinstance(data, dict) or not all(
        isinstance(item, dict) and isinstance(item.get("value"), str) for item in data.values()
    ):
        raise _WeChatError(47001)
    if touser in state.unsubscribed:
        raise _WeChatError(43004)
    now = state.clock()
    client_msg_id = body.get("client_msg_id")
    if isinstance(client_msg_id, str) and client_msg_id:
        previous = state.template_dedup.get((touser, client_msg_id))
        if previous is not None and now - previous[1] < TEMPLATE_DEDUP_WINDOW:
            return _json({"errcode": 0, "errmsg": "ok", "msgid": previous[0]})
    msgid = state.next_msgid
    state.next_msgid += 1
    if isinstance(client_msg_id, str) and client_msg_id:
        state.template_dedup[(touser, client_msg_id)] = (msgid, now)
    shown = {key: value for key, value in data.items() if key not in ("first", "remark")}
    state.sent.append(
        {
            "kind": "template",
            "touser": touser,
            "msgid": msgid,
            "payload": {**body, "data": shown},
            "dropped_fields": sorted(set(data) - set(shown)),
            "time": now,
        }
    )
    if state.on_template_sent is not None:
        state.on_template_sent(touser, msgid)
    return _json({"errcode": 0, "errmsg": "ok", "msgid": msgid})


def _bounded_str(value: Any, max_bytes: int) -> bool:
    return isinstance(value, str) and 1 <= _utf8_len(value) <= max_bytes


def _validate_leaf(button: dict[str, Any], *, sub: bool) -> None:
    type_err, key_err, url_err = (40024, 40026, 40027) if sub else (40017, 40019, 40020)
    kind = button.get("type")
    if kind not in _BUTTON_TYPES:
        raise _WeChatError(type_err)
    if kind in _KEY_TYPES and not _bounded_str(button.get("key"), 128):
        raise _WeChatError(key_err)
    if kind in ("view", "miniprogram") and not _bounded_str(button.get("url"), 1024):
        raise _WeChatError(url_err)
    if kind == "miniprogram" and not (button.get("appid") and button.get("pagepath")):
        raise _WeChatError(47001)
    if kind in ("media_id", "view_limited") and not button.get("media_id"):
        raise _WeChatError(40007)
    if kind in ("article_id", "article_view_limited") and not button.get("article_id"):
        raise _WeChatError(40007)


def validate_menu(menu: dict[str, Any]) -> None:
    """Raise ``_WeChatError`` with WeChat's errcode for the first problem in a ``menu/create`` body."""
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise _WeChatError(40016)
    for button in buttons:
        if not isinstance(button, dict):
            raise _WeChatError(47001)
        if not _bounded_str(button.get("name"), 16):
            raise _WeChatError(40018)
        subs = button.get("sub_button")
        if subs:  # an empty sub_button list (as menu/get returns for leaves) means a leaf
            if not isinstance(subs, list) or len(subs) > 5:
                raise _WeChatError(40023)
            for sub in subs:
                if not isinstance(sub, dict):
                    raise _WeChatError(47001)
                if not _bounded_str(sub.get("name"), 60):
                    raise _WeChatError(40025)
                _validate_leaf(sub, sub=True)
        else:
            _validate_leaf(button, sub=False)


async def _menu_create(request: web.Request) -> web.Response:
    _require(request, "POST")
    state = request.app[FAKE_STATE]
    state.check_access_token(request.query.get("access_token"))
    body = await _read_json(request, reject_unicode_escapes=True)
    validate_menu(body)
    state.menu = body
    return _json({"errcode": 0, "errmsg": "ok"})


def _as_returned(button: dict[str, Any]) -> dict[str, Any]:
    return {**button, "sub_button": [_as_returned(sub) for sub in button.get("sub_button") or []]}


async def _menu_get(request: web.Request) -> web.Response:
    _require(request, "GET")
    state = request.app[FAKE_STATE]
    state.check_access_token(request.query.get("access_token"))
    if state.menu is None:
        raise _WeChatError(46003)
    return _json({"menu": {"button": [_as_returned(b) for b in state.menu["button"]]}})


# control endpoints


async def _control_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be a JSON object") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


async def _fake_sent(request: web.Request) -> web.Response:
    sent = request.app[FAKE_STATE].sent
    for field in ("kind", "touser"):
        if field in request.query:
            sent = [item for item in sent if item[field] == request.query[field]]
    return _json(sent)


async def _fake_stats(request: web.Request) -> web.Response:
    return _json(request.app[FAKE_STATE].snapshot_stats())


async def _fake_reset(request: web.Request) -> web.Response:
    request.app[FAKE_STATE].reset()
    return _json({"ok": True})


async def _fake_fail(request: web.Request) -> web.Response:
    body = await _control_body(request)
    errcode, delay, times = body.get("errcode"), body.get("delay", 0), body.get("times", 1)
    path, errmsg = body.get("path"), body.get("errmsg")
    if errcode is None and not delay:
        raise web.HTTPBadRequest(text="give errcode and/or delay")
    if errcode is not None and not isinstance(errcode, int):
        raise web.HTTPBadRequest(text="errcode must be an integer")
    if not isinstance(delay, int | float) or delay < 0 or not isinstance(times, int) or times < 1:
        raise web.HTTPBadRequest(text="delay must be >= 0 and times >= 1")
    if path is not None and not (isinstance(path, str) and path.startswith("/cgi-bin/")):
        raise web.HTTPBadRequest(text="path must start with /cgi-bin/")
    if errmsg is not None and not isinstance(errmsg, str):
        raise web.HTTPBadRequest(text="errmsg must be a string")
    state = request.app[FAKE_STATE]
    state.failures.append(_FailRule(path, errcode, errmsg, float(delay), times))
    return _json({"ok": True, "pending": len(state.failures)})


async def _fake_rotate_token(request: web.Request) -> web.Response:
    return _json({"ok": True, "revoked": request.app[FAKE_STATE].rotate_tokens()})


async def _fake_interaction(request: web.Request) -> web.Response:
    body = await _control_body(request)
    state = request.app[FAKE_STATE]
    openid, kind, at = body.get("openid"), body.get("kind"), body.get("time", state.clock())
    if not isinstance(openid, str) or not openid or not isinstance(at, int | float):
        raise web.HTTPBadRequest(text="openid (string) and kind are required; time must be a number")
    try:
        state.record_interaction(openid, str(kind), float(at))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return _json({"ok": True})


async def _fake_templates(request: web.Request) -> web.Response:
    body = await _control_body(request)
    ids = body.get("template_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise web.HTTPBadRequest(text="template_ids must be a list of strings")
    state = request.app[FAKE_STATE]
    state.template_ids.update(ids)
    return _json({"ok": True, "template_ids": sorted(state.template_ids)})


def build_app(
    app_id: str = DEFAULT_APP_ID,
    app_secret: str = DEFAULT_APP_SECRET,
    *,
    enforce_cs_window: bool = False,
    template_ids: Iterable[str] = (),
    ip_whitelist: Iterable[str] | None = None,
    clock: Callable[[], float] = time.time,
    token_ttl: int = 7200,
    max_text_bytes: int = 2048,
) -> web.Application:
    """The fake WeChat API server; its state is ``app[FAKE_STATE]``."""
    app = web.Application(middlewares=[_wechat_middleware])
    app[FAKE_STATE] = FakeWeChat(
        app_id,
        app_secret,
        enforce_cs_window=enforce_cs_window,
        template_ids=template_ids,
        ip_whitelist=ip_whitelist,
        clock=clock,
        token_ttl=token_ttl,
        max_text_bytes=max_text_bytes,
    )
    for path, handler in (
        ("/cgi-bin/stable_token", _stable_token),
        ("/cgi-bin/token", _legacy_token),
        ("/cgi-bin/message/custom/send", _custom_send),
        ("/cgi-bin/message/template/send", _template_send),
        ("/cgi-bin/menu/create", _menu_create),
        ("/cgi-bin/menu/get", _menu_get),
    ):
        app.router.add_route("*", path, handler)
    app.router.add_get("/_fake/sent", _fake_sent)
    app.router.add_get("/_fake/stats", _fake_stats)
    app.router.add_post("/_fake/reset", _fake_reset)
    app.router.add_post("/_fake/fail", _fake_fail)
    app.router.add_post("/_fake/rotate_token", _fake_rotate_token)
    app.router.add_post("/_fake/interaction", _fake_interaction)
    app.router.add_post("/_fake/templates", _fake_templates)
    from bot.adapters.wechat.fake_mass import add_mass_send  # it builds on this module

    add_mass_send(app)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.adapters.wechat.fake_api",
        description="Fake WeChat API server for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8181)
    parser.add_argument("--app-id", default=Env().text("WECHAT_APP_ID", DEFAULT_APP_ID))
    parser.add_argument("--app-secret", default=Env().text("WECHAT_APP_SECRET", DEFAULT_APP_SECRET))
    parser.add_argument(
        "--enforce-cs-window", action="store_true", help="45015/45047 outside the customer-service window"
    )
    parser.add_argument("--template-id", action="append", default=[], help="known template id (repeatable)")
    parser.add_argument(
        "--ip-whitelist", action="append", default=None, help="allowed caller IP (repeatable)"
    )
    parser.add_argument("--token-ttl", type=int, default=7200, help="access token lifetime in seconds")
    parser.add_argument(
        "--event-url", default="", help="our /wechat URL: mass-send finish events are pushed there (token, "
        "EncodingAESKey from WECHAT_TOKEN / WECHAT_ENCODING_AES_KEY); also adds a demo follower tag",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "the /_fake/ control endpoints are unauthenticated; %s is not a loopback address", args.host
        )
    app = build_app(
        args.app_id,
        args.app_secret,
        enforce_cs_window=args.enforce_cs_window,
        template_ids=args.template_id,
        ip_whitelist=args.ip_whitelist,
        token_ttl=args.token_ttl,
    )
    if args.event_url:
        from bot.adapters.wechat.fake_mass import MASS

        env = Env()
        app[MASS].server = {"url": args.event_url, "token": env.text("WECHAT_TOKEN"), "app_id": args.app_id,
                            "aes_key": env.text("WECHAT_ENCODING_AES_KEY")}  # fmt: skip
        app[MASS].tags[100] = {
            "name": "演示关注者",
            "openids": [f"oDemoFollower{n:015d}" for n in range(1, 4)],
        }
    log.info("fake WeChat API for %s on http://%s:%d", args.app_id, args.host, args.port)
    # No access log: legacy /cgi-bin/token carries the secret in its query string.
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    # Run the module under its own name: fake_mass imports it, and a second copy (``__main__``) would have
    # its own app keys and error class, which the mass-send handlers would not share.
    from bot.adapters.wechat import fake_api

    fake_api.main()
