"""Open311 GeoReport v2 over complaints: the spec's request and response shapes and its error cases,
in JSON and XML."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import pytest
from aiohttp import web

from bot.domains.complaints import open311
from bot.domains.complaints.service import ComplaintService
from bot.domains.staff import Staff
from tests.support.complaints import Clock, local, new
from tests.support.staff import person

KEY = web.AppKey("complaints", ComplaintService)
SPEC_POST = {  # the spec's example request, with our service code and description
    "api_key": "",  # the spec_post fixture puts a real integration token here
    "jurisdiction_id": "city.gov",
    "service_code": "attitude",
    "lat": "37.76524078",
    "long": "-122.4212043",
    "address_string": "县政务服务中心3号窗口",
    "email": "smit333@sfgov.edu",
    "device_id": "tt222111",
    "account_id": "123456",
    "first_name": "john",
    "last_name": "smith",
    "phone": "13812345678",
    "description": "3号窗口工作人员态度生硬，不耐烦",
    "media_url": "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
    "attribute[respondent]": "3号窗口",
}
REQUEST_FIELDS = [
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
]  # fmt: skip


@pytest.fixture(name="keys")
async def keys_fixture(staff: Staff) -> tuple[str, str]:
    """Two integrations' API keys: staff tokens with the open311.submit scope."""
    return (
        await person(staff, "hotline-12345", ["integration"], display_name="12345热线"),
        await person(staff, "portal", ["integration"], display_name="政务网站"),
    )


@pytest.fixture(name="spec_post")
def spec_post_fixture(keys: tuple[str, str]) -> dict[str, str]:
    return {**SPEC_POST, "api_key": keys[0]}


@pytest.fixture(name="o311")
async def o311_fixture(aiohttp_client, service: ComplaintService, staff: Staff):
    app = web.Application()
    app[KEY] = service
    open311.setup_routes(app, KEY, staff.tokens.authenticate)
    return await aiohttp_client(app)


def _xml(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(text.split("\n", 1)[1])


async def _error(resp, status: int, fmt: str = "json") -> str:
    assert resp.status == status
    if fmt == "xml":
        assert resp.content_type == "text/xml"
        root = _xml(await resp.text())
        assert root.tag == "errors" and [c.tag for c in root] == ["error"]
        assert root.find("error/code").text == str(status)  # type: ignore[union-attr]
        return root.find("error/description").text or ""  # type: ignore[union-attr]
    body = await resp.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code", "description"}
    assert body[0]["code"] == status
    return body[0]["description"]


async def test_service_list_and_definition(o311) -> None:
    services = await (await o311.get("/open311/v2/services.json")).json()
    codes = [s["service_code"] for s in services]
    assert "attitude" in codes and "suggestion" in codes
    first = services[0]
    assert set(first) == {
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    }
    assert first["type"] == "realtime" and first["metadata"] is True and first["service_name"] == "服务态度"
    root = _xml(await (await o311.get("/open311/v2/services.xml")).text())
    assert root.tag == "services" and len(root.findall("service")) == len(services)
    assert root.find("service/metadata").text == "true"  # type: ignore[union-attr]
    assert root.find("service/service_name").text == "服务态度"  # type: ignore[union-attr]

    definition = await (await o311.get("/open311/v2/services/attitude.json")).json()
    assert definition["service_code"] == "attitude"
    (attr,) = definition["attributes"]
    assert attr["code"] == "respondent" and attr["required"] is True and attr["variable"] is True
    assert attr["datatype"] == "string" and attr["order"] == 1
    root = _xml(await (await o311.get("/open311/v2/services/attitude.xml")).text())
    assert root.tag == "service_definition" and root.find("attributes/attribute/code").text == "respondent"  # type: ignore[union-attr]
    assert "not found" in await _error(await o311.get("/open311/v2/services/potholes.json"), 404)
    assert "not found" in await _error(await o311.get("/open311/v2/services/potholes.xml"), 404, "xml")
    assert "format" in await _error(await o311.get("/open311/v2/services.yaml"), 404)
    await _error(await o311.get("/open311/v2/nothing-here"), 404)


async def test_post_request_like_the_spec(o311, service: ComplaintService, spec_post, keys) -> None:
    resp = await o311.post("/open311/v2/requests.json", data=spec_post)
    assert resp.status == 201
    (created,) = await resp.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"} and "token" not in created
    number = created["service_request_id"]
    assert number.startswith("TS") and "1个工作日内" in created["service_notice"]
    row = await service.get(number)
    assert row is not None and row.channel == "open311" and row.respondent == "3号窗口"
    assert (await service.history(number))[0].actor == "12345热线(hotline-12345)"
    assert (
        row.category == "attitude" and row.location == "县政务服务中心3号窗口" and row.phone == "13812345678"
    )

    resp = await o311.post("/open311/v2/requests.xml", data={**spec_post, "api_key": keys[1]})
    assert resp.status == 201
    root = _xml(await resp.text())
    assert root.tag == "service_requests"
    assert [c.tag for c in root.find("request")] == ["service_request_id", "service_notice", "account_id"]  # type: ignore[union-attr]

    # retried with the same Idempotency-Key: one complaint
    headers = {"Idempotency-Key": "retry-1"}
    a = await (await o311.post("/open311/v2/requests.json", data=spec_post, headers=headers)).json()
    b_resp = await o311.post("/open311/v2/requests.json", data=spec_post, headers=headers)
    assert (
        b_resp.status == 200 and (await b_resp.json())[0]["service_request_id"] == a[0]["service_request_id"]
    )


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_post_errors(o311, fmt: str, spec_post) -> None:
    url = f"/open311/v2/requests.{fmt}"

    async def post(**changes: Any) -> Any:
        data = {k: v for k, v in {**spec_post, **changes}.items() if v is not None}
        return await o311.post(url, data=data)

    assert "missing" in await _error(await post(api_key=None), 403, fmt)
    description = await _error(await post(api_key="wrong"), 403, fmt)
    assert description == "Invalid api_key received -- can't proceed with create_request."
    assert "not provided" in await _error(await post(service_code=None), 400, fmt)
    assert "not found" in await _error(await post(service_code="999"), 404, fmt)
    assert "location" in await _error(await post(lat=None, long=None, address_string=None), 400, fmt)
    assert "numbers" in await _error(await post(lat="north", address_string=None), 400, fmt)
    assert "respondent" in await _error(await post(**{"attribute[respondent]": None}), 400, fmt)
    assert "4,000" in await _error(await post(description="投" * 4001), 400, fmt)
    assert "HTML" in await _error(await post(description="<b>差</b>"), 400, fmt)
    assert "description" in await _error(await post(description=" "), 400, fmt)
    assert "联系电话" in await _error(await post(phone="123"), 400, fmt)


async def test_only_integration_tokens_may_post(o311, staff: Staff, spec_post) -> None:
    staff_token = await person(staff, "clerk", ["complaint_supervisor"], "行政服务中心办公室")
    for key in (staff_token, "gvb_" + "x" * 40, "xyz"):
        await _error(await o311.post("/open311/v2/requests.json", data={**spec_post, "api_key": key}), 403)
    integration = await staff.accounts.by_username("hotline-12345")
    assert integration is not None
    await staff.accounts.update(integration.id, active=False)  # a disabled integration stops at once
    await _error(await o311.post("/open311/v2/requests.json", data=spec_post), 403)


async def test_get_requests_and_filters(o311, service: ComplaintService, clock: Clock, keys) -> None:
    key = {"X-Api-Key": keys[0]}  # listing is for integrations; one request by its number is public
    a = (await service.create(new(phone="13812345678", respondent="3号窗口"), idempotency_key="a")).complaint
    await service.accept(a.number, "张科员")
    await service.dispatch(a.number, "张科员", "县市场监管局")
    clock.now = local(2026, 3, 3, 9)
    b = (await service.create(new("建议增加自助机", category="suggestion"), idempotency_key="b")).complaint
    await service.reject(b.number, "王主任", "已由其他渠道办理")

    one = await (await o311.get(f"/open311/v2/requests/{a.number}.json")).json()
    (req,) = one
    assert list(req) == REQUEST_FIELDS
    assert req["status"] == "open" and req["status_notes"] == "已派单"
    # the category was not given: it is classified from the description ("态度很差，不耐烦")
    assert req["agency_responsible"] == "县市场监管局" and req["service_code"] == "attitude"
    assert req["expected_datetime"] == "2026-03-09T23:59:59+08:00"
    assert req["requested_datetime"] == "2026-03-02T02:00:00+00:00"
    text = str(one)
    for personal in ("13812345678", "态度很差", "wx:", "oUser", "3号窗口"):
        assert personal not in text  # no personal data (nor the complaint text) in GET responses

    root = _xml(await (await o311.get(f"/open311/v2/requests/{b.number}.xml")).text())
    assert root.tag == "service_requests" and [c.tag for c in root.find("request")] == REQUEST_FIELDS  # type: ignore[union-attr]
    assert root.find("request/status").text == "closed"  # type: ignore[union-attr]
    assert root.find("request/status_notes").text.startswith("不予受理")  # type: ignore[union-attr]
    assert root.find("request/description").text is None  # type: ignore[union-attr]

    async def ids(query: str, fmt: str = "json") -> list[str]:
        resp = await o311.get(f"/open311/v2/requests.{fmt}?{query}", headers=key)
        assert resp.status == 200, await resp.text()
        if fmt == "xml":
            return [r.find("service_request_id").text for r in _xml(await resp.text())]  # type: ignore[misc, union-attr]
        return [r["service_request_id"] for r in await resp.json()]

    assert await ids("") == [b.number, a.number]
    assert await ids("", "xml") == [b.number, a.number]
    assert await ids("status=open") == [a.number]
    assert await ids("status=closed", "xml") == [b.number]
    assert await ids("status=open,closed") == [b.number, a.number]
    assert await ids("service_code=suggestion") == [b.number]
    assert await ids("start_date=2026-03-03T00:00:00Z") == [b.number]
    assert await ids("end_date=2026-03-02T12:00:00%2B08:00") == [a.number]
    # service_request_id overrides the other filters
    assert await ids(f"service_request_id={a.number},{b.number.lower()}&status=closed") == [
        b.number,
        a.number,
    ]
    clock.now = local(2026, 9, 1)
    assert await ids("") == []  # the default window is the last 90 days

    assert "not found" in await _error(await o311.get("/open311/v2/requests/TS2345678ABC.json"), 404)
    assert "not found" in await _error(await o311.get("/open311/v2/requests/123.xml"), 404, "xml")
    listed = "/open311/v2/requests.json?status=pending"
    assert "status" in await _error(await o311.get(listed, headers=key), 400)
    bad = "/open311/v2/requests.xml?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z"
    assert "90 days" in await _error(await o311.get(bad, headers=key), 400, "xml")
    yesterday = "/open311/v2/requests.json?start_date=yesterday"
    assert "datetime" in await _error(await o311.get(yesterday, headers=key), 400)
    zzz = "/open311/v2/requests.json?service_code=zzz"
    assert "not found" in await _error(await o311.get(zzz, headers=key), 404)


@pytest.mark.parametrize(
    "query",
    [
        {"start_date": "9999-12-31T23:59:59"},
        {"end_date": "0001-01-01"},
        {"start_date": "0001-01-01T00:00:00", "end_date": "0001-02-01T00:00:00"},
        {"start_date": "not a date"},
    ],
)
async def test_dates_out_of_range_are_a_400_not_a_500(o311, keys, query: dict[str, str]) -> None:
    resp = await o311.get("/open311/v2/requests.json", params=query, headers={"X-Api-Key": keys[0]})
    assert resp.status == 400, await resp.text()


async def test_what_is_public(o311, service: ComplaintService, keys) -> None:
    """Listing needs an integration's key (so numbers cannot be enumerated), never in the URL; confidential
    complaints and reports (举报) are never shown to anyone else, not even by their number."""
    plain = (await service.create(new("窗口态度不好"), idempotency_key="p")).complaint.number
    secret = (
        await service.create(new("窗口态度不好", confidential=True), idempotency_key="c")
    ).complaint.number
    report = (await service.create(new("我要举报有人收红包"), idempotency_key="r")).complaint.number
    assert "api_key" in await _error(await o311.get("/open311/v2/requests.json"), 403)
    in_url = await o311.get(f"/open311/v2/requests.json?api_key={keys[0]}")
    assert in_url.status == 400
    resp = await o311.get("/open311/v2/requests.json", headers={"X-Api-Key": keys[0]})
    assert sorted(r["service_request_id"] for r in await resp.json()) == sorted([plain, secret, report])
    ids = ",".join((plain, secret, report))
    resp = await o311.get(f"/open311/v2/requests.json?service_request_id={ids}")
    assert [r["service_request_id"] for r in await resp.json()] == [plain]  # by number: no key needed
    for hidden in (secret, report):
        await _error(await o311.get(f"/open311/v2/requests/{hidden}.json"), 404)
        # an integration (which may have filed it) follows its status with its key
        resp = await o311.get(f"/open311/v2/requests/{hidden}.json", headers={"X-Api-Key": keys[0]})
        assert resp.status == 200 and "红包" not in await resp.text()
    assert (await o311.get(f"/open311/v2/requests/{plain}.json")).status == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=XYZ", b"--XYZ\r\nContent-Disposition: form-data\r\n\r\nbroken"),
        ("multipart/form-data; boundary=x", b"--x\r\nbroken"),  # part headers aiohttp cannot parse
        ("multipart/form-data", b"no boundary"),
        ("application/x-www-form-urlencoded; charset=nope", b"service_code=attitude"),  # unknown charset
    ],
)
async def test_a_malformed_body_is_a_400(o311, content_type: str, body: bytes) -> None:
    resp = await o311.post("/open311/v2/requests.json", data=body, headers={"Content-Type": content_type})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())[0]["code"] == 400


async def test_posts_are_limited_per_integration_key(
    aiohttp_client, service: ComplaintService, staff: Staff, spec_post, redis_client
) -> None:
    from bot.core.ratelimit import WindowLimit

    app = web.Application()
    app[KEY] = service
    open311.setup_routes(app, KEY, staff.tokens.authenticate, WindowLimit(redis_client, "t:open311", 2, 60.0))
    client = await aiohttp_client(app)
    statuses = [(await client.post("/open311/v2/requests.json", data=spec_post)).status for _ in range(3)]
    assert statuses == [201, 201, 429]
