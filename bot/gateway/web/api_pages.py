"""接口说明 (anyone signed in): the OpenAPI description (:mod:`bot.gateway.openapi`) as a plain page — a
contents list, then each operation with its permission, parameters, request body and responses.  No
script: headings and links, reachable by keyboard; the JSON itself is one link away."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.domains.staff.roles import PERMISSIONS
from bot.gateway import openapi
from bot.gateway.staff.routes import SELF
from bot.gateway.web.render import page

WHERE = {"path": "路径", "query": "查询", "header": "请求头", "cookie": "Cookie"}
TYPES = {
    "string": "文字",
    "integer": "整数",
    "number": "数字",
    "boolean": "真/假",
    "array": "列表",
    "object": "对象",
    "null": "空",
}
# the description's named schemas, as the page calls them
SHAPES = {
    "Error": "错误（JSON：error、message）",
    "Open311Errors": "Open311 错误列表",
    "PlainTextError": "纯文本",
    "Ok": "{ok: true}",
    "Account": "账号",
    "Token": "令牌",
    "NewToken": "新令牌（含令牌本身）",
    "TokenRequest": "令牌申请",
    "AuditEntry": "审计记录",
    "Complaint": "投诉",
    "ComplaintDetail": "投诉详情",
    "Campaign": "群发任务",
    "CampaignProgress": "发送进度",
    "CampaignDraft": "群发草稿",
    "Open311Request": "Open311 诉求",
}


@dataclass(frozen=True)
class Field:
    name: str
    where: str
    required: bool
    kind: str
    description: str


@dataclass(frozen=True)
class Answer:
    status: str
    description: str
    media: list[str]
    shape: str


@dataclass
class Operation:
    anchor: str
    method: str
    path: str
    summary: str
    description: list[str]
    permission: str
    parameters: list[Field] = field(default_factory=list)
    body_media: list[str] = field(default_factory=list)
    body: list[Field] = field(default_factory=list)
    body_example: str = ""
    answers: list[Answer] = field(default_factory=list)


@dataclass
class Section:
    title: str
    description: str
    operations: list[Operation] = field(default_factory=list)


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = spec["components"][section][name]
    return node


def kind_of(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    """A schema in a few Chinese words: its type (or the allowed values), "或空" when null is allowed."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return SHAPES.get(name, name)
    if "const" in schema:
        return f"固定为 {schema['const']}"
    if "enum" in schema:
        return "取值：" + "、".join("空" if v is None else str(v) for v in schema["enum"])
    if "oneOf" in schema:
        return " 或 ".join(kind_of(spec, s) for s in schema["oneOf"])
    types = schema.get("type", "object")
    types = [types] if isinstance(types, str) else types
    words = [TYPES.get(t, t) for t in types if t != "null"]
    text = "、".join(words) or "空"
    if "array" in types and "items" in schema:
        text = f"{kind_of(spec, schema['items'])} 的列表"
    if schema.get("format") == "date":
        text += "（YYYY-MM-DD）"
    return text + ("，或空" if "null" in types and words else "")


def _properties(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    schema = _resolve(spec, schema)
    props: dict[str, Any] = dict(schema.get("properties", {}))
    required = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        more, more_required = _properties(spec, part)
        props.update(more)
        required |= more_required
    return props, required


def _permission(op: dict[str, Any]) -> str:
    permission = op.get("x-permission")
    if permission == SELF:
        return "已登录即可"
    if permission == "broadcast.action":
        return "随操作而定（见说明）"
    if permission is not None:
        return f"{permission}（{PERMISSIONS.get(permission, '')}）"
    security = op.get("security", [])
    if {"open311Key": []} in security:  # listed first when the key is needed (header or form field)
        return "公开；带对接系统的 X-Api-Key 时可见更多" if security[0] == {} else "对接系统的 api_key"
    return "无需登录"


def _says_permission(paragraph: str) -> bool:
    """The paragraph of an operation's description that only names its permission (openapi.parts.staff)."""
    return paragraph.startswith("需要权限：") or paragraph == "需要：已登录（任何工作人员）。"


def _operation(spec: dict[str, Any], method: str, path: str, op: dict[str, Any]) -> Operation:
    out = Operation(
        anchor=op["operationId"],
        method=method.upper(),
        path=path,
        summary=op.get("summary", ""),
        # the permission has a line of its own: not again as the description's paragraph about it
        description=[p for p in op.get("description", "").split("\n\n") if p and not _says_permission(p)],
        permission=_permission(op),
    )
    for p in op.get("parameters", []):
        p = _resolve(spec, p)
        out.parameters.append(
            Field(
                p["name"],
                WHERE.get(p["in"], p["in"]),
                bool(p.get("required")),
                kind_of(spec, p["schema"]),
                p.get("description", ""),
            )
        )
    body = op.get("requestBody")
    if body is not None:
        content = body["content"]
        out.body_media = list(content)
        first_media = next(iter(content.values()))
        if "example" in first_media:
            out.body_example = json.dumps(first_media["example"], ensure_ascii=False, indent=2)
        props, required = _properties(spec, first_media["schema"])
        for name, schema in props.items():
            out.body.append(
                Field(
                    name,
                    "请求体",
                    name in required,
                    kind_of(spec, schema),
                    _resolve(spec, schema).get("description", ""),
                )
            )
    for status, answer in op["responses"].items():
        answer = _resolve(spec, answer)
        content = answer.get("content", {})
        media_types: list[dict[str, Any]] = list(content.values())
        first: dict[str, Any] = media_types[0].get("schema", {}) if media_types else {}
        shape = kind_of(spec, first) if "$ref" in first else ""
        out.answers.append(Answer(status, answer.get("description", ""), list(content), shape))
    return out


def sections(spec: dict[str, Any]) -> list[Section]:
    """The description's operations by tag, in the order of its tags, each sorted by path then method."""
    by_tag = {t["name"]: Section(t["name"], t.get("description", "")) for t in spec.get("tags", [])}
    for path, item in sorted(spec["paths"].items()):
        for method, op in item.items():
            tag = op.get("tags", ["其他"])[0]
            by_tag.setdefault(tag, Section(tag, "")).operations.append(_operation(spec, method, path, op))
    return [s for s in by_tag.values() if s.operations]


async def api_docs(request: web.Request) -> web.Response:
    spec = openapi.description()
    values = {
        "info": spec["info"],
        "version": spec["openapi"],
        "sections": sections(spec),
        "json_url": openapi.PATH,
        "count": len(openapi.operations(spec)),
    }
    return page(request, "api.html", values)


def setup_routes(app: web.Application) -> None:
    app.add_routes([web.get(openapi.DOCS_PAGE, api_docs)])
