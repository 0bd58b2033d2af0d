"""Building blocks of the description: schema shorthands, parameters, responses, examples, and
:func:`staff` — one staff operation with its permission taken from the route table."""

from __future__ import annotations

from typing import Any

from bot.domains.staff.roles import PERMISSIONS
from bot.gateway.staff.routes import BROADCAST_ACTIONS, PUBLIC, ROUTE_PERMISSIONS, SELF

Schema = dict[str, Any]
PATH = "/api/openapi.json"
DOCS_PAGE = "/console/api"

# ---------------------------------------------------------------------------------------------- helpers

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
NUMBER: Schema = {"type": "number"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
NULLABLE_INTEGER: Schema = {"type": ["integer", "null"]}
MOMENT: Schema = {"type": ["string", "null"], "description": "ISO 8601, UTC"}
STRINGS: Schema = {"type": "array", "items": STRING}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    """An object with these properties; all of them required unless ``required`` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        **extra,
    }


def json_body(schema: Schema, example: dict[str, Any] | None = None, required: bool = True) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


def query(name: str, description: str, schema: Schema | None = None, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or STRING,
    }


def path_param(name: str, description: str, schema: Schema | None = None, example: Any = None) -> Schema:
    out = {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or STRING,
    }
    if example is not None:
        out["example"] = example
    return out


def header(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": schema or STRING,
    }


def ok(schema: Schema, description: str = "成功") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> Schema:
    return {"$ref": f"#/components/responses/{description}"}


# The staff middleware answers these for every guarded route (no or bad credentials; a missing CSRF token,
# a password to change, a second factor to enrol, or a permission the person lacks).
GUARDED = {"401": error("Unauthorized"), "403": error("Forbidden")}
REFUSED = (
    "拒绝：没有此权限（forbidden）、会话请求缺少 CSRF 令牌（csrf）、须先修改初始密码"
    "（password_change_required）或启用两步验证（totp_required）"
)


def forbidden(reason: str) -> dict[str, Any]:
    """A 403 this operation answers for a reason of its own, besides the staff middleware's."""
    return {
        "description": f"{reason}；或{REFUSED}",
        "content": {"application/json": {"schema": ref("Error")}},
    }


DRAFT_EXAMPLE = {"name": "年报提醒", "template": "{姓名}您好：请于6月30日前报送年报。", "purpose": "提醒"}
OPEN311_EXAMPLE = {
    "service_code": "attitude",
    "description": "3号窗口工作人员态度生硬",
    "address_string": "县行政服务中心一楼",
    "attribute[respondent]": "3号窗口",
}
# Examples of identifiers (the fuzzing test gives its gateway objects with these identifiers).
COMPLAINT_EXAMPLE = "TS7KQ2M9XHDY"
CAMPAIGN_EXAMPLE = "bc-20260601-0a1b2c3d"
ID = path_param("id", "数字编号", {"type": "integer"}, 2)


def staff_error_ref(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


def staff(
    method: str,
    path: str,
    summary: str,
    tag: str,
    *,
    responses: dict[str, Any],
    parameters: list[Schema] | None = None,
    body: dict[str, Any] | None = None,
    description: str = "",
    operation_id: str,
) -> tuple[str, str, dict[str, Any]]:
    """A staff route: signed in (token or session), the route's permission from the one table."""
    key = (method.upper(), path)
    permission = ROUTE_PERMISSIONS.get(key)
    public = key in PUBLIC
    if permission is None and not public:
        raise KeyError(f"{method} {path} is in no permission table")
    op: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    notes = [description] if description else []
    if public:
        op["security"] = []
        notes.append("无需登录。")
    else:
        op["x-permission"] = permission
        if permission == SELF:
            notes.append("需要：已登录（任何工作人员）。")
        elif permission == "broadcast.action":
            actions = "、".join(f"{a}→{p}" for a, p in BROADCAST_ACTIONS.items())
            notes.append(f"需要的权限随操作而定：{actions}。")
        else:
            notes.append(f"需要权限：{permission}（{PERMISSIONS.get(permission or '', '')}）。")
    op["description"] = "\n\n".join(notes)
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
        # any body: too slow (bot/gateway/slow_clients.py) or too large for the gateway, in the same shape
        responses = {
            "408": staff_error_ref("请求体传输超时（连续无数据超过 HTTP_BODY_TIMEOUT）"),
            "413": staff_error_ref("请求体过大"),
            **responses,
        }
    answers = responses if public else {**GUARDED, **responses}  # an operation's own 403 names both
    op["responses"] = dict(sorted(answers.items()))
    return method, path, op
