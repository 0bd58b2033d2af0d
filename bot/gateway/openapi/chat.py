"""Operations of the bot's test chat and the knowledge base."""

from __future__ import annotations

from typing import Any

from bot.gateway.openapi.parts import (
    BOOLEAN,
    NULLABLE_STRING,
    NUMBER,
    STRING,
    STRINGS,
    error,
    json_body,
    obj,
    ok,
    query,
    ref,
    staff,
)


def bot_and_kb() -> list[tuple[str, str, dict[str, Any]]]:
    hit = obj(
        {"code": STRING, "name": STRING, "department": STRING, "score": NUMBER, "aspect": NULLABLE_STRING}
    )
    return [
        staff(
            "post",
            "/api/chat",
            "以测试身份与机器人对话",
            "机器人",
            operation_id="chat",
            description="会话的发送者为 console:<用户名>:<sender>。",
            body=json_body(
                obj({"sender": STRING, "text": STRING}), {"sender": "tester", "text": "个体户营业执照怎么办"}
            ),
            responses={
                "200": ok(obj({"texts": STRINGS, "transfer_to_agent": BOOLEAN, "degraded": BOOLEAN})),
                "400": error("BadRequest"),
            },
        ),
        staff(
            "get",
            "/api/kb/search",
            "检索办事指南事项（最相关的在前）",
            "知识库",
            operation_id="kbSearch",
            parameters=[
                query("q", "问题或关键词", required=True),
                query("limit", "最多条数（1-50，默认 10）", {"type": "integer"}),
            ],
            responses={
                "200": ok(obj({"query": STRING, "results": {"type": "array", "items": hit}})),
                "400": error("BadRequest"),
                "503": {
                    "description": "检索由动作服务器提供，它暂不可用（error: kb_unavailable）",
                    "content": {"application/json": {"schema": ref("Error")}},
                },
            },
        ),
    ]
