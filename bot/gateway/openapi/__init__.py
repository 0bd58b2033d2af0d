"""The OpenAPI 3.1 description of the gateway's HTTP API: every staff route (``/api/…``), Open311, health
and metrics, and the two signed webhooks.  It is data built here, served at ``GET /api/openapi.json`` and
rendered for staff at ``/console/api``; ``tests/gateway/test_openapi.py`` keeps its (method, path) pairs
equal to the router's, and ``tests/gateway/test_openapi_fuzz.py`` lets schemathesis call every operation
against a real gateway and holds each answer to what is written here.

One module per family of operations (``accounts``, ``chat``, ``complaints`` with Open311, ``broadcasts``,
``infrastructure``), the shared ``schemas``, and the building blocks in ``parts``.

Where the code already has a table — the permission of each route, the complaint and campaign actions,
states, kinds, categories, roles — the description is built from it, so it cannot drift from it.

Errors come in three shapes, one per family of routes:

* staff routes (``/api/…``): JSON ``{"error": code, "message": 中文}`` (``Error``);
* Open311 (``/open311/v2/…``): GeoReport's list ``[{"code": n, "description": text}]`` (``Open311Errors``),
  or ``<errors><error>…`` for ``.xml``;
* the webhooks (``/wechat``, ``/sms/twilio…``): a short plain-text body (``PlainTextError``), as WeChat
  and Twilio expect.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from aiohttp import web

from bot.gateway.openapi.accounts import admin, identity
from bot.gateway.openapi.broadcasts import broadcasts
from bot.gateway.openapi.chat import bot_and_kb
from bot.gateway.openapi.complaints import complaints, open311
from bot.gateway.openapi.infrastructure import infrastructure
from bot.gateway.openapi.parts import CAMPAIGN_EXAMPLE, COMPLAINT_EXAMPLE, DOCS_PAGE, ID, PATH
from bot.gateway.openapi.schemas import responses, schemas

__all__ = [
    "CAMPAIGN_EXAMPLE",
    "COMPLAINT_EXAMPLE",
    "DOCS_PAGE",
    "ID",
    "PATH",
    "description",
    "operations",
    "serve",
    "setup_routes",
]

TAGS = [
    ("账号", "登录、退出、本人密码、两步验证与个人 API 令牌"),
    ("账号管理", "管理员：账号、角色、令牌"),
    ("审计", "审计日志的查询与导出"),
    ("机器人", "以测试身份对话"),
    ("知识库", "办事指南检索"),
    ("投诉", "投诉工单"),
    ("群发", "群发短信任务"),
    ("Open311", "GeoReport v2：供 12345 热线等对接系统使用"),
    ("运维", "健康检查、指标与本说明"),
    ("回调", "微信与 Twilio 的回调（由对方签名）"),
]


def _build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in [
        *identity(),
        *admin(),
        *bot_and_kb(),
        *complaints(),
        *broadcasts(),
        *open311(),
        *infrastructure(),
    ]:
        if method in paths.setdefault(path, {}):
            raise ValueError(f"{method.upper()} {path} is described twice")
        paths[path][method] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "政务服务助手 HTTP 接口",
            "version": "1",
            "description": (
                "县行政服务中心政务服务助手网关的 HTTP 接口：工作人员接口（/api/…）、Open311 对接接口、"
                "健康检查与指标，以及微信与 Twilio 的回调。\n\n"
                "工作人员接口须登录：个人 API 令牌（Authorization: Bearer gvb_…，"
                "`govbot login` 或账号页面创建），"
                "或浏览器会话（Cookie；修改类请求另须 X-CSRF-Token 请求头）。"
                "每个接口需要一项权限（见 x-permission），"
                '无权限为 403，并记入审计日志。错误均为 JSON：{"error": 代码, "message": 中文说明}。\n\n'
                'Open311 的错误遵循 GeoReport v2：[{"code": 数字, "description": 说明}]。'
            ),
        },
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "security": [{"bearerToken": []}, {"sessionCookie": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "gvb_…（个人 API 令牌）",
                    "description": "个人 API 令牌，权限为持有人权限的子集",
                },
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "govbot_session",
                    "description": "浏览器会话（HTTPS 下名为 __Host-govbot_session）；"
                    "修改类请求须带 X-CSRF-Token",
                },
                "open311Key": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "description": "对接系统的令牌（权限范围 open311.submit）；POST 也可用表单字段 api_key",
                },
            },
            "schemas": schemas(),
            "responses": responses(),
        },
    }


_DESCRIPTION = _build()


def description() -> dict[str, Any]:
    """The description, as a fresh copy the caller may change."""
    return copy.deepcopy(_DESCRIPTION)


def operations(spec: dict[str, Any] | None = None) -> set[tuple[str, str]]:
    """Every described (METHOD, path) pair."""
    doc = spec or _DESCRIPTION
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


async def serve(_request: web.Request) -> web.Response:
    """``GET /api/openapi.json``: the description (for anyone signed in; the staff middleware checks)."""
    return web.json_response(
        _DESCRIPTION,
        dumps=lambda value: json.dumps(value, ensure_ascii=False),
        headers={"Cache-Control": "no-cache"},
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get(PATH, serve)
