"""Fuzzing the Twilio webhooks (``POST /sms/twilio`` and ``/sms/twilio/status``) over real HTTP: requests
signed with twilio's own ``RequestValidator`` (``tests.support.sms``), real Redis and SQLite, the Twilio fake
and the scripted dialogue engine.

Properties:

* every answer is 200, 400, 403 or 413 — never a 500, never a traceback, nothing logged at ERROR;
* an unsigned (or wrongly signed) request is 403;
* a signed message with a body from a mobile number gets a reply: TwiML ``<Message>`` elements, or messages
  queued in the ledger.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from aiohttp.http_exceptions import HttpProcessingError
from hypothesis import event, example, given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from yarl import URL

from sms_gateway.twilio.testing import inbound_params, status_params
from tests.fuzz import fuzz_settings
from tests.support.sms import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, SmsHarness, start_harness

ALLOWED = {200, 400, 403, 413}
_phones = itertools.count(1)


def fresh_mobile() -> str:
    """A mainland mobile no earlier example used (an earlier "T" would have opted it out)."""
    return f"+86139{next(_phones) % 10**8:08d}"


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


# ---------------------------------------------------------------------------------------------- strategies

# What may come in a form field: anything encodable (lone surrogates cannot be sent as UTF-8).
form_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
bodies = st.one_of(
    form_text,
    st.sampled_from(
        ["T", "td。", "STOP", "退订", "START", "HELP", "？", "更多", "/restart", "", " ", "\x00"]
    ),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=150, max_size=1200),
)
phones = st.one_of(
    st.from_regex(r"\+861[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"\+1[2-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"(\+|00)?[0-9 ()\-]{0,16}", fullmatch=True),
    st.sampled_from(["whatsapp:+8613812345678", "+86 10 1234 5678", "TWILIO", "+", "0", "+0000000"]),
    form_text,
)
numbers = st.one_of(st.integers(-(2**70), 2**70).map(str), form_text)
FIELDS = "MessageSid SmsMessageSid SmsSid From To Body AccountSid NumSegments NumMedia FromCountry".split()


@st.composite
def inbound_forms(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Twilio's inbound form with each field kept, dropped, replaced or repeated, plus extra fields."""
    good = inbound_params(
        account_sid=ACCOUNT_SID, sender=draw(phones), to=FROM_NUMBER, body=draw(bodies), message_sid=new_sid()
    )
    form: list[tuple[str, str]] = []
    for name, value in good.items():
        how = draw(st.sampled_from(["keep"] * 12 + ["drop", "replace", "repeat"]))
        if how == "keep":
            form.append((name, value))
        elif how == "replace":
            form.append((name, draw(numbers if name.startswith("Num") else form_text)))
        elif how == "repeat":
            form += [(name, value), (name, draw(form_text))]
    form += draw(st.lists(st.tuples(st.one_of(form_text, st.sampled_from(FIELDS)), form_text), max_size=3))
    return form


# ---------------------------------------------------------------------------------------------- harness


@pytest.fixture
async def sms(redis_client, sqlite_url):
    harness = await start_harness(redis_client, sqlite_url)
    yield harness
    await harness.close()


def _ours(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    return not (record.name == "aiohttp.server" and isinstance(exc, HttpProcessingError) and exc.code == 400)


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and _ours(r)]
    assert not errors, [(r.name, r.getMessage(), r.exc_info and repr(r.exc_info[1])) for r in errors]


async def post(
    harness: SmsHarness,
    path: str,
    form: list[tuple[str, str]] | bytes,
    *,
    signed: bool = True,
    charset: str = "utf-8",
    **headers: str,
) -> tuple[int, str]:
    """POST ``form`` to ``path``, signed over the public URL as Twilio signs it (repeated fields too), its
    fields percent-encoded in ``charset`` (which the Content-Type names unless it is UTF-8)."""
    if signed and not isinstance(form, bytes):
        multi: dict[str, list[str]] = {}
        for key, value in form:
            multi.setdefault(key, []).append(value)
        signature = RequestValidator(AUTH_TOKEN).compute_signature(harness.base_url + path, _Multi(multi))
        headers.setdefault("X-Twilio-Signature", signature)
    if not isinstance(form, bytes):
        form = urlencode(form, encoding=charset).encode()
        declared = "" if charset == "utf-8" else f"; charset={charset}"
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded" + declared)
    async with harness.http.post(
        URL(local_base(harness) + path, encoded=True), data=form, headers=headers
    ) as resp:
        text = await resp.text()
        assert resp.status in ALLOWED, (resp.status, text[:300])
        assert "Traceback" not in text
        return resp.status, text


def local_base(harness: SmsHarness) -> str:
    """Where the routes listen; the path is appended as it is (``make_url`` would re-quote it, and the
    signature covers the path as sent)."""
    return str(harness.app_server.make_url("/")).rstrip("/")


class _Multi(dict):
    """The form as twilio's validator reads an aiohttp form: ``getall`` for repeated fields."""

    def getall(self, key: str) -> list[str]:
        return self[key]


def twiml_messages(body: str) -> list[str]:
    root = ET.fromstring(body.encode("utf-8"))
    assert root.tag == "Response"
    return [m.text or "" for m in root.iter("Message")]


# ---------------------------------------------------------------------------------------------- properties


FORM = "application/x-www-form-urlencoded"


@fuzz_settings(300)
@given(
    body=st.binary(max_size=200),
    content_type=st.one_of(
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=gbk",
                "application/x-www-form-urlencoded; charset=utf-16",
                "application/x-www-form-urlencoded; charset=nope",
                "multipart/form-data; boundary=x",
                "application/json",
                "text/plain",
            ]
        ),
        form_text.map(lambda t: "application/x-www-form-urlencoded; charset=" + t),
    ),
    path=st.sampled_from(["/sms/twilio", "/sms/twilio/status", "/sms/twilio/status?lid=x&n=1"]),
    signature=st.one_of(st.none(), form_text),
)
# found: a body the declared charset cannot decode, or an unknown charset, was a 500 on the status callback
# and silence (the catch-all) on an inbound message
@example(body=b"Body=%FF", content_type=FORM, path="/sms/twilio/status", signature=None)
@example(body=b"Body=%FF", content_type=FORM, path="/sms/twilio", signature="x")
@example(body=b"Body=x", content_type=FORM + "; charset=nope", path="/sms/twilio/status", signature=None)
async def test_raw_bodies_and_encodings(sms, caplog, body, content_type, path, signature) -> None:
    """Any bytes under any declared encoding: never a 500; nothing unsigned is accepted."""
    caplog.clear()
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    try:
        status, _answer = await post(sms, path, body, signed=False, **headers)
    except ValueError:  # aiohttp refuses to send a header with a newline
        return
    assert status == 403
    no_errors_logged(caplog)


@fuzz_settings(250)
@given(
    status_value=st.one_of(st.sampled_from(["queued", "sent", "delivered", "failed", "read"]), form_text),
    error_code=st.one_of(st.none(), numbers),
    attempt=st.one_of(st.none(), numbers),
    ledger=st.sampled_from(["real", "random", "none"]),
    random_lid=form_text,
    sid=st.one_of(st.just("real"), form_text),
)
# found: an error code or attempt number beyond 32 bits was a 500 (OverflowError from the database)
@example(status_value="failed", error_code=str(2**40), attempt=None, ledger="real", random_lid="", sid="real")
@example(status_value="sent", error_code=None, attempt=str(2**63), ledger="real", random_lid="", sid="real")
async def test_status_callbacks(
    sms, caplog, status_value, error_code, attempt, ledger, random_lid, sid
) -> None:
    """Signed status callbacks with any status, error code, attempt and ledger id: 200 or 400."""
    caplog.clear()
    phone = fresh_mobile()
    params = inbound_params(
        account_sid=ACCOUNT_SID, sender=phone, to=FROM_NUMBER, body="你好", message_sid=new_sid()
    )
    await post(sms, "/sms/twilio", list(params.items()))
    if not await sms.ledger(phone):  # a reply later than the sync deadline is written by the late path
        await sms.settle()
    (entry,) = await sms.ledger(phone)
    lid = {"real": entry.id, "random": random_lid, "none": None}[ledger]
    q = {k: v for k, v in (("lid", lid), ("n", attempt)) if v is not None}
    path = "/sms/twilio/status" + (f"?{urlencode(q)}" if q else "")
    form = status_params(
        account_sid=ACCOUNT_SID,
        message_sid=(entry.provider_sid or new_sid()) if sid == "real" else sid,
        status=status_value,
        to=phone,
        from_=FROM_NUMBER,
    )
    if error_code is not None:
        form["ErrorCode"] = error_code
    status, _ = await post(sms, path, list(form.items()))
    assert status in (200, 400)
    no_errors_logged(caplog)


@fuzz_settings(200)
@given(body=bodies.filter(lambda b: b.strip() != ""), extra=st.dictionaries(form_text, form_text, max_size=3))
@example(body="你好\x0b", extra={})  # found: the echoed control character made the TwiML malformed: silence
async def test_signed_message_always_gets_a_reply(sms, caplog, body, extra) -> None:
    """From a mobile that never wrote before, with any body: a TwiML reply, or one queued in the ledger."""
    caplog.clear()
    phone = fresh_mobile()
    params = inbound_params(
        account_sid=ACCOUNT_SID, sender=phone, to=FROM_NUMBER, body=body, message_sid=new_sid()
    )
    form = list({**extra, **params}.items())
    status, answer = await post(sms, "/sms/twilio", form)
    assert status == 200, answer
    replies = twiml_messages(answer)
    if not replies:
        await sms.settle()
        assert await sms.ledger(phone), f"no reply to {body!r}"
    assert all(r.strip() for r in replies)
    no_errors_logged(caplog)


@fuzz_settings(500)
@given(
    form=inbound_forms(),
    signed=st.sampled_from([True, True, True, False]),
    charset=st.sampled_from(["utf-8", "utf-8", "gbk", "gb18030", "utf-16", "latin-1"]),
)
# found: a signed message whose From is no phone number failed its turn and then its reply: silence
@example(form=[("MessageSid", "SM1"), ("From", "TWILIO"), ("Body", "你好")], signed=True, charset="utf-8")
@example(
    form=[("MessageSid", "SM2"), ("From", "+14000000000"), ("Body", "你好")], signed=True, charset="utf-8"
)
async def test_any_inbound_form(sms, caplog, form, signed, charset) -> None:
    """Twilio's form with fields dropped, replaced, repeated and added, in several encodings."""
    caplog.clear()
    try:
        status, answer = await post(sms, "/sms/twilio", form, signed=signed, charset=charset)
    except UnicodeEncodeError:  # a field that charset cannot carry
        return
    event(f"status {status}")  # --hypothesis-show-statistics: how many got through to a turn
    if not signed:
        assert status == 403
    if status == 200:
        assert all(r.strip() for r in twiml_messages(answer))
    no_errors_logged(caplog)


async def test_a_provider_sid_on_two_ledger_rows(sms, caplog) -> None:
    """Found by fuzzing status callbacks: once two rows carried the same MessageSid (signed callbacks naming
    each row by ``lid``), a callback naming neither row (no ``lid``) was a 500 (MultipleResultsFound)."""
    sid = new_sid()
    for _ in range(2):
        phone = fresh_mobile()
        params = inbound_params(
            account_sid=ACCOUNT_SID, sender=phone, to=FROM_NUMBER, body="你好", message_sid=new_sid()
        )
        await post(sms, "/sms/twilio", list(params.items()))
        if not await sms.ledger(phone):
            await sms.settle()
        (entry,) = await sms.ledger(phone)
        form = status_params(
            account_sid=ACCOUNT_SID, message_sid=sid, status="sent", to=phone, from_=FROM_NUMBER
        )
        assert (await post(sms, f"/sms/twilio/status?lid={entry.id}", list(form.items())))[0] == 200
    caplog.clear()
    form = status_params(
        account_sid=ACCOUNT_SID, message_sid=sid, status="delivered", to=phone, from_=FROM_NUMBER
    )
    assert (await post(sms, "/sms/twilio/status", list(form.items())))[0] == 200
    no_errors_logged(caplog)
