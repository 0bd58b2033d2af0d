"""Health, metrics, this description, the signed webhooks and the staff page that renders it."""

from __future__ import annotations

from typing import Any

from bot.gateway.openapi.parts import (
    DOCS_PAGE,
    PATH,
    STRING,
    error,
    obj,
    ok,
    query,
    staff,
)
from bot.gateway.staff.routes import CONSOLE_PERMISSIONS


def infrastructure() -> list[tuple[str, str, dict[str, Any]]]:
    health = obj(
        {"status": {"enum": ["ok", "degraded"]}, "checks": {"type": "object", "additionalProperties": STRING}}
    )
    webhook = {"403": error("WebhookError"), "400": error("WebhookError"), "413": error("WebhookError")}
    signed = "由微信服务器调用并签名（signature、timestamp、nonce）；没有正确签名的请求只会得到 403。"
    twilio = (
        "由 Twilio 调用并以 X-Twilio-Signature 签名（对照 PUBLIC_BASE_URL）；没有正确签名的请求只会得到 403。"
    )
    form = {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": STRING}
            }
        }
    }
    wechat_query = [query("signature", "签名"), query("timestamp", "时间戳（秒）"), query("nonce", "随机数")]
    return [
        (
            "get",
            "/healthz",
            {
                "operationId": "healthz",
                "summary": "健康检查",
                "tags": ["运维"],
                "security": [],
                "description": "Redis、数据库、Rasa、动作服务器、群发进程；"
                "任何一项异常为 503 并写明是哪一项。",
                "responses": {"200": ok(health), "503": ok(health, "有依赖异常（degraded）")},
            },
        ),
        (
            "get",
            "/metrics",
            {
                "operationId": "metrics",
                "summary": "Prometheus 指标（所有进程合计）",
                "tags": ["运维"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus 文本格式",
                        "content": {"text/plain": {"schema": STRING}},
                    }
                },
            },
        ),
        (
            "get",
            "/wechat",
            {
                "operationId": "wechatVerify",
                "summary": "微信服务器配置的 URL 验证",
                "tags": ["回调"],
                "security": [],
                "description": signed,
                "parameters": [*wechat_query, query("echostr", "原样返回的字符串")],
                "responses": {
                    "200": {"description": "echostr", "content": {"text/plain": {"schema": STRING}}},
                    "403": error("WebhookError"),
                },
            },
        ),
        (
            "post",
            "/wechat",
            {
                "operationId": "wechatReceive",
                "summary": "接收微信消息与事件（安全模式下加密）",
                "tags": ["回调"],
                "security": [],
                "description": signed,
                "parameters": [
                    *wechat_query,
                    query("encrypt_type", "aes（安全模式）"),
                    query("msg_signature", "消息签名"),
                    query("openid", "发送者"),
                ],
                "requestBody": {"content": {"text/xml": {"schema": STRING}}},
                "responses": {
                    "200": {
                        "description": "success，或被动回复的 XML",
                        "content": {
                            "text/plain": {"schema": STRING},
                            "text/xml": {"schema": STRING},
                            "application/xml": {"schema": STRING},
                        },
                    },
                    **webhook,
                },
            },
        ),
        (
            "post",
            "/sms/twilio",
            {
                "operationId": "smsReceive",
                "summary": "接收短信（Twilio）",
                "tags": ["回调"],
                "security": [],
                "description": twilio,
                "requestBody": form,
                "responses": {
                    "200": {
                        "description": "TwiML",
                        "content": {"text/xml": {"schema": STRING}, "application/xml": {"schema": STRING}},
                    },
                    **webhook,
                },
            },
        ),
        (
            "post",
            "/sms/twilio/status",
            {
                "operationId": "smsStatus",
                "summary": "短信状态回调（Twilio）",
                "tags": ["回调"],
                "security": [],
                "description": twilio,
                "parameters": [query("lid", "台账编号"), query("n", "第几次尝试")],
                "requestBody": form,
                "responses": {
                    "200": {
                        "description": "已收到",
                        "content": {
                            "text/xml": {"schema": STRING},
                            "application/xml": {"schema": STRING},
                            "text/plain": {"schema": STRING},
                        },
                    },
                    **webhook,
                },
            },
        ),
        staff(
            "get",
            PATH,
            "本接口说明（OpenAPI 3.1 JSON）",
            "运维",
            operation_id="openapi",
            responses={"200": ok({"type": "object", "required": ["openapi", "info", "paths"]})},
        ),
        staff_page(),
    ]


def staff_page() -> tuple[str, str, dict[str, Any]]:
    return (
        "get",
        DOCS_PAGE,
        {
            "operationId": "apiDocsPage",
            "summary": "本说明的网页版（工作台）",
            "tags": ["运维"],
            "description": "需要：已登录（任何工作人员）。工作台的其他页面不在本说明之列。",
            "x-permission": CONSOLE_PERMISSIONS[("GET", DOCS_PAGE)],
            "responses": {
                "200": {"description": "HTML 页面", "content": {"text/html": {"schema": STRING}}},
                "302": {"description": "未登录：转到登录页", "headers": {"Location": {"schema": STRING}}},
                "403": {"description": "须先修改密码等", "content": {"text/html": {"schema": STRING}}},
            },
        },
    )
