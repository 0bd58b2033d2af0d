"""接口说明: the OpenAPI description as a console page for anyone signed in, and as JSON."""

from __future__ import annotations

import re

from bot.gateway import openapi


async def test_the_page_needs_a_signed_in_person(console, sign_in) -> None:
    anonymous = await console()
    resp = await anonymous.get("/console/api", allow_redirects=False)
    assert resp.status == 302 and "/console/login" in resp.headers["Location"]
    assert (await anonymous.get("/api/openapi.json")).status == 401
    someone = await sign_in("clerk", ["integration"])  # no console section at all, still a reader
    assert (await someone.get("/console/api")).status == 200
    home = await (await someone.get("/console/")).text()
    assert 'href="/console/api"' in home


async def test_every_operation_is_listed_and_linked(sign_in) -> None:
    viewer = await sign_in("watcher", ["viewer"])
    page = await (await viewer.get("/console/api")).text()
    spec = openapi.description()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            anchor = op["operationId"]
            assert f'href="#{anchor}"' in page, anchor  # the contents list links it (keyboard: Tab, Enter)
            assert f'id="{anchor}"' in page, anchor
            assert f"<code>{method.upper()} {path}</code>" in page, (method, path)
    assert "complaints.handle（办理本部门投诉" in page  # a permission, with what it allows
    assert "<code>service_code</code>" in page and "<code>limit</code>" in page  # body fields, parameters
    assert "错误（JSON：error、message）" in page and "Open311 错误列表" in page  # the error shapes
    assert "&#34;username&#34;: &#34;new.clerk&#34;" in page  # a request body's example
    assert "需要的权限随操作而定：submit→broadcast.compose" in page  # the broadcast actions' permissions
    assert "需要权限：" not in page  # the permission has its own line, not a paragraph again
    assert len(re.findall(r"<article ", page)) == len(openapi.operations(spec))


async def test_the_json_is_the_description(sign_in) -> None:
    viewer = await sign_in("watcher", ["viewer"])
    resp = await viewer.get("/api/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    assert await resp.json() == openapi.description()
