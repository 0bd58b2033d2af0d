"""Open311 GeoReport v2 over complaints, at ``/open311/v2/`` (JSON and XML).

    GET  /open311/v2/services.{json|xml}              complaint categories
    GET  /open311/v2/services/{code}.{json|xml}       a category's attributes (service definition)
    POST /open311/v2/requests.{json|xml}              file a complaint (form-encoded; ``api_key`` required)
    GET  /open311/v2/requests.{json|xml}              filters: service_request_id | service_code, status,
                                                      start_date, end_date
    GET  /open311/v2/requests/{id}.{json|xml}         one complaint

Our states map to ``open``/``closed`` (closed = 已办结, 不予受理, 已合并) with the Chinese state in
``status_notes``.  GET responses carry no personal data: no description, contact, address or coordinates.
Errors follow the spec: an array of ``{code, description}`` (``<errors><error>…``), HTTP 403 for a missing or
wrong ``api_key``, 404 for an unknown resource, 400 otherwise.  ``/open311`` is outside ``/api/``, so the
key is checked here: ``api_key`` is an integration's API token (a staff token with the ``open311.submit``
scope, created by an administrator), verified by the function the gateway passes to :func:`setup_routes`;
the complaint history names the integration's account.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web

from bot.core.actor import Actor
from bot.core.clock import as_utc
from bot.core.forms import MalformedForm, read_form
from bot.core.ratelimit import WindowLimit
from bot.domains.complaints import numbers
from bot.domains.complaints.categories import BY_CODE, CATEGORIES, Category
from bot.domains.complaints.errors import ComplaintError
from bot.domains.complaints.intake import NewComplaint
from bot.domains.complaints.models import Complaint
from bot.domains.complaints.service import ComplaintService
from bot.domains.complaints.states import CLOSED_FOR_OPEN311, IN_HANDLING, STATUS_LABELS, Kind, Status

PREFIX = "/open311/v2"
MAX_RANGE = timedelta(days=90)
MAX_ROWS = 1000
AGENCY = "县政务服务中心"
FORMATS = ("json", "xml")
CLOSE_NOTES = {"resolved": "已办结：问题已解决", "explained": "已办结：已解释说明", "unresolved": "已办结"}

#: Categories whose requests take attributes: code → (attribute code, description, required).
ATTRIBUTES: dict[str, list[tuple[str, str, bool]]] = {
    "attitude": [("respondent", "被投诉的窗口或工作人员（如：3号窗口）", True)],
    "efficiency": [("respondent", "涉及的窗口或部门", False)],
    "fees": [("respondent", "涉及的窗口、部门或中介", False)],
    "integrity": [("respondent", "被举报的窗口或工作人员", True)],
}


class Open311Error(Exception):
    def __init__(self, status: int, description: str, code: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.code = code or status
        self.description = description


def _xml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml(root: str, item: str | None, payload: Any) -> bytes:
    def fill(element: ET.Element, value: Any, child_name: str | None = None) -> None:
        if isinstance(value, Mapping):
            for key, sub in value.items():
                if isinstance(sub, list):
                    container = ET.SubElement(element, key)
                    for entry in sub:
                        fill(ET.SubElement(container, key[:-1]), entry)
                else:
                    fill(ET.SubElement(element, key), sub)
        else:
            element.text = _xml_value(value)

    top = ET.Element(root)
    if item is None:
        fill(top, payload)
    else:
        for entry in payload:
            fill(ET.SubElement(top, item), entry)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="unicode").encode()


def _respond(fmt: str, root: str, item: str | None, payload: Any, status: int = 200) -> web.Response:
    if fmt == "xml":
        return web.Response(
            body=_xml(root, item, payload), status=status, content_type="text/xml", charset="utf-8"
        )
    return web.json_response(payload, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _errors(fmt: str, error: Open311Error) -> web.Response:
    payload = [{"code": error.code, "description": error.description}]
    return _respond(fmt if fmt in FORMATS else "json", "errors", "error", payload, status=error.status)


def _fmt(request: web.Request) -> str:
    fmt = request.match_info.get("fmt", "")
    if fmt not in FORMATS:
        raise Open311Error(404, f"format not supported: {fmt or '(none)'}; use .json or .xml")
    return fmt


def _service_json(c: Category) -> dict[str, Any]:
    return {
        "service_code": c.code,
        "service_name": c.name,
        "description": c.description,
        "metadata": c.code in ATTRIBUTES,
        "type": "realtime",
        "keywords": ", ".join(c.keywords),
        "group": c.group,
    }


def _w3(moment: datetime | None) -> str | None:
    value = as_utc(moment)
    return value.isoformat(timespec="seconds") if value else None


def _request_json(row: Complaint, service: ComplaintService) -> dict[str, Any]:
    status = Status(row.status)
    closed = status in CLOSED_FOR_OPEN311
    if status is Status.CLOSED:
        notes = CLOSE_NOTES.get(row.close_result or "", "已办结")
    elif status is Status.MERGED:
        notes = "已合并：重复诉求并单办理"
    elif status is Status.REJECTED:
        notes = "不予受理：已告知投诉人其他途径"
    else:
        notes = STATUS_LABELS[status] + ("（已督办）" if row.overdue else "")
    expected = None
    if status is Status.REGISTERED:
        expected = service.calendar.end_of_day(row.accept_due)
    elif status in IN_HANDLING and row.due:
        expected = service.calendar.end_of_day(row.due)
    category = BY_CODE.get(row.category)
    return {
        "service_request_id": row.number,
        "status": "closed" if closed else "open",
        "status_notes": notes,
        "service_name": category.name if category else row.category,
        "service_code": row.category,
        "description": None,
        "agency_responsible": row.owner_department or AGENCY,
        "service_notice": None,
        "requested_datetime": _w3(row.received_at),
        "updated_datetime": _w3(row.closed_at if closed and row.closed_at else row.updated_at),
        "expected_datetime": expected.isoformat(timespec="seconds") if expected else None,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


def _parse_dt(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C/ISO 8601 datetime") from None
    if not 2000 <= moment.year <= 2100:  # 9999-12-31 ± 90 days would overflow
        raise Open311Error(400, f"{name} must be between the years 2000 and 2100")
    return as_utc(moment)


# Verifies an api_key: (key, client address) → the integration's Actor, or None.
KeyCheck = Callable[[str, str], Awaitable[Actor | None]]
SUBMIT = "open311.submit"


Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass(frozen=True)
class _Setup:
    service: web.AppKey[ComplaintService]  # where the application holds the service
    check_key: KeyCheck  # accepts an api_key for POST
    limit: WindowLimit | None = None  # POSTs per integration and minute


_SETUP = web.AppKey("open311", _Setup)


def _service(request: web.Request) -> ComplaintService:
    return request.app[request.app[_SETUP].service]


def _guarded(handler: Handler) -> Handler:
    """Errors as Open311 error lists, in the requested format (JSON when it is not known)."""

    async def wrapped(request: web.Request) -> web.Response:
        fmt = request.match_info.get("fmt", "json")
        try:
            return await handler(request)
        except Open311Error as exc:
            return _errors(fmt, exc)
        except ComplaintError as exc:
            return _errors(fmt, Open311Error(400, exc.message))

    return wrapped


async def _services(request: web.Request) -> web.Response:
    fmt = _fmt(request)
    return _respond(fmt, "services", "service", [_service_json(c) for c in CATEGORIES])


async def _definition(request: web.Request) -> web.Response:
    fmt = _fmt(request)
    code = request.match_info["code"]
    if code not in BY_CODE:
        raise Open311Error(404, f"service_code {code} not found")
    attributes = [
        {
            "variable": True,
            "code": attr,
            "datatype": "string",
            "required": required,
            "datatype_description": None,
            "order": i,
            "description": text,
        }
        for i, (attr, text, required) in enumerate(ATTRIBUTES.get(code, []), start=1)
    ]
    return _respond(fmt, "service_definition", None, {"service_code": code, "attributes": attributes})


async def _api_key(request: web.Request, form: Mapping[str, Any]) -> Actor:
    """The integration behind the caller's ``api_key``: the form field (as the GeoReport spec has it) or
    the ``X-Api-Key`` header — never the query string, which lands in proxy logs."""
    if request.query.get("api_key"):
        raise Open311Error(
            400, "api_key must be sent in the request body or the X-Api-Key header, not the URL"
        )
    given = str(form.get("api_key") or request.headers.get("X-Api-Key") or "")
    if not given:
        raise Open311Error(403, "api_key missing -- can't proceed with create_request.")
    actor = await request.app[_SETUP].check_key(given, request.remote or "")
    if actor is None or not actor.can(SUBMIT):
        raise Open311Error(403, "Invalid api_key received -- can't proceed with create_request.")
    return actor


def _category(form: Mapping[str, Any]) -> Category:
    code = str(form.get("service_code") or "")
    if not code:
        raise Open311Error(400, "service_code was not provided")
    category = BY_CODE.get(code)
    if category is None:
        raise Open311Error(404, f"service_code {code} not found")
    return category


def _location(form: Mapping[str, Any]) -> str:
    """The address, or the coordinates as text; one of them is required."""
    lat, lon = str(form.get("lat") or ""), str(form.get("long") or "")
    address = str(form.get("address_string") or form.get("address_id") or "").strip()
    if lat or lon:
        try:
            flat, flon = float(lat), float(lon)
        except ValueError:
            raise Open311Error(400, "lat and long must both be numbers") from None
        if not (math.isfinite(flat) and math.isfinite(flon) and -90 <= flat <= 90 and -180 <= flon <= 180):
            raise Open311Error(400, "lat/long out of range")
        address = address or f"{flat:.6f},{flon:.6f}"
    if not address:
        raise Open311Error(400, "a location is required: lat & long, address_string or address_id")
    return address


def _description(form: Mapping[str, Any]) -> str:
    description = str(form.get("description") or "").strip()
    if not description:
        raise Open311Error(400, "description is required")
    if len(description) > 4000:
        raise Open311Error(400, "description is limited to 4,000 characters")
    if "<" in description and ">" in description:
        raise Open311Error(400, "description must not contain HTML or code")
    return description


def _attributes(form: Mapping[str, Any], code: str) -> dict[str, str]:
    """The category's ``attribute[…]`` values; a missing required one is an error."""
    attrs = {
        attr: str(form.get(f"attribute[{attr}]") or "").strip() for attr, _, _ in ATTRIBUTES.get(code, [])
    }
    missing = [attr for attr, _, required in ATTRIBUTES.get(code, []) if required and not attrs.get(attr)]
    if missing:
        raise Open311Error(400, f"attribute[{missing[0]}] is required for service_code {code}")
    return attrs


async def _create(request: web.Request) -> web.Response:
    fmt = _fmt(request)
    try:
        form = await read_form(request)
    except web.HTTPRequestEntityTooLarge:
        raise Open311Error(413, "request body too large") from None
    except MalformedForm as exc:  # a broken multipart or urlencoded body, an unknown charset
        raise Open311Error(400, str(exc)) from None
    integration = await _api_key(request, form)
    limit = request.app[_SETUP].limit
    if limit is not None and not await limit.allow(str(integration.account_id)):
        raise Open311Error(429, "too many requests for this api_key; try again in a minute")
    category = _category(form)
    code = category.code
    address = _location(form)
    description = _description(form)
    attrs = _attributes(form, code)
    account = str(form.get("account_id") or form.get("device_id") or "anonymous")[:60]
    idem = request.headers.get("Idempotency-Key")
    client = str(integration.account_id)
    svc = _service(request)
    result = await svc.create(
        NewComplaint(
            channel="open311",
            sender_id=f"open311:{account}",
            description=description,
            kind=category.kind,
            category=code,
            phone=str(form.get("phone") or "") or None,
            respondent=attrs.get("respondent") or None,
            location=address,
        ),
        idempotency_key=f"open311:{client}:{idem}" if idem else None,
        actor=integration.name,
    )
    row = result.complaint
    notice = (
        f"已登记，将在{svc.settings.accept_days}个工作日内（{row.accept_due.isoformat()}前）决定是否受理，"
        f"受理后{svc.answer_days(category.kind)}个工作日内答复。"
    )
    payload = [{"service_request_id": row.number, "service_notice": notice, "account_id": None}]
    return _respond(fmt, "service_requests", "request", payload, status=201 if result.created else 200)


def _statuses(q: Mapping[str, str]) -> list[str] | None:
    """``status=open,closed`` as our states (None: any)."""
    if not q.get("status"):
        return None
    wanted = {s.strip() for s in q["status"].split(",") if s.strip()}
    if not wanted <= {"open", "closed"}:
        raise Open311Error(400, "status must be open, closed or open,closed")
    return [s.value for s in Status if ("closed" if s in CLOSED_FOR_OPEN311 else "open") in wanted]


def _window(q: Mapping[str, str], now: datetime) -> tuple[datetime, datetime | None]:
    """``start_date``/``end_date``, at most 90 days apart; without both, the 90 days before ``now`` or
    around the one given."""
    end = _parse_dt(q["end_date"], "end_date") if q.get("end_date") else None
    start = _parse_dt(q["start_date"], "start_date") if q.get("start_date") else None
    if start is None and end is None:
        return now - MAX_RANGE, None
    if start is not None and end is not None:
        if end < start:
            raise Open311Error(400, "end_date must not be before start_date")
        if end - start > MAX_RANGE:
            raise Open311Error(400, "start_date and end_date may span at most 90 days")
        return start, end
    if start is None:
        assert end is not None
        return end - MAX_RANGE, end
    return start, start + MAX_RANGE


async def _query(request: web.Request) -> web.Response:
    fmt = _fmt(request)
    q = request.query
    svc = _service(request)
    ids = [i.strip().upper() for i in q.get("service_request_id", "").split(",") if i.strip()]
    trusted = await _integration(request)
    if ids:
        rows, _ = await svc.search(numbers_in=ids, limit=MAX_ROWS)
    else:  # listing by date would let anyone enumerate numbers: integrations only
        await _api_key(request, {})
        statuses = _statuses(q)
        code = q.get("service_code") or None
        if code and code not in BY_CODE:
            raise Open311Error(404, f"service_code {code} not found")
        start, end = _window(q, svc.clock().astimezone(UTC))
        rows, _ = await svc.search(status=statuses, category=code, since=start, until=end, limit=MAX_ROWS)
    payload = [_request_json(r, svc) for r in rows if trusted or _public(r)]
    return _respond(fmt, "service_requests", "request", payload)


async def _one(request: web.Request) -> web.Response:
    fmt = _fmt(request)
    number = request.match_info["id"].upper()
    svc = _service(request)
    row = await svc.get(number) if numbers.is_valid(number) else None
    if row is None or not (_public(row) or await _integration(request)):
        raise Open311Error(404, f"service_request_id {request.match_info['id']} not found")
    return _respond(fmt, "service_requests", "request", [_request_json(row, svc)])


async def _integration(request: web.Request) -> bool:
    """A valid integration key in the X-Api-Key header: a trusted system (the 12345 hotline) that may
    follow the status of what it filed, reports and confidential ones included (still no personal data)."""
    try:
        await _api_key(request, {})
    except Open311Error:
        return False
    return True


def _public(row: Complaint) -> bool:
    """What Open311 shows to anyone: never a confidential complaint, never a report (举报)."""
    return not row.confidential and row.kind != Kind.REPORT.value


async def _not_found(request: web.Request) -> web.Response:
    raise Open311Error(404, "resource not found")


def setup_routes(
    app: web.Application,
    key: web.AppKey[ComplaintService],
    check_key: KeyCheck,
    limit: WindowLimit | None = None,
) -> None:
    """Register the Open311 routes; ``app[key]`` holds the service, ``check_key`` verifies POST keys,
    ``limit`` caps each integration's POSTs."""
    app[_SETUP] = _Setup(key, check_key, limit)
    app.router.add_get(PREFIX + "/services.{fmt}", _guarded(_services))
    app.router.add_get(PREFIX + "/services/{code}.{fmt}", _guarded(_definition))
    app.router.add_post(PREFIX + "/requests.{fmt}", _guarded(_create))
    app.router.add_get(PREFIX + "/requests.{fmt}", _guarded(_query))
    app.router.add_get(PREFIX + "/requests/{id}.{fmt}", _guarded(_one))
    app.router.add_route("*", PREFIX + "/{tail:.*}", _guarded(_not_found))
