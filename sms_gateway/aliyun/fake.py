"""A faithful fake of Alibaba Cloud SMS (dysmsapi 2017-05-25) for tests and demo mode.

It answers the SDK's real requests (``alibabacloud_dysmsapi20170525``, pointed here with
``Config(endpoint=…, protocol="http")``): ``POST /`` with the action and version in ``x-acs-action`` /
``x-acs-version``, parameters in the query (and, for ``SendBatchSms``, a form body), every request signed
with ACS3-HMAC-SHA256 (:mod:`sms_gateway.aliyun.signature`; a bad one is HTTP 400
``SignatureDoesNotMatch``, as Aliyun answers).  As Aliyun does, a refused message is **HTTP 200 with a
``Code``** other than ``OK``:

* ``SendSms`` (≤1000 numbers, one template) and ``SendBatchSms`` (≤100, per-number signature and
  parameters): approved signature and template (``isv.SMS_SIGNATURE_ILLEGAL`` / ``isv.SMS_TEMPLATE_ILLEGAL``),
  mainland mobiles (``isv.MOBILE_NUMBER_ILLEGAL``), every ``${var}`` given
  (``isv.TEMPLATE_MISSING_PARAMETERS``), each value 1–35 characters (``isv.PARAM_LENGTH_LIMIT``) without a
  URL (``isv.PARAM_NOT_SUPPORT_URL``), and per-number flow control: 50 a day per signature, template and
  number for notifications (``isv.BUSINESS_LIMIT_CONTROL``);
* ``QuerySendDetails`` (one number, one day, paged; by ``BizId`` optionally): ``SendStatus`` 1 waiting,
  2 failed, 3 delivered.

Pushes, as Aliyun makes them (a JSON array per POST, retried while the answer is not ``{"code": 0}``): an
SmsReport batch to ``report_url`` for each accepted call, and an SmsUp record to ``up_url`` when a citizen's
reply is simulated.

Control endpoints (tests and demo only): ``POST /_fake/errors`` ``{"code": "isp.SYSTEM_ERROR", "count": 1,
"http_status": 200}`` makes the next calls fail so; ``GET /_fake/sent`` lists what was accepted;
``POST /_fake/reply`` ``{"phone": "13800000001", "content": "查询"}`` is a citizen's reply.
``POST /_fake/earlier-today`` ``{"sign", "template", "phones": [...], "count": 50}`` counts messages other
systems sent those numbers today (flow control); ``"count": 0`` clears them (the day has passed).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from sms_gateway.aliyun.signature import SignatureError, verify

VERSION = "2017-05-25"
MAX_NUMBERS = {"SendSms": 1000, "SendBatchSms": 100}
DAILY_LIMIT = 50  # notifications per signature, template and number in a rolling day
_MOBILE = re.compile(r"^(?:\+?86|0086)?(1[3-9]\d{9})$")
_VARIABLE = re.compile(r"\$\{(\w+)\}")
_URL = re.compile(r"https?://|www\.|\.(?:com|cn|net|org)\b", re.IGNORECASE)


@dataclass
class Template:
    content: str
    kind: str = "notification"  # notification | promotion | verification
    status: str = "approved"  # approved | pending | rejected

    @property
    def variables(self) -> list[str]:
        return _VARIABLE.findall(self.content)


@dataclass
class Sent:
    biz_id: str
    phone: str
    sign_name: str
    template_code: str
    content: str
    out_id: str
    at: datetime
    status: int = 3  # QuerySendDetails' SendStatus: 1 waiting, 2 failed, 3 delivered
    err_code: str = "DELIVERED"


@dataclass
class FakeAliyun:
    secrets: dict[str, str]
    signs: set[str] = field(default_factory=set)
    templates: dict[str, Template] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    injected: list[tuple[str, int]] = field(default_factory=list)  # (code, HTTP status) for the next calls
    report_url: str = ""  # where SmsReport pushes go (our endpoint, with its path token)
    up_url: str = ""  # where SmsUp pushes go
    push_delays: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)  # first try, then the retries while we answer non-0
    pushes: list[tuple[str, list[dict[str, Any]], int]] = field(
        default_factory=list
    )  # (kind, records, tries)
    clock: Any = field(default=lambda: datetime.now(UTC))
    # messages "already sent today" by some other system, per (signature, template, number): flow control
    earlier_today: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def new_biz_id(self) -> str:
        return f"{next(self._ids):06d}{int(self.clock().timestamp())}^0"

    def sent_today(self, sign: str, template: str, phone: str) -> int:
        since = self.clock() - timedelta(days=1)
        return self.earlier_today.get((sign, template, phone), 0) + sum(
            1 for s in self.sent
            if (s.sign_name, s.template_code, s.phone) == (sign, template, phone) and s.at > since
        )  # fmt: skip


FAKE = web.AppKey("aliyun_fake", FakeAliyun)


def _answer(code: str, message: str, status: int = 200, **extra: Any) -> web.Response:
    return web.json_response(
        {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper(), **extra}, status=status
    )


def _check_message(fake: FakeAliyun, phone: str, sign: str, code: str, params: Any) -> tuple[str, str] | None:
    """(Code, Message) refusing one message, or None when it may be sent."""
    if _MOBILE.match(phone) is None:
        return "isv.MOBILE_NUMBER_ILLEGAL", f"非法手机号 {phone}"
    if sign not in fake.signs:
        return "isv.SMS_SIGNATURE_ILLEGAL", "签名不合法(不存在或被拉黑)"
    template = fake.templates.get(code)
    if template is None or template.status != "approved":
        return "isv.SMS_TEMPLATE_ILLEGAL", "模板不合法(不存在或被拉黑)"
    if not isinstance(params, dict):
        return "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值"
    for name in template.variables:
        if name not in params or params[name] in (None, ""):
            return "isv.TEMPLATE_MISSING_PARAMETERS", f"模板缺少变量 {name}"
        value = params[name]
        if not isinstance(value, str):
            return "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值"
        if len(value) > 35:
            return "isv.PARAM_LENGTH_LIMIT", f"参数超出长度限制 {name}"
        if _URL.search(value):
            return "isv.PARAM_NOT_SUPPORT_URL", "不支持URL参数"
    if template.kind != "verification" and fake.sent_today(sign, code, phone) >= DAILY_LIMIT:
        return "isv.BUSINESS_LIMIT_CONTROL", f"触发天级流控Permits:{DAILY_LIMIT}"
    return None


def _record(fake: FakeAliyun, biz_id: str, phone: str, sign: str, code: str, params: dict[str, str],
            out_id: str) -> None:  # fmt: skip
    content = _VARIABLE.sub(lambda m: params.get(m.group(1), ""), fake.templates[code].content)
    national = _MOBILE.match(phone)
    fake.sent.append(
        Sent(biz_id, national.group(1) if national else phone, sign, code, f"【{sign}】{content}", out_id,
             fake.clock())
    )  # fmt: skip


def _json(raw: str | None) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return None


def _send_sms(fake: FakeAliyun, p: dict[str, str]) -> web.Response:
    phones = [x.strip() for x in p.get("PhoneNumbers", "").split(",") if x.strip()]
    if not phones or len(phones) > MAX_NUMBERS["SendSms"]:
        return _answer("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
    params = _json(p.get("TemplateParam"))
    sign, code = p.get("SignName", ""), p.get("TemplateCode", "")
    for phone in phones:  # one refused number refuses the call, as Aliyun does
        refused = _check_message(fake, phone, sign, code, params)
        if refused is not None:
            return _answer(*refused)
    biz_id = fake.new_biz_id()
    for phone in phones:
        _record(fake, biz_id, phone, sign, code, params, p.get("OutId", ""))
    _report(fake, len(phones))
    return _answer("OK", "OK", BizId=biz_id)


def _send_batch(fake: FakeAliyun, p: dict[str, str]) -> web.Response:
    phones, signs = _json(p.get("PhoneNumberJson")), _json(p.get("SignNameJson"))
    params = _json(p.get("TemplateParamJson")) or [{}] * (len(phones) if isinstance(phones, list) else 0)
    if not isinstance(phones, list) or not isinstance(signs, list) or not isinstance(params, list):
        return _answer("isv.INVALID_JSON_PARAM", "JSON参数不合法")
    if not phones or len(phones) > MAX_NUMBERS["SendBatchSms"]:
        return _answer("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
    if not (len(phones) == len(signs) == len(params)):
        return _answer(
            "isv.INVALID_JSON_PARAM", "PhoneNumberJson、SignNameJson、TemplateParamJson 个数不一致"
        )
    code = p.get("TemplateCode", "")
    for phone, sign, values in zip(phones, signs, params, strict=True):
        refused = _check_message(fake, str(phone), str(sign), code, values)
        if refused is not None:
            return _answer(*refused)
    biz_id = fake.new_biz_id()
    for phone, sign, values in zip(phones, signs, params, strict=True):
        _record(fake, biz_id, str(phone), str(sign), code, values, p.get("OutId", ""))
    _report(fake, len(phones))
    return _answer("OK", "OK", BizId=biz_id)


def _query(fake: FakeAliyun, p: dict[str, str]) -> web.Response:
    match = _MOBILE.match(p.get("PhoneNumber", ""))
    date = p.get("SendDate", "")
    try:
        size, page = int(p.get("PageSize", "10")), int(p.get("CurrentPage", "1"))
    except ValueError:
        return _answer("isv.INVALID_PARAMETERS", "参数异常")
    if match is None or not re.fullmatch(r"\d{8}", date) or not 1 <= size <= 50 or page < 1:
        return _answer("isv.INVALID_PARAMETERS", "参数异常")
    rows = [
        s for s in fake.sent
        if s.phone == match.group(1) and s.at.strftime("%Y%m%d") == date
        and (not p.get("BizId") or s.biz_id == p["BizId"])
    ]  # fmt: skip
    chosen = rows[(page - 1) * size : page * size]
    dtos = [
        {"PhoneNum": s.phone, "SendStatus": s.status, "ErrCode": s.err_code, "TemplateCode": s.template_code,
         "Content": s.content, "SendDate": s.at.strftime("%Y-%m-%d %H:%M:%S"),
         "ReceiveDate": s.at.strftime("%Y-%m-%d %H:%M:%S"), "OutId": s.out_id}
        for s in chosen
    ]  # fmt: skip
    return _answer("OK", "OK", TotalCount=str(len(rows)), SmsSendDetailDTOs={"SmsSendDetailDTO": dtos})


def _report(fake: FakeAliyun, count: int) -> None:
    """Push the delivery reports of the last ``count`` messages (one batch), when a report URL is set."""
    if not fake.report_url:
        return
    records = [
        {"phone_number": s.phone, "send_time": s.at.strftime("%Y-%m-%d %H:%M:%S"),
         "report_time": s.at.strftime("%Y-%m-%d %H:%M:%S"), "success": s.status == 3, "err_code": s.err_code,
         "err_msg": "用户接收成功" if s.status == 3 else "失败", "sms_size": "1", "biz_id": s.biz_id,
         "out_id": s.out_id}
        for s in fake.sent[-count:]
    ]  # fmt: skip
    _spawn(_push(fake, "SmsReport", fake.report_url, records))


_TASKS: set[asyncio.Task[None]] = set()


def _spawn(coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def _push(fake: FakeAliyun, kind: str, url: str, records: list[dict[str, Any]]) -> None:
    """POST the batch as Aliyun does, again after each delay while the answer is not ``{"code": 0}``."""
    tries = 0
    async with aiohttp.ClientSession() as http:
        for delay in fake.push_delays:
            await asyncio.sleep(delay)
            tries += 1
            try:
                async with http.post(url, json=records, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    answer = await resp.json(content_type=None) if resp.status == 200 else None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                answer = None
            if isinstance(answer, dict) and answer.get("code") == 0:
                break
    fake.pushes.append((kind, records, tries))


async def reply(request: web.Request) -> web.Response:
    """Control: a citizen at ``phone`` replies ``content`` (pushed as SmsUp to ``up_url``)."""
    fake = request.app[FAKE]
    data = await request.json()
    phone = _MOBILE.match(str(data.get("phone", "")))
    if phone is None or not fake.up_url:
        return web.json_response({"error": "phone must be a mainland mobile and up_url set"}, status=400)
    record = {"phone_number": phone.group(1), "content": str(data.get("content", "")),
              "send_time": fake.clock().strftime("%Y-%m-%d %H:%M:%S"),
              "dest_code": str(data.get("dest_code", "1")), "sequence_id": next(fake._ids)}  # fmt: skip
    _spawn(_push(fake, "SmsUp", fake.up_url, [record]))
    return web.json_response({"sequence_id": record["sequence_id"]})


ACTIONS = {"SendSms": _send_sms, "SendBatchSms": _send_batch, "QuerySendDetails": _query}


async def api(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    body = await request.read()
    try:
        verify(request.method, request.path, dict(request.query), request.headers, body, fake.secrets)
    except SignatureError as exc:
        return _answer(exc.code, str(exc), status=400 if exc.code != "InvalidAccessKeyId.NotFound" else 404)
    action, version = request.headers.get("x-acs-action", ""), request.headers.get("x-acs-version", "")
    if version != VERSION or action not in ACTIONS:
        return _answer(
            "InvalidAction.NotFound", f"Specified api is not found: {action} {version}", status=404
        )
    if fake.injected:
        code, status = fake.injected.pop(0)
        return _answer(code, "injected by the fake", status=status)
    params = dict(request.query)
    if body and request.content_type == "application/x-www-form-urlencoded":
        params.update({k: str(v) for k, v in (await request.post()).items()})
    return ACTIONS[action](fake, params)


async def inject(request: web.Request) -> web.Response:
    data = await request.json()
    count = int(data.get("count", 1))
    request.app[FAKE].injected.extend([(str(data["code"]), int(data.get("http_status", 200)))] * count)
    return web.json_response({"queued": len(request.app[FAKE].injected)})


async def earlier_today(request: web.Request) -> web.Response:
    """Control: ``{"sign", "template", "phones": [...], "count"}`` — those numbers already got ``count``
    messages of that signature and template today (``count`` 0 clears it: the day has passed)."""
    data = await request.json()
    fake = request.app[FAKE]
    for phone in data.get("phones", []):
        key = (str(data["sign"]), str(data["template"]), str(phone))
        if int(data.get("count", DAILY_LIMIT)):
            fake.earlier_today[key] = int(data.get("count", DAILY_LIMIT))
        else:
            fake.earlier_today.pop(key, None)
    return web.json_response({"numbers": len(fake.earlier_today)})


async def list_sent(request: web.Request) -> web.Response:
    counts = Counter(s.phone for s in request.app[FAKE].sent)
    return web.json_response(
        {
            "sent": [
                {"biz_id": s.biz_id, "phone": s.phone, "sign_name": s.sign_name,
                 "template_code": s.template_code, "content": s.content, "out_id": s.out_id}
                for s in request.app[FAKE].sent
            ],
            "per_phone": dict(counts),
        }
    )  # fmt: skip


def build_app(fake: FakeAliyun) -> web.Application:
    app = web.Application()
    app[FAKE] = fake
    app.router.add_post("/_fake/errors", inject)
    app.router.add_get("/_fake/sent", list_sent)
    app.router.add_post("/_fake/earlier-today", earlier_today)
    app.router.add_post("/_fake/reply", reply)
    app.router.add_post("/", api)
    return app


def main(argv: list[str] | None = None) -> None:
    """``python -m sms_gateway.aliyun.fake``: the fake as its own process (``make run`` in demo mode).  The
    key pair comes from ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (never from
    arguments, which ``ps`` shows), the pushes' path token from ``ALIYUN_SMS_PUSH_TOKEN``; templates from
    the registry file, approved unless it says otherwise."""
    import argparse

    from bot.core.env import Env
    from sms_gateway.aliyun.templates import EXAMPLE_FILE, TemplateRegistry

    parser = argparse.ArgumentParser(description="Alibaba Cloud SMS fake (dysmsapi 2017-05-25)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8184)
    parser.add_argument("--sign", action="append", default=[], help="an approved signature (repeatable)")
    parser.add_argument("--templates", default=str(EXAMPLE_FILE), help="the template registry file")
    parser.add_argument(
        "--push-base",
        default="",
        help="our push URLs without the token, e.g. http://127.0.0.1:8080/sms/aliyun",
    )
    args = parser.parse_args(argv)
    key_id = Env().text("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = Env().secret("ALIBABA_CLOUD_ACCESS_KEY_SECRET").get_secret_value()
    if not key_id or not secret:
        raise SystemExit("set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    token = Env().secret("ALIYUN_SMS_PUSH_TOKEN").get_secret_value()  # part of the URLs: not an argument
    base = f"{args.push_base.rstrip('/')}/{token}" if args.push_base and token else ""
    registry = TemplateRegistry.load(args.templates)
    fake = FakeAliyun(
        {key_id: secret},
        signs=set(args.sign) or {"县行政服务中心"},
        templates={t.code: Template(t.content, status=t.status) for t in registry.templates.values()},
        report_url=f"{base}/report" if base else "",
        up_url=f"{base}/up" if base else "",
    )
    web.run_app(build_app(fake), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
