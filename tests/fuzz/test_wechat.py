"""Fuzzing ``POST /wechat`` and ``GET /wechat`` through the real HTTP handler: requests signed and encrypted
with wechatpy's own crypto (``tests.support.wechat``), real Redis and SQLite, the scripted dialogue engine.

Properties:

* every answer is 200, 400, 403 or 413 — never a 500, never a traceback;
* a correctly signed and encrypted text message (any content, any sender, any extra elements) gets exactly
  one non-empty text reply, addressed to its sender;
* no request ends in the handler's catch-all (which answers ``success``: silence to the citizen) or in a
  failed turn: nothing is logged at ERROR level.
"""

from __future__ import annotations

import base64
import itertools
import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import xmltodict
from aiohttp.http_exceptions import HttpProcessingError
from hypothesis import example, given
from hypothesis import strategies as st
from yarl import URL

from bot.gateway.app import build_app, build_services
from bot.gateway.channels.wechat.handler import _xml_field
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from tests.fuzz import fuzz_settings
from tests.support.wechat import (
    ACCOUNT,
    TOKEN,
    WeChatRequest,
    decrypt_reply,
    settings_for,
    sign,
)

ALLOWED = {200, 400, 403, 413}
_nonces = itertools.count(1)
_msg_ids = itertools.count(7_000_000_000)


def fresh_nonce() -> str:
    """A nonce no earlier example used (the gateway refuses a nonce reused with another body)."""
    return f"{time.time_ns() % 10**9}{next(_nonces)}"


# ---------------------------------------------------------------------------------------------- strategies


def _xml_char(c: str) -> bool:
    cp = ord(c)
    return c in "\t\n" or 0x20 <= cp <= 0xD7FF or 0xE000 <= cp <= 0xFFFD or cp >= 0x10000


# Text an XML document can carry (what WeChat could ever send), with XML's own markup mixed in; "\r" is left
# out: XML reads it as "\n".
xml_chars = st.characters(exclude_categories=["Cs"]).filter(_xml_char)
MARKUP = ["]]>", "<![CDATA[", "]]", "<", ">", "&", "&amp;", '"', "'", "\n", "<xml>", "</xml>"]
xml_text = st.lists(st.one_of(xml_chars, xml_chars, st.sampled_from(MARKUP)), max_size=40).map("".join)
any_text = st.text(max_size=60)  # surrogates and control characters too (for the raw-bytes cases)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,12}", fullmatch=True).filter(
    lambda n: not n.lower().startswith("xml")
)
# A value of an element: text, a nested element, or the element repeated.
values = st.recursive(
    xml_text,
    lambda inner: st.one_of(
        st.dictionaries(names, inner, max_size=3), st.lists(inner, min_size=2, max_size=3)
    ),
    max_leaves=6,
)
MESSAGE_FIELDS = {"ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId"}
extra_elements = st.dictionaries(names.filter(lambda n: n not in MESSAGE_FIELDS), values, max_size=4)
openids = xml_text.filter(lambda s: s.strip() != "")
msg_types = st.sampled_from(
    ["text", "voice", "image", "location", "link", "video", "shortvideo", "event", "file", "TEXT", "", "x"]
)
events = st.sampled_from(
    [
        "subscribe",
        "unsubscribe",
        "CLICK",
        "SCAN",
        "VIEW",
        "LOCATION",
        "TEMPLATESENDJOBFINISH",
        "",
        "SUBSCRIBE",
    ]
)
event_keys = st.one_of(
    xml_text,
    st.sampled_from(["GUIDE", "PROGRESS", "qrscene_guide", "qrscene_", "qrscene_progress", "scanbarcode|x"]),
    st.dictionaries(names, xml_text, min_size=1, max_size=2),
    st.lists(xml_text, min_size=2, max_size=2),
)


def render(fields: dict[str, Any]) -> str:
    return xmltodict.unparse({"xml": fields}, full_document=False)


@st.composite
def text_messages(draw: st.DrawFn) -> tuple[str, str, str]:
    """(xml, openid, content) of a text message as WeChat sends it, plus random extra elements."""
    openid, content = draw(openids), draw(xml_text)
    fields: dict[str, Any] = {
        "ToUserName": ACCOUNT,
        "FromUserName": openid,
        "CreateTime": int(time.time()),
        "MsgType": "text",
        "Content": content,
        "MsgId": next(_msg_ids),
        **draw(extra_elements),
    }
    return render(fields), openid, content


@st.composite
def any_messages(draw: st.DrawFn) -> str:
    """Well-formed XML with WeChat's elements in any combination: each one as WeChat sends it, of any other
    type (text, number, nested, repeated), or missing."""
    fields: dict[str, Any] = {}
    for name, good in (
        ("ToUserName", st.just(ACCOUNT)),
        ("FromUserName", openids),
        ("CreateTime", st.integers(0, 2**31)),
        ("MsgType", msg_types),
        ("MsgId", st.builds(lambda: next(_msg_ids))),
        ("Event", events),
        ("EventKey", event_keys),
        ("Content", xml_text),
        ("Recognition", xml_text),
        ("Ticket", xml_text),
    ):
        how = draw(st.sampled_from(["good", "good", "other", "absent"]))
        if how != "absent":
            fields[name] = draw(good if how == "good" else st.one_of(values, st.integers(-(2**70), 2**70)))
    fields.update(draw(extra_elements))
    return render(fields)


def message(**fields: Any) -> str:
    return render({"ToUserName": ACCOUNT, "FromUserName": "oA", "CreateTime": 1, "MsgId": 1, **fields})


# What a query parameter may be replaced with: numbers in any script and form (², ٣, ①, full-width), signs,
# spaces, anything.
DIGITS = "0123456789²³¹⁰⁴①⑩٣۴०১๓０１"
numberish = st.one_of(
    st.text(st.sampled_from(DIGITS), min_size=1, max_size=12),
    st.text(st.sampled_from(DIGITS + "+- ."), max_size=12),
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=12),
)
param_values = st.one_of(numberish, numberish, any_text)


@st.composite
def queries(draw: st.DrawFn, good: dict[str, str]) -> dict[str, str]:
    """The good query with each parameter kept, dropped or replaced, plus random extra parameters."""
    query: dict[str, str] = {}
    for name in ("signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "echostr"):
        action = draw(st.sampled_from(["keep", "drop", "replace"]))
        if action == "keep" and name in good:
            query[name] = good[name]
        elif action == "replace":
            query[name] = draw(param_values)
    query.update(draw(st.dictionaries(any_text, any_text, max_size=3)))
    return query


# ---------------------------------------------------------------------------------------------- harness


async def _gateway(aiohttp_client, redis_client, sqlite_url, fake_wechat, mode: str, **overrides: Any):
    """One gateway per test, shared by its examples (each example uses fresh nonces and message ids)."""
    api_base = str(fake_wechat.make_url("")).rstrip("/")
    settings = settings_for(mode, api_base, sqlite_url, **overrides)
    services = await build_services(settings, redis=redis_client, dialogue=ScriptedDialogue())
    return await aiohttp_client(build_app(services))


@pytest.fixture
async def safe_gateway(aiohttp_client, redis_client, sqlite_url, fake_wechat):
    return await _gateway(aiohttp_client, redis_client, sqlite_url, fake_wechat, "safe")


@pytest.fixture
async def plain_gateway(aiohttp_client, redis_client, sqlite_url, fake_wechat):
    """Plain mode with plaintext allowed: arbitrary XML reaches the parser directly."""
    return await _gateway(aiohttp_client, redis_client, sqlite_url, fake_wechat, "plain")


def _ours(record: logging.LogRecord) -> bool:
    """An error of ours, not aiohttp's own 400 for a request line it cannot parse (raw non-ASCII)."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (record.name == "aiohttp.server" and isinstance(exc, HttpProcessingError) and exc.code == 400)


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and _ours(r)]
    assert not errors, [(r.name, r.getMessage(), r.exc_info and repr(r.exc_info[1])) for r in errors]


async def send(client, path: str | URL, body: bytes, method: str = "POST") -> tuple[int, str]:
    resp = await client.request(method, path, data=body, headers={"Content-Type": "text/xml"})
    text = await resp.text()
    assert resp.status in ALLOWED, (resp.status, text[:300])
    assert "Traceback" not in text
    return resp.status, text


def signed_query(timestamp: str, nonce: str, **extra: str) -> str:
    query = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, **extra}
    return urlencode(query)


def now() -> str:
    return str(int(time.time()))


# ---------------------------------------------------------------------------------------------- properties


@fuzz_settings(120)
@given(message=text_messages())
@example(message=(message(MsgType="text", Content="a]]>b", FromUserName="oA"), "oA", "a]]>b"))
@example(message=(message(MsgType="text", Content="x", FromUserName="o]]>A", MsgId=3), "o]]>A", "x"))
async def test_signed_text_message_always_gets_a_reply(safe_gateway, caplog, message) -> None:
    """Safe mode (the production default): WeChat's envelope around a random text message."""
    caplog.clear()
    xml, openid, _content = message
    status, answer = await send(safe_gateway, *WeChatRequest(xml, nonce=fresh_nonce()).build())
    assert status == 200, answer[:200]
    assert answer != "success", "a text message was answered with silence"
    reply = decrypt_reply(answer, "safe")
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == openid.strip()
    assert (reply.get("Content") or "").strip(), "empty reply"
    no_errors_logged(caplog)


@fuzz_settings(120)
@given(plaintext=st.one_of(any_messages(), any_text, xml_text.map(lambda t: f"<xml>{t}</xml>")))
@example(plaintext=message(MsgType="text", MsgId=2, Content={"@a": "1", "#text": "x"}))  # found: failed turn
async def test_signed_envelope_around_any_plaintext(safe_gateway, caplog, plaintext) -> None:
    """A correctly signed and encrypted envelope whose plaintext is anything at all."""
    caplog.clear()
    try:
        request = WeChatRequest(plaintext, nonce=fresh_nonce())
        path, body = request.build()
    except UnicodeEncodeError:  # lone surrogates cannot even be encrypted (UTF-8)
        return
    status, answer = await send(safe_gateway, path, body)
    if status == 200 and answer != "success":
        reply = decrypt_reply(answer, "safe")
        assert reply["MsgType"] in ("text", "transfer_customer_service")
    no_errors_logged(caplog)


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """What could come instead of a good envelope: random bytes, or XML with a random ``<Encrypt>``."""
    kind = draw(st.sampled_from(["bytes", "xml", "base64"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "base64":
        raw = draw(st.binary(max_size=200))
        encrypt = base64.b64encode(raw).decode()
    else:
        encrypt = draw(any_text)
    inner = {"ToUserName": ACCOUNT, "Encrypt": encrypt, **draw(extra_elements)}
    return render(inner).encode("utf-8", "surrogatepass")


@fuzz_settings(150)
@given(body=envelopes(), sign_encrypt=st.booleans())
@example(body=b"<xml><Encrypt>!!!</Encrypt></xml>", sign_encrypt=True)
async def test_garbage_envelopes_are_refused(safe_gateway, caplog, body, sign_encrypt) -> None:
    """Signed query, but the body is not WeChat's ciphertext: 400 or 403, never 200 (it cannot decrypt)."""
    caplog.clear()
    ts, nonce = now(), fresh_nonce()
    extra = {"encrypt_type": "aes"}
    if sign_encrypt:  # sign whatever the gateway will read as the Encrypt element
        encrypt = _xml_field(body, "Encrypt")
        extra["msg_signature"] = sign(TOKEN, ts, nonce, encrypt or "")
    status, _answer = await send(safe_gateway, "/wechat?" + signed_query(ts, nonce, **extra), body)
    assert status in (400, 403, 413)
    no_errors_logged(caplog)


@fuzz_settings(300)
@given(
    data=st.data(),
    raw=st.one_of(
        st.none(),
        st.none(),
        st.none(),
        st.text(st.sampled_from("%&=+;?#/aZ0-_.~²٣\u00e9\u4e2d "), max_size=40),
    ),
    method=st.sampled_from(["GET", "POST"]),
)
async def test_random_query_strings(safe_gateway, caplog, data, raw, method) -> None:
    """Good and broken query strings on GET (URL verification) and POST: only 200/400/403/413."""
    caplog.clear()
    path, body = WeChatRequest(data.draw(text_messages())[0], nonce=fresh_nonce()).build()
    good = {k: str(v) for k, v in URL(path).query.items()}
    good["echostr"] = "echo"
    query = data.draw(queries(good))
    try:
        url = URL("/wechat").with_query(query) if raw is None else URL("/wechat?" + raw, encoded=True)
    except (UnicodeEncodeError, ValueError):
        return
    status, answer = await send(safe_gateway, url, body if method == "POST" else b"", method)
    if status == 200 and raw is None:
        if method == "GET":
            assert answer == query.get("echostr", "")
        elif answer != "success":
            assert all(query.get(k) == good[k] for k in ("signature", "timestamp", "nonce", "msg_signature"))
    no_errors_logged(caplog)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_timestamp_of_other_digits_is_refused(safe_gateway, caplog, method) -> None:
    """Found by the query fuzzing: ``"²".isdigit()`` but ``int("²")`` fails — a 500 on the URL check and
    silence (``success`` from the catch-all) on a message."""
    caplog.clear()
    body = WeChatRequest(message(MsgType="text", Content="你好")).build()[1] if method == "POST" else b""
    status, answer = await send(safe_gateway, "/wechat?" + signed_query("²", "1", echostr="e"), body, method)
    assert (status, answer) == (403, "forbidden")
    no_errors_logged(caplog)


@fuzz_settings(500)
@given(xml=st.one_of(any_messages(), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
@example(xml=message(MsgType="text", Content="你好", CreateTime="x"))  # found: silence (ValueError)
@example(xml=message(MsgType="text", Content="你好", MsgId="1e3"))  # found: silence (ValueError)
@example(xml=message(MsgType="text", Content={"@lang": "zh", "#text": "你好"}))  # found: a failed turn
@example(xml=message(MsgType="text", Content={"b": "你好"}))  # found: a failed turn (TypeError)
@example(xml=message(MsgType="event", Event="SCAN", EventKey=["progress", "guide"]))
@example(xml=message(MsgType="event", Event="CLICK", EventKey={"k": "GUIDE"}))
async def test_plain_mode_any_xml(plain_gateway, caplog, xml) -> None:
    """Plain mode: arbitrary (mostly well-formed) XML straight into the parser and the dispatch."""
    caplog.clear()
    body = xml.encode("utf-8", "surrogatepass")
    status, answer = await send(plain_gateway, "/wechat?" + signed_query(now(), fresh_nonce()), body)
    if status == 200 and answer != "success":
        reply = xmltodict.parse(answer)["xml"]
        assert reply["MsgType"] in ("text", "transfer_customer_service")
        if reply["MsgType"] == "text":
            assert (reply.get("Content") or "").strip()
    no_errors_logged(caplog)
