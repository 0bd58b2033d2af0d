"""The Twilio fake checked against Twilio's OpenAPI description (the copy in sms_gateway/twilio/spec/):
every request field accepted, every response field present with its type, every status and direction value
in the spec's enums, the list envelope and filters, Basic auth, Twilio's error shape, signed callbacks."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from sms_gateway.twilio import fake
from sms_gateway.twilio.spec import SPEC_PATH

SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
LIST_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
ONE_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
ACCOUNT = "AC" + "ab" * 16
TOKEN = "conformance-token"
SERVICE = "MG" + "cd" * 16
FROM = "+15005550006"
TO = "+8613812345678"


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def violations(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """A small OpenAPI 3.0 schema check: types, nullable, enum, pattern, formats, required properties."""
    schema = resolve(schema)
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null not allowed"]
    out: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not in {schema['enum']}")
    kind = schema.get("type")
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: {value!r} is not a string"]
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if schema.get("format") == "date-time-rfc-2822":
            try:
                parsedate_to_datetime(value)
            except (TypeError, ValueError):
                out.append(f"{where}: {value!r} is not an RFC 2822 date")
        if schema.get("format") == "uri" and not value.startswith(("/", "http")):
            out.append(f"{where}: {value!r} is not a URI")
    elif kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        out.append(f"{where}: {value!r} is not an integer")
    elif kind == "number" and not isinstance(value, int | float):
        out.append(f"{where}: {value!r} is not a number")
    elif kind == "boolean" and not isinstance(value, bool):
        out.append(f"{where}: {value!r} is not a boolean")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: not an array"]
        for i, item in enumerate(value):
            out += violations(item, schema.get("items", {}), f"{where}[{i}]")
    elif kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        for name, sub in schema.get("properties", {}).items():
            if name not in value:
                out.append(f"{where}.{name}: missing")
            else:
                out += violations(value[name], sub, f"{where}.{name}")
    return out


def request_schema() -> dict[str, Any]:
    body = SPEC["paths"][LIST_PATH]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    return body["schema"]


def sample(name: str, schema: dict[str, Any]) -> str | list[str]:
    """A valid form value for a request field, from its schema."""
    schema = resolve(schema)
    fixed = {"To": TO, "From": FROM, "FallbackFrom": FROM, "MessagingServiceSid": SERVICE, "Body": "Hello"}
    if name in fixed:
        return fixed[name]
    if name == "SendAt":
        return (datetime.now(UTC) + timedelta(days=1)).isoformat()
    if "enum" in schema:
        return str(schema["enum"][0])
    kind = schema.get("type")
    if kind == "boolean":
        return "true"
    if kind == "integer":
        return "1"
    if kind == "number":
        return "0.5"
    if kind == "array":
        return [str(sample(name, schema.get("items", {"type": "string"})))]
    if schema.get("format") == "uri":
        return "https://example.com/status"
    if "pattern" in schema:
        prefix = re.match(r"\^\(?([A-Z]{2})", schema["pattern"])
        return (prefix.group(1) if prefix else "XX") + "0" * 32
    return "x"


def form_for(fields: dict[str, str | list[str]]) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            data.add_field(key, item)
    return data


AUTH = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()}


@pytest.fixture
async def twilio(aiohttp_server, aiohttp_client):
    callbacks: list[tuple[str, dict[str, str], str]] = []

    async def receive(request: web.Request) -> web.Response:
        callbacks.append(
            (
                str(request.url),
                {k: str(v) for k, v in (await request.post()).items()},
                request.headers["X-Twilio-Signature"],
            )
        )
        return web.Response(text="")

    sink = web.Application()
    sink.router.add_post("/status", receive)
    sink_server = await aiohttp_server(sink)
    app = fake.build_app(
        ACCOUNT, TOKEN, from_numbers=(FROM,), messaging_service_sid=SERVICE, callback_delay=0.01
    )
    client = await aiohttp_client(await aiohttp_server(app))
    client.callbacks = callbacks
    client.status_url = str(sink_server.make_url("/status"))
    client.state = app[fake.FAKE_STATE]
    return client


def messages_url(account: str = ACCOUNT) -> str:
    return LIST_PATH.replace("{AccountSid}", account)


MESSAGE_SCHEMA = {"$ref": "#/components/schemas/api.v2010.account.message"}


# ---------------------------------------------------------------------------------------------- the spec


def test_the_spec_copy_is_the_messages_resource() -> None:
    assert SPEC["openapi"].startswith("3.")
    assert set(SPEC["paths"]) == {LIST_PATH, ONE_PATH}
    assert {"post", "get"} <= set(SPEC["paths"][LIST_PATH]) and "get" in SPEC["paths"][ONE_PATH]
    assert SPEC["components"]["securitySchemes"]["accountSid_authToken"]["scheme"] == "basic"


def test_the_fake_knows_exactly_the_spec_request_fields() -> None:
    assert set(request_schema()["properties"]) == set(fake.REQUEST_FIELDS)
    assert request_schema()["required"] == ["To"]


def test_every_status_and_direction_the_fake_uses_is_in_the_spec() -> None:
    assert set(fake.STATUSES) <= set(resolve({"$ref": "#/components/schemas/message_enum_status"})["enum"])
    assert set(fake.DIRECTIONS) <= set(
        resolve({"$ref": "#/components/schemas/message_enum_direction"})["enum"]
    )


def test_the_fake_understands_every_list_filter() -> None:
    names = {p["name"] for p in SPEC["paths"][LIST_PATH]["get"]["parameters"] if p["in"] == "query"}
    assert names == set(fake.LIST_FILTERS)


# ---------------------------------------------------------------------------------------------- create


@pytest.mark.parametrize("field", sorted(request_schema()["properties"]))
async def test_each_request_field_is_accepted(twilio, field: str) -> None:
    fields: dict[str, Any] = {"To": TO, "From": FROM, "Body": "Hello"}
    fields[field] = sample(field, request_schema()["properties"][field])
    if field in ("ScheduleType", "SendAt"):
        fields.update(
            ScheduleType="fixed",
            SendAt=sample("SendAt", {}),
            MessagingServiceSid=SERVICE,
        )
    resp = await twilio.post(messages_url(), data=form_for(fields), headers=AUTH)
    body = await resp.json()
    assert resp.status == 201, body
    assert violations(body, MESSAGE_SCHEMA) == []
    assert body["status"] == ("scheduled" if field in ("ScheduleType", "SendAt") else "queued")


async def test_all_request_fields_together(twilio) -> None:
    props = request_schema()["properties"]
    fields = {name: sample(name, schema) for name, schema in props.items()}
    fields["StatusCallback"] = twilio.status_url
    resp = await twilio.post(messages_url(), data=form_for(fields), headers=AUTH)
    body = await resp.json()
    assert resp.status == 201, body
    assert violations(body, MESSAGE_SCHEMA) == []
    assert body["status"] == "scheduled" and body["messaging_service_sid"] == SERVICE


async def test_responses_match_the_message_schema(twilio) -> None:
    fields = {"To": TO, "From": FROM, "Body": "您好，办件已受理。", "StatusCallback": twilio.status_url}
    created = await (await twilio.post(messages_url(), data=fields, headers=AUTH)).json()
    schema_props = set(resolve(MESSAGE_SCHEMA)["properties"])
    assert set(created) == schema_props
    assert violations(created, MESSAGE_SCHEMA) == []
    assert created["direction"] == "outbound-api" and created["num_segments"] == "1"
    fetch = await twilio.get(
        ONE_PATH.replace("{AccountSid}", ACCOUNT).replace("{Sid}", created["sid"]), headers=AUTH
    )
    assert fetch.status == 200
    assert violations(await fetch.json(), MESSAGE_SCHEMA) == []
    listing = await twilio.get(messages_url(), params={"To": TO, "PageSize": "1"}, headers=AUTH)
    envelope = await listing.json()
    list_schema = SPEC["paths"][LIST_PATH]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(envelope) == set(list_schema["properties"])
    assert violations(envelope, list_schema) == []
    assert [m["sid"] for m in envelope["messages"]] == [created["sid"]]


async def test_lifecycle_statuses_and_signed_callbacks(twilio) -> None:
    twilio.state.numbers["+8613900000000"] = fake.NumberRule(30003)
    for to in (TO, "+8613900000000"):
        fields = {"To": to, "From": FROM, "Body": "hi", "StatusCallback": twilio.status_url}
        assert (await twilio.post(messages_url(), data=fields, headers=AUTH)).status == 201
    for _ in range(200):
        if len(twilio.callbacks) >= 4:
            break
        await asyncio.sleep(0.01)
    enum = resolve({"$ref": "#/components/schemas/message_enum_status"})["enum"]
    statuses = [params["MessageStatus"] for _, params, _ in twilio.callbacks]
    assert sorted(statuses) == ["delivered", "sent", "sent", "undelivered"]
    assert set(statuses) <= set(enum)
    validator = RequestValidator(TOKEN)
    for url, params, signature in twilio.callbacks:
        assert validator.validate(url, params, signature)
        assert params["AccountSid"] == ACCOUNT and params["ApiVersion"] == "2010-04-01"
        if params["MessageStatus"] == "undelivered":
            assert params["ErrorCode"] == "30003"
    for message in twilio.state.messages.values():
        assert violations(message.resource(), MESSAGE_SCHEMA) == []


# ---------------------------------------------------------------------------------------------- listing


async def test_list_filters_and_paging(twilio) -> None:
    for i in range(5):
        await twilio.post(messages_url(), data={"To": TO, "From": FROM, "Body": f"m{i}"}, headers=AUTH)
    await twilio.post(
        messages_url(), data={"To": "+8613900000001", "From": FROM, "Body": "other"}, headers=AUTH
    )
    page0 = await (await twilio.get(messages_url(), params={"To": TO, "PageSize": "2"}, headers=AUTH)).json()
    assert [m["body"] for m in page0["messages"]] == ["m4", "m3"]  # newest first
    assert page0["next_page_uri"] and page0["previous_page_uri"] is None and page0["start"] == 0
    page2 = await (await twilio.get(page0["next_page_uri"].replace("Page=1", "Page=2"), headers=AUTH)).json()
    assert [m["body"] for m in page2["messages"]] == ["m0"] and page2["next_page_uri"] is None
    everyone = await (await twilio.get(messages_url(), params={"From": FROM}, headers=AUTH)).json()
    assert len(everyone["messages"]) == 6
    today = datetime.now(UTC).date().isoformat()
    await asyncio.sleep(0.1)  # date_sent is set when the fake "sends"
    sent_today = await (await twilio.get(messages_url(), params={"DateSent>": today}, headers=AUTH)).json()
    assert len(sent_today["messages"]) == 6
    none_later = await (
        await twilio.get(messages_url(), params={"DateSent<": "2001-01-01"}, headers=AUTH)
    ).json()
    assert none_later["messages"] == []


# ---------------------------------------------------------------------------------------------- errors


def _is_twilio_error(body: dict[str, Any], code: int, status: int) -> bool:
    return bool(
        body["code"] == code
        and body["status"] == status
        and body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
        and isinstance(body["message"], str)
        and body["message"]
    )


@pytest.mark.parametrize(
    ("label", "fields", "code"),
    [
        ("no To", {"From": FROM, "Body": "x"}, 21604),
        ("no From or service", {"To": TO, "Body": "x"}, 21603),
        ("no Body", {"To": TO, "From": FROM}, 21602),
        ("bad To", {"To": "12345", "From": FROM, "Body": "x"}, 21211),
        ("Body too long", {"To": TO, "From": FROM, "Body": "x" * 1601}, 21617),
        ("From not ours", {"To": TO, "From": "+15550001111", "Body": "x"}, 21606),
        ("unknown service", {"To": TO, "MessagingServiceSid": "MG" + "0" * 32, "Body": "x"}, 21701),
        ("bad StatusCallback", {"To": TO, "From": FROM, "Body": "x", "StatusCallback": "ftp:x"}, 21609),
        (
            "schedule too soon",
            {
                "To": TO,
                "MessagingServiceSid": SERVICE,
                "Body": "x",
                "ScheduleType": "fixed",
                "SendAt": datetime.now(UTC).isoformat(),
            },
            35114,
        ),
    ],
)
async def test_validation_errors(twilio, label: str, fields: dict[str, str], code: int) -> None:
    resp = await twilio.post(messages_url(), data=fields, headers=AUTH)
    assert resp.status == 400, label
    assert _is_twilio_error(await resp.json(), code, 400), label


async def test_injected_failures(twilio) -> None:
    twilio.state.unsubscribed.add(TO)
    resp = await twilio.post(messages_url(), data={"To": TO, "From": FROM, "Body": "x"}, headers=AUTH)
    assert _is_twilio_error(await resp.json(), 21610, 400)
    twilio.state.numbers["+8613900000002"] = fake.NumberRule(21614)
    resp = await twilio.post(
        messages_url(), data={"To": "+8613900000002", "From": FROM, "Body": "x"}, headers=AUTH
    )
    assert _is_twilio_error(await resp.json(), 21614, 400)
    for status, code in ((429, 20429), (500, 20500), (503, 20503)):
        twilio.state.failures.append(fake.HttpFailure("create", status, None, 0, False, 1))
        resp = await twilio.post(
            messages_url(), data={"To": "+8613900000003", "From": FROM, "Body": "x"}, headers=AUTH
        )
        assert resp.status == status and _is_twilio_error(await resp.json(), code, status)
    assert all(m.to != "+8613900000003" for m in twilio.state.messages.values())
    twilio.state.failures.append(fake.HttpFailure("create", 500, None, 0, True, 1))
    resp = await twilio.post(
        messages_url(), data={"To": "+8613900000003", "From": FROM, "Body": "x"}, headers=AUTH
    )
    assert resp.status == 500
    assert [m.to for m in twilio.state.messages.values()].count("+8613900000003") == 1  # processed anyway


@pytest.mark.parametrize(
    ("label", "headers", "account", "status", "code"),
    [
        ("no credentials", {}, ACCOUNT, 401, 20003),
        (
            "wrong token",
            {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:nope".encode()).decode()},
            ACCOUNT,
            401,
            20003,
        ),
        ("another account's path", AUTH, "AC" + "0" * 32, 404, 20404),
    ],
)
async def test_basic_auth(
    twilio, label: str, headers: dict[str, str], account: str, status: int, code: int
) -> None:
    resp = await twilio.get(messages_url(account), headers=headers)
    assert resp.status == status, label
    assert _is_twilio_error(await resp.json(), code, status), label
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_unknown_message_is_404(twilio) -> None:
    resp = await twilio.get(
        ONE_PATH.replace("{AccountSid}", ACCOUNT).replace("{Sid}", "SM" + "0" * 32), headers=AUTH
    )
    assert resp.status == 404 and _is_twilio_error(await resp.json(), 20404, 404)
