"""Async client for the WeChat Official Account HTTP API.

This module (with ``token_service``) is the only place that knows WeChat's HTTP API; domain code depends on
the :class:`WeChatAPI` protocol only.  wechatpy's own client is synchronous and has no default timeout, so
this one is written on aiohttp:

* every request carries ``access_token`` as a query parameter and, for POSTs, a UTF-8 JSON body encoded
  with ``ensure_ascii=False`` (``\\uXXXX`` escapes are rejected by ``menu/create`` with 40033);
* every request has a total timeout; a timeout raises :class:`WeChatTimeoutError`, which is both a
  :class:`WeChatAPIError` and a built-in ``TimeoutError`` (``asyncio.TimeoutError`` is the same class);
* ``errcode`` is checked on every response, a nonzero code raises :class:`WeChatAPIError`;
* after 40001/40014/42001 (token rejected) the token is invalidated through the token service and the
  request is retried exactly once; a second rejection raises (never a loop, cf. wechatpy#629).

Nothing here logs a token, a secret or message content; openids are masked (first 4 chars + ``***``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

#: errcodes that mean "this access_token is not (or no longer) valid": refresh once and retry.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})

#: Local pseudo errcodes (negative, never used by WeChat, whose only negative code is -1 "system busy").
ERRCODE_TRANSPORT = -1000
ERRCODE_TIMEOUT = -1001
ERRCODE_TOKEN_WAIT = -1002
ERRCODE_FORCE_REFRESH_LIMIT = -1003

_HINTS: dict[int, str] = {
    -1: "WeChat reports the system is busy; retry later",
    40001: "access_token invalid or not latest: it was refreshed elsewhere or /cgi-bin/token was called "
    "by another program for this AppID",
    40002: "grant_type must be client_credential",
    40013: "invalid AppID: check WECHAT_APP_ID",
    40014: "malformed access_token",
    40033: "request contains \\uXXXX escapes; send UTF-8 JSON with ensure_ascii=False",
    40037: "template_id is not one of this account's templates",
    40125: "invalid AppSecret: check WECHAT_APP_SECRET (it may have been reset in the mp.weixin.qq.com "
    "console)",
    40164: "this server's egress IP is not in the API IP whitelist: add it in mp.weixin.qq.com under "
    "设置与开发 > 基本配置 > IP白名单",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "the user has not followed (or has unfollowed) the account",
    45009: "API daily quota reached: look for a token-refresh or retry loop; the quota resets at midnight",
    45011: "API called too frequently; slow down",
    45015: "outside the customer-service window (no user interaction in 48 h) or the user unfollowed; "
    "use a template message or SMS instead",
    45047: "customer-service message quota for this user is used up until the user interacts again",
    48001: "API not authorized for this account (needs a verified service account)",
    40050: "the tag does not exist (any more): choose one of the account's tags",
    40130: "a mass send to an openid list needs 2 to 10,000 openids",
    45028: "no mass-send quota left this month",
    45065: "a mass send with this clientmsgid was already submitted (within 24 h)",
}


def mask_openid(openid: str) -> str:
    """``oAbCdEf...`` → ``oAbC***`` for logs."""
    return f"{openid[:4]}***"


class WeChatAPIError(Exception):
    """WeChat answered with a nonzero ``errcode`` (or, for the subclasses, the call itself failed)."""

    def __init__(
        self, errcode: int, errmsg: str, hint: str | None = None, payload: Mapping[str, Any] | None = None
    ) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.payload = dict(payload or {})  # the whole answer (45065 carries the existing job's msg_id)
        self.hint = _HINTS.get(errcode, "") if hint is None else hint
        text = f"WeChat API error {errcode}: {errmsg}"
        super().__init__(f"{text} ({self.hint})" if self.hint else text)


class WeChatTransportError(WeChatAPIError):
    """Connection failure, non-200 HTTP status or a body that is not a JSON object (errcode -1000)."""

    def __init__(self, errmsg: str) -> None:
        super().__init__(ERRCODE_TRANSPORT, errmsg, hint="")


class WeChatTimeoutError(WeChatAPIError, TimeoutError):
    """The call did not finish within the client timeout (errcode -1001).

    Catch it as ``WeChatAPIError`` or as ``TimeoutError`` / ``asyncio.TimeoutError``.
    """

    def __init__(self, errmsg: str) -> None:
        super().__init__(ERRCODE_TIMEOUT, errmsg, hint="")


class TokenUnavailableError(WeChatAPIError):
    """Another process held the refresh lock and no usable token appeared in time (errcode -1002)."""

    def __init__(self, errmsg: str) -> None:
        super().__init__(ERRCODE_TOKEN_WAIT, errmsg, hint="")


class ForceRefreshLimitError(WeChatAPIError):
    """A force refresh is needed but the budget (20/day, 30 s apart) does not allow it (errcode -1003)."""

    def __init__(self, errmsg: str) -> None:
        super().__init__(ERRCODE_FORCE_REFRESH_LIMIT, errmsg, hint="")


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    timeout_s: float,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One HTTP call to WeChat; returns the JSON object or raises a :class:`WeChatAPIError`.

    Error messages name the method and path only: never the query string (access_token) or the body.
    """
    path = URL(url).path
    data: bytes | None = None
    headers: dict[str, str] | None = None
    if body is not None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
    try:
        async with session.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            status = resp.status
            raw = await resp.read()
    except TimeoutError:
        raise WeChatTimeoutError(f"{method} {path} timed out after {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        # ``from None``: aiohttp's exceptions carry the full URL, including the access_token.
        raise WeChatTransportError(f"{method} {path} failed: {type(exc).__name__}") from None
    if status != 200:
        raise WeChatTransportError(f"{method} {path} returned HTTP {status}")
    try:
        payload = json.loads(raw)
    except ValueError:
        raise WeChatTransportError(f"{method} {path} returned a body that is not JSON") from None
    if not isinstance(payload, dict):
        raise WeChatTransportError(f"{method} {path} returned JSON that is not an object")
    errcode = payload.get("errcode", 0)
    if errcode:
        try:
            code = int(errcode)
        except (TypeError, ValueError):
            raise WeChatTransportError(f"{method} {path} returned a malformed errcode") from None
        raise WeChatAPIError(code, str(payload.get("errmsg", "")), payload=payload)
    return payload


class TokenProvider(Protocol):
    """What the client needs from the token service (``TokenService`` implements it)."""

    async def get(self) -> str: ...

    async def invalidate(self, bad_token: str) -> str: ...


@runtime_checkable
class WeChatAPI(Protocol):
    """The outbound WeChat operations the rest of the code depends on."""

    async def send_text(self, openid: str, text: str) -> None: ...

    async def send_template(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> int: ...

    async def create_menu(self, menu: dict[str, Any]) -> None: ...


class WeChatApiClient:
    """:class:`WeChatAPI` over aiohttp, with tokens from a shared :class:`TokenProvider`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenProvider,
        api_base: str,
        *,
        timeout: float = 5.0,
    ) -> None:
        self._session = session
        self._tokens = tokens
        self._api_base = api_base.rstrip("/")
        self._timeout = timeout

    async def send_text(self, openid: str, text: str) -> None:
        """Customer-service text message (``message/custom/send``)."""
        if not openid:
            raise ValueError("openid is required")
        if not text:
            raise ValueError("text must not be empty")
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        await self._call("POST", "/cgi-bin/message/custom/send", body)
        log.debug("customer-service text sent to %s", mask_openid(openid))

    async def send_template(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> int:
        """Template message; returns WeChat's ``msgid``.  ``client_msg_id`` makes the send idempotent."""
        if not openid or not template_id:
            raise ValueError("openid and template_id are required")
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        if url:
            body["url"] = url
        if client_msg_id:
            body["client_msg_id"] = client_msg_id
        payload = await self._call("POST", "/cgi-bin/message/template/send", body)
        try:
            msgid = int(payload["msgid"])
        except (KeyError, TypeError, ValueError):
            raise WeChatTransportError("template/send returned no msgid") from None
        log.debug("template message %s sent to %s", msgid, mask_openid(openid))
        return msgid

    async def mass_send_text(
        self, content: str, *, client_msg_id: str, openids: list[str] | None = None, tag_id: int | None = None
    ) -> int:
        """A mass text message (群发) to ``openids`` (``mass/send``, 2–10,000) or to a tag's followers
        (``mass/sendall``); returns the job's ``msg_id``.  ``client_msg_id`` makes it idempotent: submitted
        again within 24 h, WeChat answers 45065 with the first job's ``msg_id``, which is returned."""
        body: dict[str, Any] = {"msgtype": "text", "text": {"content": content}, "clientmsgid": client_msg_id}
        if openids is not None:
            path, body["touser"] = "/cgi-bin/message/mass/send", openids
        elif tag_id is not None:
            path, body["filter"] = "/cgi-bin/message/mass/sendall", {"is_to_all": False, "tag_id": tag_id}
        else:
            raise ValueError("openids or tag_id is required")
        try:
            payload = await self._call("POST", path, body)
        except WeChatAPIError as exc:
            if exc.errcode != 45065 or "msg_id" not in exc.payload:
                raise
            payload = exc.payload
            log.info("mass send %s was already submitted: job %s", client_msg_id, payload["msg_id"])
        try:
            return int(payload["msg_id"])
        except (KeyError, TypeError, ValueError):
            raise WeChatTransportError(f"{path} returned no msg_id") from None

    async def tags(self) -> list[dict[str, Any]]:
        """The account's follower tags: ``[{"id", "name", "count"}]`` (``tags/get``)."""
        payload = await self._call("GET", "/cgi-bin/tags/get")
        return [t for t in payload.get("tags", []) if isinstance(t, dict)]

    async def create_menu(self, menu: dict[str, Any]) -> None:
        """Replace the custom menu (``menu/create``); ``menu`` is ``{"button": [...]}``."""
        await self._call("POST", "/cgi-bin/menu/create", menu)
        log.info("custom menu created with %d top-level buttons", len(menu.get("button", [])))

    async def get_menu(self) -> dict[str, Any]:
        """The menu set through the API (``menu/get``); raises 46003 when there is none."""
        return await self._call("GET", "/cgi-bin/menu/get")

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        token = await self._tokens.get()
        try:
            return await self._request(method, path, token, body)
        except WeChatAPIError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            log.warning(
                "%s rejected the access token (errcode %s); refreshing and retrying once", path, exc.errcode
            )
        token = await self._tokens.invalidate(token)
        return await self._request(method, path, token, body)

    async def _request(
        self, method: str, path: str, token: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        return await request_json(
            self._session,
            method,
            self._api_base + path,
            timeout_s=self._timeout,
            params={"access_token": token},
            body=body,
        )
