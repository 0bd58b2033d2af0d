"""The WeChat fake's mass-send part (群发), added to ``fake_api.build_app``'s app by :func:`add_mass_send`.

As the official account API documents it (text messages only; other ``msgtype`` 40008):

* ``GET /cgi-bin/tags/get`` → ``{"tags": [{"id", "name", "count"}]}``.
* ``POST /cgi-bin/message/mass/sendall`` ``{"filter": {"is_to_all": false, "tag_id": 2}, "msgtype": "text",
  "text": {"content"}, "clientmsgid"?}`` — the tag's followers; 40050 for an unknown tag.
* ``POST /cgi-bin/message/mass/send`` ``{"touser": [openid, ...], ...}`` — 2 to 10,000 openids (40130
  otherwise, 40003 for one that is not a string).
* Both: 44004 empty content, 45002 over 2048 bytes, 45067 ``clientmsgid`` over 64 bytes; the same
  ``clientmsgid`` within 24 hours is not sent again: errcode 45065 with the first job's ``msg_id``.
  A job answers ``{"errcode": 0, "errmsg": "send job submission success", "msg_id", "msg_data_id"}`` and
  finishes a moment later: followers who unfollowed, or who already received ``MONTHLY_LIMIT`` mass
  messages this (Beijing) month, are filtered out (a service account's followers get at most 4 a month).
* ``POST /cgi-bin/message/mass/get`` ``{"msg_id"}`` → ``{"msg_id", "msg_status"}`` (SEND_SUCCESS, SENDING).
* After each template message (``fake_api``'s ``template/send``) the ``TEMPLATESENDJOBFINISH`` event is
  pushed the same way: ``FromUserName`` the follower, ``MsgID``, ``Status`` ``success`` — or
  ``failed:user block`` for a follower set with ``POST /_fake/template/blocked`` ``{"openids"}``.
* When a job finishes, the ``MASSSENDJOBFINISH`` event is pushed to the configured server URL exactly as
  WeChat pushes events (signed with the token; encrypted with the EncodingAESKey in safe mode): ``MsgID``,
  ``Status`` ("send success"), ``TotalCount``, ``FilterCount``, ``SentCount``, ``ErrorCount``; retried
  3 times when the server does not answer 200.

Control: ``POST /_fake/tags`` ``{"id", "name", "openids"}`` defines a tag; ``GET /_fake/mass`` lists the
jobs (with the openids each reached); ``POST /_fake/mass/server`` ``{"url", "token", "aes_key"?, "app_id"}``
sets where events go; ``GET /_fake/template/events`` lists the TEMPLATESENDJOBFINISH events pushed.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import xmltodict
from aiohttp import web

from bot.adapters.wechat.fake_api import (
    FAKE_STATE,
    _error_response,
    _json,
    _read_json,
    _require,
    _validate_text,
    _WeChatError,
)

MONTHLY_LIMIT = 4
MAX_OPENIDS = 10_000
DEDUP_WINDOW = 24 * 3600
ACCOUNT = "gh_fakeaccount01"


@dataclass
class MassJob:
    msg_id: int
    msg_data_id: int
    clientmsgid: str
    content: str
    targets: list[str]
    tag_id: int | None
    created: float
    status: str = "SENDING"
    reached: list[str] = field(default_factory=list)
    total: int = 0
    filtered: int = 0
    sent: int = 0
    errors: int = 0
    event_tries: int = 0


@dataclass
class MassState:
    tags: dict[int, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[int, MassJob] = field(default_factory=dict)
    by_client: dict[str, int] = field(default_factory=dict)
    received: Counter[tuple[str, str]] = field(default_factory=Counter)  # (openid, Beijing month) → count
    server: dict[str, str] = field(default_factory=dict)  # url, token, aes_key, app_id
    finish_delay: float = 0.05
    next_id: int = 3_000_000_001
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    template_blocked: set[str] = field(default_factory=set)  # followers who refuse template messages
    template_events: list[dict[str, Any]] = field(default_factory=list)  # pushed: msgid, status, tries


MASS = web.AppKey("fake_wechat_mass", MassState)


def _month(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts, UTC) + timedelta(hours=8):%Y%m}"


async def _tags_get(request: web.Request) -> web.Response:
    _require(request, "GET")
    request.app[FAKE_STATE].check_access_token(request.query.get("access_token"))
    tags = request.app[MASS].tags
    return _json(
        {"tags": [{"id": i, "name": t["name"], "count": len(t["openids"])} for i, t in tags.items()]}
    )


def _content(request: web.Request, body: dict[str, Any]) -> str:
    if body.get("msgtype") != "text":
        raise _WeChatError(40008)
    _validate_text(request.app[FAKE_STATE], body)
    return str(body["text"]["content"])


async def _submit(
    request: web.Request, targets: list[str], tag_id: int | None, body: dict[str, Any]
) -> web.Response:
    state, mass = request.app[FAKE_STATE], request.app[MASS]
    content = _content(request, body)
    client = str(body.get("clientmsgid") or hashlib.sha1(f"{targets}{tag_id}{content}".encode()).hexdigest())
    if len(client.encode()) > 64:
        raise _WeChatError(45067)
    now = state.clock()
    first = mass.by_client.get(client)
    if first is not None and now - mass.jobs[first].created < DEDUP_WINDOW:
        state.errors[45065] += 1
        return _json({"errcode": 45065, "errmsg": "clientmsgid exist", "msg_id": first})
    msg_id, mass.next_id = mass.next_id, mass.next_id + 1
    job = MassJob(msg_id, msg_id * 10 + 1, client, content, list(dict.fromkeys(targets)), tag_id, now)
    mass.jobs[msg_id] = job
    mass.by_client[client] = msg_id
    _spawn(mass, _finish(request.app, job))
    return _json({"errcode": 0, "errmsg": "send job submission success", "msg_id": msg_id,
                  "msg_data_id": job.msg_data_id})  # fmt: skip


async def _send_to_list(request: web.Request) -> web.Response:
    _require(request, "POST")
    request.app[FAKE_STATE].check_access_token(request.query.get("access_token"))
    body = await _read_json(request, reject_unicode_escapes=True)
    touser = body.get("touser")
    if not isinstance(touser, list) or not 2 <= len(touser) <= MAX_OPENIDS:
        return _error_response(
            request.app[FAKE_STATE], 40130, "invalid openid list size, at least two openid"
        )
    if not all(isinstance(o, str) and o for o in touser):
        raise _WeChatError(40003)
    return await _submit(request, touser, None, body)


async def _send_to_tag(request: web.Request) -> web.Response:
    _require(request, "POST")
    request.app[FAKE_STATE].check_access_token(request.query.get("access_token"))
    body = await _read_json(request, reject_unicode_escapes=True)
    rule = body.get("filter")
    if not isinstance(rule, dict):
        raise _WeChatError(47001)
    mass = request.app[MASS]
    if rule.get("is_to_all") is True:
        targets = [o for t in mass.tags.values() for o in t["openids"]]
        return await _submit(request, targets, None, body)
    tag_id = rule.get("tag_id")
    if not isinstance(tag_id, int) or tag_id not in mass.tags:
        return _error_response(request.app[FAKE_STATE], 40050, "invalid tag id")
    return await _submit(request, list(mass.tags[tag_id]["openids"]), tag_id, body)


async def _mass_get(request: web.Request) -> web.Response:
    _require(request, "POST")
    request.app[FAKE_STATE].check_access_token(request.query.get("access_token"))
    body = await _read_json(request, reject_unicode_escapes=False)
    job = request.app[MASS].jobs.get(body.get("msg_id"))  # type: ignore[arg-type]
    if job is None:
        raise _WeChatError(40003)
    return _json(
        {"msg_id": job.msg_id, "msg_status": "SEND_SUCCESS" if job.status != "SENDING" else "SENDING"}
    )


async def _finish(app: web.Application, job: MassJob) -> None:
    """Deliver the job (filtering unfollowed and over-limit followers), then push MASSSENDJOBFINISH."""
    state, mass = app[FAKE_STATE], app[MASS]
    await asyncio.sleep(mass.finish_delay)
    month = _month(state.clock())
    for openid in job.targets:
        if openid in state.unsubscribed or mass.received[(openid, month)] >= MONTHLY_LIMIT:
            job.filtered += 1
            continue
        mass.received[(openid, month)] += 1
        job.reached.append(openid)
    job.total, job.sent, job.status = len(job.targets), len(job.reached), "send success"
    await _push_event(mass, job)


def _event_xml(job: MassJob) -> str:
    fields = {"ToUserName": ACCOUNT, "FromUserName": "mphelper", "CreateTime": int(time.time()),
              "MsgType": "event", "Event": "MASSSENDJOBFINISH", "MsgID": job.msg_id, "Status": job.status,
              "TotalCount": job.total, "FilterCount": job.filtered, "SentCount": job.sent,
              "ErrorCount": job.errors}  # fmt: skip
    return str(xmltodict.unparse({"xml": fields}, full_document=False))


def _sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


async def _push_event(mass: MassState, job: MassJob) -> None:
    def tried() -> None:
        job.event_tries += 1

    await _push(mass, _event_xml(job), tried)


def _spawn(mass: MassState, coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    mass.tasks.add(task)
    task.add_done_callback(mass.tasks.discard)


def _template_sent(mass: MassState, touser: str, msgid: int) -> None:
    """Push TEMPLATESENDJOBFINISH for a template message, a moment after it was sent."""
    status = "failed:user block" if touser in mass.template_blocked else "success"
    record: dict[str, Any] = {"msgid": msgid, "touser": touser, "status": status, "tries": 0}
    mass.template_events.append(record)
    fields = {"ToUserName": ACCOUNT, "FromUserName": touser, "CreateTime": int(time.time()),
              "MsgType": "event", "Event": "TEMPLATESENDJOBFINISH", "MsgID": msgid,
              "Status": status}  # fmt: skip
    xml = str(xmltodict.unparse({"xml": fields}, full_document=False))

    def tried() -> None:
        record["tries"] += 1

    async def later() -> None:
        await asyncio.sleep(mass.finish_delay)
        await _push(mass, xml, tried, openid=touser)

    _spawn(mass, later())


async def _push(mass: MassState, xml: str, tried: Callable[[], None], *, openid: str = "mphelper") -> None:
    """POST an event to our server as WeChat does (signed; encrypted in safe mode), three tries."""
    server = mass.server
    if not server.get("url"):
        return
    from wechatpy.crypto import WeChatCrypto

    async with aiohttp.ClientSession() as http:
        for _ in range(3):  # WeChat tries three times
            tried()
            ts, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
            query = {"signature": _sign(server["token"], ts, nonce), "timestamp": ts, "nonce": nonce,
                     "openid": openid}  # fmt: skip
            body = xml
            if server.get("aes_key"):
                crypto = WeChatCrypto(server["token"], server["aes_key"], server["app_id"])
                envelope = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]
                query.update(
                    encrypt_type="aes", msg_signature=_sign(server["token"], ts, nonce, envelope["Encrypt"])
                )
                body = xmltodict.unparse({"xml": {"ToUserName": ACCOUNT, "Encrypt": envelope["Encrypt"]}},
                                         full_document=False)  # fmt: skip
            try:
                async with http.post(server["url"], params=query, data=body.encode(),
                                     timeout=aiohttp.ClientTimeout(total=5)) as resp:  # fmt: skip
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)


async def _control_tags(request: web.Request) -> web.Response:
    data = await request.json()
    request.app[MASS].tags[int(data["id"])] = {"name": str(data["name"]), "openids": list(data["openids"])}
    return _json({"ok": True})


async def _control_jobs(request: web.Request) -> web.Response:
    return _json([asdict(job) for job in request.app[MASS].jobs.values()])


async def _control_template_blocked(request: web.Request) -> web.Response:
    request.app[MASS].template_blocked.update(str(o) for o in (await request.json())["openids"])
    return _json({"ok": True})


async def _control_template_events(request: web.Request) -> web.Response:
    return _json(request.app[MASS].template_events)


async def _control_server(request: web.Request) -> web.Response:
    request.app[MASS].server = {k: str(v) for k, v in (await request.json()).items()}
    return _json({"ok": True})


def add_mass_send(app: web.Application) -> MassState:
    """Add the mass-send endpoints and their state to a ``fake_api.build_app`` app."""
    mass = app[MASS] = MassState()
    app[FAKE_STATE].on_template_sent = lambda touser, msgid: _template_sent(mass, touser, msgid)
    for path, handler in (
        ("/cgi-bin/tags/get", _tags_get),
        ("/cgi-bin/message/mass/send", _send_to_list),
        ("/cgi-bin/message/mass/sendall", _send_to_tag),
        ("/cgi-bin/message/mass/get", _mass_get),
    ):
        app.router.add_route("*", path, handler)
    app.router.add_post("/_fake/tags", _control_tags)
    app.router.add_get("/_fake/mass", _control_jobs)
    app.router.add_post("/_fake/mass/server", _control_server)
    app.router.add_post("/_fake/template/blocked", _control_template_blocked)
    app.router.add_get("/_fake/template/events", _control_template_events)
    return app[MASS]
