"""The OpenAPI description (bot/gateway/openapi/) stays true: it is a valid OpenAPI 3.1 document, it
describes exactly the routes the gateway's router has (both ways: a route added without being described
fails here, and so does a description of a route that is gone), and each staff operation names the
permission the route table (bot/gateway/staff/routes.py) checks."""

from __future__ import annotations

import dataclasses

import schemathesis
from aiohttp import web
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from bot.core.config import Settings
from bot.core.env import Secret
from bot.gateway import openapi
from bot.gateway.app import build_app, build_services, close_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from bot.gateway.staff.routes import CONSOLE_PERMISSIONS, PUBLIC, ROUTE_PERMISSIONS
from sms_gateway.config import SmsSettings

# Routes the description leaves out, each for a reason: the console's HTML pages and static files (a
# browser's, not an API; only the page that renders this description is described), and Open311's
# catch-all, which answers any other /open311/v2/ request with GeoReport's 404 error list.
NOT_DESCRIBED_PREFIXES = ("/console/",)
NOT_DESCRIBED = {("*", "/open311/v2/{tail}")}


async def _router(redis_client, sqlite_url: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every route of the gateway, with SMS (and so broadcasts) and complaints on."""
    settings = dataclasses.replace(Settings(), database_url=sqlite_url, wechat_message_mode="plain")
    sms = dataclasses.replace(
        SmsSettings(),
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=Secret("t" * 32),
        twilio_from_number="+15005550006",
        twilio_api_base="http://127.0.0.1:9",
    )
    services = await build_services(
        settings, redis=redis_client, dialogue=ScriptedDialogue(), sms_settings=sms
    )
    assert services.broadcasts is not None and services.complaints is not None
    app: web.Application = build_app(services)
    try:
        return {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.resource is not None and route.method != "HEAD"  # aiohttp adds one to every GET
        }
    finally:
        await close_services(services)


def test_it_is_a_valid_openapi_3_1_document() -> None:
    spec = openapi.description()
    assert spec["openapi"] == "3.1.0"
    errors = [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(spec)]
    assert errors == []
    schemathesis.openapi.from_dict(spec).validate()
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)), "operationIds are unique (the console page's anchors)"


async def test_it_describes_exactly_the_routes_of_the_router(redis_client, sqlite_url) -> None:
    routes = await _router(redis_client, sqlite_url)
    served = {
        (method, path)
        for method, path in routes
        if (method, path) not in NOT_DESCRIBED
        and (not path.startswith(NOT_DESCRIBED_PREFIXES) or path == openapi.DOCS_PAGE)
    }
    described = openapi.operations()
    assert served - described == set(), "routes nobody described: add them to bot/gateway/openapi/"
    assert described - served == set(), "described routes the gateway does not have"
    assert NOT_DESCRIBED <= routes, "a route left out on purpose is gone: update NOT_DESCRIBED"


def test_each_staff_operation_names_the_permission_the_route_table_checks() -> None:
    spec = openapi.description()
    for method, path in openapi.operations(spec):
        op = spec["paths"][path][method.lower()]
        key = (method, path)
        if key in ROUTE_PERMISSIONS:
            assert op["x-permission"] == ROUTE_PERMISSIONS[key], key
            assert "security" not in op, f"{key}: signed in like every staff route (the document's default)"
            assert {"401", "403"} <= set(op["responses"]), key
        elif key in CONSOLE_PERMISSIONS:
            assert op["x-permission"] == CONSOLE_PERMISSIONS[key], key
        else:
            assert op["security"] in ([], [{}, {"open311Key": []}], [{"open311Key": []}, {}]), key
            assert key in PUBLIC or not path.startswith("/api/"), f"{key}: an /api/ route needs a permission"


def test_every_error_response_has_its_familys_shape() -> None:
    """Staff routes answer errors as Error, Open311 as its error list, the webhooks as plain text."""
    spec = openapi.description()
    family = {
        "/api/": "Error",
        "/open311/": "Open311Errors",
        "/wechat": "PlainTextError",
        "/sms/": "PlainTextError",
    }
    for path, item in spec["paths"].items():
        shape = next((name for prefix, name in family.items() if path.startswith(prefix)), None)
        for method, op in item.items():
            for status, response in op["responses"].items():
                if int(status) < 400 or shape is None:
                    continue
                if "$ref" in response:
                    response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                schemas = [media["schema"] for media in response["content"].values()]
                assert {"$ref": f"#/components/schemas/{shape}"} in schemas, (method, path, status)
