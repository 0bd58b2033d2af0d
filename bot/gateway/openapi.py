"""The OpenAPI 3.1 description of the gateway's HTTP API: every staff route (``/api/…``), Open311, health
and metrics, and the two signed webhooks.  It is data built here, served at ``GET /api/openapi.json`` and
rendered for staff at ``/console/api``; ``tests/gateway/test_openapi.py`` keeps its (method, path) pairs
equal to the router's, and ``tests/gateway/test_openapi_fuzz.py`` lets schemathesis call every operation
against a real gateway and holds each answer to what is written here.

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

from bot.domains.complaints import staff_api as complaints_api
from bot.domains.complaints.categories import CATEGORIES
from bot.domains.complaints.open311 import ATTRIBUTES
from bot.domains.complaints.service import CLOSE_RESULTS
from bot.domains.complaints.states import Kind, Status
from bot.domains.staff.roles import PERMISSIONS, ROLES
from bot.gateway.staff.routes import BROADCAST_ACTIONS, CONSOLE_PERMISSIONS, PUBLIC, ROUTE_PERMISSIONS, SELF

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


# ---------------------------------------------------------------------------------------------- schemas


def _schemas() -> dict[str, Schema]:
    roles = sorted(ROLES)
    permissions = sorted(PERMISSIONS)
    complaint = obj(
        {
            "number": STRING,
            "channel": STRING,
            "sender": {"type": "string", "description": "来源账号（已遮盖）"},
            "kind": {"enum": [k.value for k in Kind]},
            "kind_label": STRING,
            "category": STRING,
            "phone": {"type": ["string", "null"], "description": "保密投诉的电话已遮盖"},
            "confidential": BOOLEAN,
            "respondent": NULLABLE_STRING,
            "description": STRING,
            "occurred": NULLABLE_STRING,
            "location": NULLABLE_STRING,
            "received_at": MOMENT,
            "status": {"enum": [s.value for s in Status]},
            "status_label": STRING,
            "status_note": NULLABLE_STRING,
            "allowed_actions": STRINGS,
            "accept_due": {"type": ["string", "null"], "description": "YYYY-MM-DD"},
            "decided_at": MOMENT,
            "decision_reason": NULLABLE_STRING,
            "owner_department": NULLABLE_STRING,
            "due": {"type": ["string", "null"], "description": "YYYY-MM-DD"},
            "extension_days": INTEGER,
            "reply_text": NULLABLE_STRING,
            "replied_at": MOMENT,
            "rating": NULLABLE_INTEGER,
            "rating_label": NULLABLE_STRING,
            "rating_comment": NULLABLE_STRING,
            "bad_review": BOOLEAN,
            "reopen_count": INTEGER,
            "callback_note": NULLABLE_STRING,
            "overdue": BOOLEAN,
            "supervision_level": INTEGER,
            "escalated_at": MOMENT,
            "closed_at": MOMENT,
            "close_result": NULLABLE_STRING,
            "version": INTEGER,
            "updated_at": MOMENT,
        }
    )
    campaign = obj(
        {
            "id": STRING,
            "name": STRING,
            "channel": STRING,
            "purpose": STRING,
            "template": STRING,
            "signature": STRING,
            "state": STRING,
            "state_reason": NULLABLE_STRING,
            "rate": NUMBER,
            "window": STRING,
            "scheduled_at": MOMENT,
            "created_by": STRING,
            "submitted_by": NULLABLE_STRING,
            "approved_by": NULLABLE_STRING,
            "recipients_total": INTEGER,
            "source_name": NULLABLE_STRING,
            "created_at": MOMENT,
            "started_at": MOMENT,
            "finished_at": MOMENT,
        }
    )
    progress = obj(
        {
            "campaign_id": STRING,
            "state": STRING,
            "state_reason": NULLABLE_STRING,
            "waiting_for_window": NULLABLE_STRING,
            "recipients": INTEGER,
            "eligible": INTEGER,
            "excluded": {"type": "object", "additionalProperties": INTEGER},
            "queued": INTEGER,
            "in_flight": INTEGER,
            "sent": INTEGER,
            "delivered": INTEGER,
            "failed": INTEGER,
            "opted_out_during": INTEGER,
            "cancelled": INTEGER,
            "failed_by_reason": {"type": "object", "additionalProperties": INTEGER},
            "done": INTEGER,
            "percent": NUMBER,
        }
    )
    return {
        "Error": obj(
            {
                "error": {"type": "string", "description": "机器可读的错误代码，如 invalid、forbidden"},
                "message": {"type": "string", "description": "给工作人员看的中文说明"},
                "message_en": {"type": "string", "description": "英文说明（仅知识库接口）"},
            },
            ["error", "message"],
            description="Every error of a staff route (/api/…).",
        ),
        "Open311Errors": {
            "type": "array",
            "minItems": 1,
            "items": obj({"code": INTEGER, "description": STRING}),
            "description": "GeoReport v2 errors (the .xml form is <errors><error><code/><description/>…).",
        },
        "PlainTextError": {"type": "string", "description": "forbidden, bad request or too large"},
        "Ok": obj({"ok": {"const": True}}, ["ok"]),
        "Account": obj(
            {
                "id": INTEGER,
                "username": STRING,
                "display_name": STRING,
                "department": STRING,
                "roles": {"type": "array", "items": {"enum": roles}},
                "role_names": STRINGS,
                "active": BOOLEAN,
                "must_change_password": BOOLEAN,
                "totp": BOOLEAN,
                "locked_until": MOMENT,
                "last_login_at": MOMENT,
            }
        ),
        "Token": obj(
            {
                "id": INTEGER,
                "name": STRING,
                "last_eight": STRING,
                "scopes": {"type": "array", "items": {"enum": permissions}},
                "created_at": MOMENT,
                "expires_at": MOMENT,
                "revoked_at": MOMENT,
                "last_used_at": MOMENT,
                "last_used_ip": NULLABLE_STRING,
            }
        ),
        "NewToken": {
            "allOf": [
                ref("Token"),
                obj(
                    {
                        "token": {"type": "string", "description": "只显示这一次"},
                        "shown_once": {"const": True},
                    }
                ),
            ]
        },
        "TokenRequest": obj(
            {
                "name": {"type": "string", "description": "令牌名称，如 CLI、12345热线"},
                "scopes": {
                    "description": "权限范围：持有人权限的子集（数组，或逗号分隔的文字）",
                    "oneOf": [{"type": "array", "items": {"enum": permissions}}, STRING],
                },
                "days": {
                    "type": ["integer", "null"],
                    "description": "有效期天数（默认 90，最长见 STAFF_TOKEN_MAX_DAYS）",
                },
            },
            ["name", "scopes"],
        ),
        "AuditEntry": obj(
            {
                "id": INTEGER,
                "at": MOMENT,
                "account_id": NULLABLE_INTEGER,
                "username": STRING,
                "roles": STRING,
                "action": STRING,
                "object_type": STRING,
                "object_id": STRING,
                "outcome": STRING,
                "summary": {"type": "object"},
                "client_ip": STRING,
                "user_agent": STRING,
                "request_id": STRING,
            }
        ),
        "Complaint": complaint,
        "ComplaintDetail": {
            "allOf": [
                ref("Complaint"),
                obj(
                    {
                        "history": {
                            "type": "array",
                            "items": obj(
                                {
                                    "seq": INTEGER,
                                    "at": MOMENT,
                                    "actor": STRING,
                                    "action": STRING,
                                    "from_status": NULLABLE_STRING,
                                    "to_status": NULLABLE_STRING,
                                    "department": NULLABLE_STRING,
                                    "note": NULLABLE_STRING,
                                    "detail": {"type": ["object", "null"]},
                                }
                            ),
                        },
                        "notices": {
                            "type": "array",
                            "items": obj(
                                {
                                    "purpose": STRING,
                                    "text": STRING,
                                    "status": STRING,
                                    "attempts": INTEGER,
                                    "via": NULLABLE_STRING,
                                    "error": NULLABLE_STRING,
                                    "created_at": MOMENT,
                                    "sent_at": MOMENT,
                                }
                            ),
                        },
                    }
                ),
            ]
        },
        "Campaign": campaign,
        "CampaignProgress": progress,
        "CampaignDraft": obj(
            {
                "name": {"type": "string", "description": "群发名称（必填）"},
                "template": {"type": "string", "description": "短信内容，变量写作 {姓名}；不含【签名】"},
                "purpose": {"type": "string", "description": "用途，默认“通知”"},
                "rate": {"type": ["number", "string", "null"], "description": "条段/秒，大于 0"},
                "window": {"type": ["string", "null"], "description": "发送时段，如 08:00-21:00"},
            },
            ["name", "template"],
        ),
        "Open311Request": obj(
            {
                "service_request_id": STRING,
                "status": {"enum": ["open", "closed"]},
                "status_notes": STRING,
                "service_name": STRING,
                "service_code": STRING,
                "description": {"type": "null", "description": "不公开"},
                "agency_responsible": STRING,
                "service_notice": {"type": "null"},
                "requested_datetime": MOMENT,
                "updated_datetime": MOMENT,
                "expected_datetime": {"type": ["string", "null"]},
                "address": {"type": "null"},
                "address_id": {"type": "null"},
                "zipcode": {"type": "null"},
                "lat": {"type": "null"},
                "long": {"type": "null"},
                "media_url": {"type": "null"},
            }
        ),
    }


def _responses() -> dict[str, Any]:
    def staff_error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": ref("Error")}},
        }
        if headers:
            out["headers"] = headers
        return out

    return {
        "BadRequest": staff_error("请求参数或请求体不正确（error: invalid 等）"),
        "Unauthorized": staff_error(
            "未登录：没有、或无效的个人 API 令牌或浏览器会话（error: unauthorized）",
            {"WWW-Authenticate": {"schema": STRING}},
        ),
        "Forbidden": staff_error(REFUSED),
        "NotFound": staff_error("不存在（或不在本人可见范围内）"),
        "Conflict": staff_error("与当前状态冲突（非法的状态转换、刚被他人修改、重名等）"),
        "TooLarge": staff_error("上传的文件过大"),
        "BadGateway": staff_error("所依赖的外部系统（如微信接口）暂时无法答复"),
        "Open311Error": {
            "description": "GeoReport v2 错误列表",
            "content": {
                "application/json": {"schema": ref("Open311Errors")},
                "text/xml": {"schema": STRING},
            },
        },
        "WebhookError": {
            "description": "签名不符（403）、格式不对（400）或过大（413），纯文本",
            "content": {"text/plain": {"schema": ref("PlainTextError")}},
        },
    }


# ---------------------------------------------------------------------------------------------- operations


def staff_error_ref(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


def _staff(
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


def _identity() -> list[tuple[str, str, dict[str, Any]]]:
    credentials = obj(
        {
            "username": STRING,
            "password": STRING,
            "totp": {"type": "string", "description": "两步验证码（已启用时）"},
        },
        ["username", "password"],
    )
    me = {"allOf": [ref("Account"), obj({"permissions": STRINGS, "via": {"enum": ["session", "token"]}})]}
    return [
        _staff(
            "post",
            "/api/staff/login",
            "登录（浏览器会话）",
            "账号",
            operation_id="staffLogin",
            description="成功时设置会话 Cookie，并返回之后修改类请求须带上的 CSRF 令牌（X-CSRF-Token）。",
            body={
                "required": True,
                "content": {
                    "application/json": {"schema": credentials},
                    "application/x-www-form-urlencoded": {"schema": credentials},
                },
            },
            responses={
                "200": ok(
                    obj(
                        {
                            "csrf_token": STRING,
                            "me": ref("Account"),
                            "must_change_password": BOOLEAN,
                            "totp_enrollment_required": BOOLEAN,
                        }
                    )
                ),
                "400": error("BadRequest"),
                "401": {
                    "description": "用户名或密码不正确，或须输入/输错两步验证码",
                    "content": {"application/json": {"schema": ref("Error")}},
                },
                "429": {
                    "description": "账号已临时锁定，或此地址失败次数过多",
                    "headers": {"Retry-After": {"schema": STRING}},
                    "content": {"application/json": {"schema": ref("Error")}},
                },
            },
        ),
        _staff(
            "post",
            "/api/staff/logout",
            "退出当前会话",
            "账号",
            operation_id="staffLogout",
            responses={"200": ok(ref("Ok"))},
        ),
        _staff(
            "post",
            "/api/staff/logout-all",
            "退出本人的所有会话",
            "账号",
            operation_id="staffLogoutAll",
            responses={"200": ok(ref("Ok"))},
        ),
        _staff(
            "get",
            "/api/staff/me",
            "我是谁：账号、角色与权限",
            "账号",
            operation_id="staffMe",
            responses={"200": ok(me)},
        ),
        _staff(
            "post",
            "/api/staff/password",
            "修改本人密码",
            "账号",
            operation_id="staffChangePassword",
            body=json_body(obj({"old": STRING, "new": STRING})),
            responses={
                "200": ok(obj({"ok": {"const": True}, "message": STRING})),
                "400": error("BadRequest"),
                "403": forbidden("原密码不正确（refused）"),
            },
        ),
        _staff(
            "post",
            "/api/staff/totp",
            "开始绑定两步验证（TOTP）",
            "账号",
            operation_id="staffStartTotp",
            responses={"200": ok(obj({"secret": STRING, "uri": STRING}))},
        ),
        _staff(
            "post",
            "/api/staff/totp/confirm",
            "确认两步验证码，启用两步验证",
            "账号",
            operation_id="staffConfirmTotp",
            body=json_body(obj({"code": STRING}), {"code": "123456"}),
            responses={"200": ok(ref("Ok")), "400": error("BadRequest")},
        ),
        _staff(
            "get",
            "/api/staff/tokens",
            "本人的个人 API 令牌（不含令牌本身）",
            "账号",
            operation_id="staffTokens",
            responses={"200": ok(obj({"tokens": {"type": "array", "items": ref("Token")}}))},
        ),
        _staff(
            "post",
            "/api/staff/tokens",
            "为自己创建个人 API 令牌",
            "账号",
            operation_id="staffCreateToken",
            body=json_body(ref("TokenRequest"), {"name": "CLI", "scopes": ["kb.read"], "days": 30}),
            responses={
                "201": ok(ref("NewToken"), "已创建；令牌只显示这一次"),
                "400": error("BadRequest"),
                "403": forbidden("权限范围超出了持有人的权限（refused）"),
                "409": error("Conflict"),
            },
        ),
        _staff(
            "post",
            "/api/staff/tokens/{id}/revoke",
            "吊销令牌（本人的；管理员可吊销任何人的）",
            "账号",
            operation_id="staffRevokeToken",
            parameters=[ID],
            responses={
                "200": ok(obj({"ok": {"const": True}, "revoked": BOOLEAN})),
                "400": error("BadRequest"),
                "404": error("NotFound"),
            },
        ),
    ]


def _admin() -> list[tuple[str, str, dict[str, Any]]]:
    new_account = obj(
        {
            "username": {"type": "string", "description": "2-64 位小写字母、数字、点、下划线或连字符"},
            "display_name": STRING,
            "password": {"type": "string", "description": "初始密码（首次登录须修改）"},
            "roles": {"oneOf": [{"type": "array", "items": {"enum": sorted(ROLES)}}, STRING]},
            "department": STRING,
        },
        ["username", "display_name", "password", "roles"],
    )
    change = obj(
        {
            "roles": {"oneOf": [{"type": "array", "items": {"enum": sorted(ROLES)}}, STRING]},
            "department": STRING,
            "display_name": STRING,
            "active": {"type": ["boolean", "null"]},
        },
        [],
    )
    audit_filters = [
        query("since", "起始时刻（ISO 8601；不带时区按 UTC）"),
        query("until", "截止时刻（不含）"),
        query("account", "账号编号", {"type": "integer"}),
        query("action", "操作，如 login、complaint.reply"),
        query("object", "对象编号"),
        query("outcome", "结果：ok、failed、denied"),
        query("limit", "最多条数（1-10000）", {"type": "integer"}),
        query("offset", "跳过条数", {"type": "integer"}),
    ]
    accounts = obj({"accounts": {"type": "array", "items": ref("Account")}})
    roles = obj(
        {
            "roles": {
                "type": "object",
                "additionalProperties": obj({"name": STRING, "permissions": STRINGS}),
            },
            "permissions": {"type": "object", "additionalProperties": STRING},
        }
    )
    bad = {"400": error("BadRequest"), "404": error("NotFound")}
    return [
        _staff(
            "get",
            "/api/staff/accounts",
            "所有账号",
            "账号管理",
            operation_id="adminAccounts",
            responses={"200": ok(accounts)},
        ),
        _staff(
            "post",
            "/api/staff/accounts",
            "创建账号",
            "账号管理",
            operation_id="adminCreateAccount",
            body=json_body(
                new_account,
                {
                    "username": "new.clerk",
                    "display_name": "新同事",
                    "password": "Harbor-lattice-9-gently",
                    "roles": ["viewer"],
                    "department": "县市场监督管理局",
                },
            ),
            responses={
                "201": ok(ref("Account"), "已创建"),
                "400": error("BadRequest"),
                "409": error("Conflict"),
            },
        ),
        _staff(
            "post",
            "/api/staff/accounts/{id}",
            "修改角色、部门、姓名，或停用/启用账号",
            "账号管理",
            operation_id="adminUpdateAccount",
            parameters=[ID],
            body=json_body(change, {"roles": ["viewer", "kb_editor"], "department": "县医保局"}),
            responses={"200": ok(ref("Account")), **bad},
        ),
        _staff(
            "post",
            "/api/staff/accounts/{id}/password",
            "重置密码（临时密码，下次登录须修改）",
            "账号管理",
            operation_id="adminResetPassword",
            parameters=[ID],
            body=json_body(obj({"password": STRING}), {"password": "Harbor-lattice-9-gently"}),
            responses={"200": ok(ref("Ok")), **bad},
        ),
        _staff(
            "post",
            "/api/staff/accounts/{id}/logout-all",
            "让某人退出所有会话",
            "账号管理",
            operation_id="adminLogoutAll",
            parameters=[ID],
            responses={"200": ok(ref("Ok")), **bad},
        ),
        _staff(
            "get",
            "/api/staff/accounts/{id}/tokens",
            "某人的令牌",
            "账号管理",
            operation_id="adminTokens",
            parameters=[ID],
            responses={"200": ok(obj({"tokens": {"type": "array", "items": ref("Token")}})), **bad},
        ),
        _staff(
            "post",
            "/api/staff/accounts/{id}/tokens",
            "为某人（如对接系统账号）创建令牌",
            "账号管理",
            operation_id="adminCreateToken",
            parameters=[ID],
            description="对接系统的 Open311 api_key 即此令牌（权限范围 open311.submit）。",
            body=json_body(ref("TokenRequest"), {"name": "CLI", "scopes": ["kb.read"], "days": 30}),
            responses={
                "201": ok(ref("NewToken"), "已创建；令牌只显示这一次"),
                **bad,
                "403": forbidden("权限范围超出了持有人的权限（refused）"),
                "409": error("Conflict"),
            },
        ),
        _staff(
            "get",
            "/api/staff/roles",
            "角色与权限表",
            "账号管理",
            operation_id="adminRoles",
            responses={"200": ok(roles)},
        ),
        _staff(
            "get",
            "/api/audit",
            "查询审计日志（新的在前）",
            "审计",
            operation_id="auditList",
            parameters=audit_filters,
            responses={
                "200": ok(obj({"entries": {"type": "array", "items": ref("AuditEntry")}})),
                "400": error("BadRequest"),
            },
        ),
        _staff(
            "get",
            "/api/audit/export",
            "导出审计日志（CSV 或 XLSX，公式已转义）",
            "审计",
            operation_id="auditExport",
            parameters=[query("format", "文件格式", {"enum": ["csv", "xlsx"]}), *audit_filters],
            responses={
                "200": {
                    "description": "文件下载",
                    "content": {
                        "text/csv": {"schema": STRING},
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                            "schema": STRING
                        },
                    },
                },
                "400": error("BadRequest"),
            },
        ),
    ]


def _bot_and_kb() -> list[tuple[str, str, dict[str, Any]]]:
    hit = obj(
        {"code": STRING, "name": STRING, "department": STRING, "score": NUMBER, "aspect": NULLABLE_STRING}
    )
    return [
        _staff(
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
        _staff(
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


def _complaints() -> list[tuple[str, str, dict[str, Any]]]:
    new = obj(
        {
            "description": {"type": "string", "description": "投诉内容（必填，最多 4000 字）"},
            "channel": {"enum": ["window", "phone", "letter", "12345"], "description": "默认 window"},
            "kind": {"type": ["string", "null"], "enum": [*(k.value for k in Kind), None]},
            "category": {"type": ["string", "null"], "enum": [*(c.code for c in CATEGORIES), None]},
            "phone": {"type": ["string", "null"], "description": "手机号或带区号的固定电话"},
            "confidential": BOOLEAN,
            "respondent": NULLABLE_STRING,
            "occurred": NULLABLE_STRING,
            "location": NULLABLE_STRING,
            "idempotency_key": {"type": ["string", "null"], "description": "重复提交同一键只登记一次"},
        },
        ["description"],
    )
    action_body = obj(
        {
            "note": NULLABLE_STRING,
            "reason": {"type": "string", "description": "reject、return、extend 必填"},
            "into": {"type": "string", "description": "merge：并入的投诉编号"},
            "department": {"type": "string", "description": "dispatch：承办部门"},
            "days": {"type": "integer", "description": "extend：延期工作日"},
            "approver": {"type": "string", "description": "extend：批准人"},
            "text": {"type": "string", "description": "reply：答复内容"},
            "rating": {"type": ["integer", "null"], "description": "callback：满意度 1-5"},
            "result": {"type": ["string", "null"], "enum": [*CLOSE_RESULTS, None], "description": "close"},
        },
        [],
    )
    number = path_param("number", "投诉编号", example=COMPLAINT_EXAMPLE)
    listing = [
        query("status", "状态，逗号分隔：" + ",".join(s.value for s in Status)),
        query(
            "overdue", "只看超期（true）或未超期（false）", {"enum": ["true", "false", "1", "0", "yes", "no"]}
        ),
        query("department", "承办部门（督办人员；其他人只能看本部门）"),
        query("kind", "类型", {"enum": [k.value for k in Kind]}),
        query("from", "登记日期起（YYYY-MM-DD，含）", {"type": "string", "format": "date"}),
        query("to", "登记日期止（YYYY-MM-DD，含）", {"type": "string", "format": "date"}),
        query("limit", f"最多条数（1-{complaints_api.MAX_LIMIT}，默认 100）", {"type": "integer"}),
        query("offset", "跳过条数", {"type": "integer"}),
    ]
    return [
        _staff(
            "get",
            "/api/complaints",
            "投诉列表（新的在前；本部门或督办全部）",
            "投诉",
            operation_id="complaintsList",
            parameters=listing,
            responses={
                "200": ok(obj({"total": INTEGER, "items": {"type": "array", "items": ref("Complaint")}})),
                "400": error("BadRequest"),
            },
        ),
        _staff(
            "post",
            "/api/complaints",
            "登记窗口、电话或来信的投诉",
            "投诉",
            operation_id="complaintsCreate",
            body=json_body(
                new, {"description": "3号窗口工作人员态度生硬", "channel": "phone", "phone": "13800138000"}
            ),
            responses={
                "201": ok(ref("Complaint"), "已登记"),
                "200": ok(ref("Complaint"), "同一 idempotency_key 已登记过：原投诉"),
                "400": error("BadRequest"),
            },
        ),
        _staff(
            "get",
            "/api/complaints/meta",
            "状态、类型、类别与各状态允许的操作",
            "投诉",
            operation_id="complaintsMeta",
            responses={
                "200": ok(
                    {
                        "type": "object",
                        "required": [
                            "statuses",
                            "kinds",
                            "categories",
                            "actions",
                            "allowed",
                            "close_results",
                            "ratings",
                        ],
                    }
                )
            },
        ),
        _staff(
            "post",
            "/api/complaints/sweep",
            "立即执行超期督办扫描",
            "投诉",
            operation_id="complaintsSweep",
            responses={"200": ok(obj({"escalated": STRINGS, "delivered": INTEGER}))},
        ),
        _staff(
            "get",
            "/api/complaints/{number}",
            "一件投诉及其经过和通知",
            "投诉",
            operation_id="complaintsShow",
            parameters=[number],
            responses={"200": ok(ref("ComplaintDetail")), "404": error("NotFound")},
        ),
        _staff(
            "post",
            "/api/complaints/{number}/{action}",
            "办理一步（受理、派单、答复、回访、办结等）",
            "投诉",
            operation_id="complaintsAction",
            description="派单（dispatch）等跨部门操作须由督办人员办理；编号不在本人可见范围内时为 404。",
            parameters=[number, path_param("action", "操作", {"enum": list(complaints_api.ACTIONS)})],
            body=json_body(action_body, required=False),
            responses={
                "200": ok(ref("Complaint")),
                "400": error("BadRequest"),
                "403": forbidden("派单等操作须由督办人员办理"),
                "404": error("NotFound"),
                "409": error("Conflict"),
            },
        ),
    ]


def _broadcasts() -> list[tuple[str, str, dict[str, Any]]]:
    cid = path_param("id", "群发任务编号", example=CAMPAIGN_EXAMPLE)
    upload = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "分组名称（保存分组时必填）"},
            "file": {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "description": "XLSX 或 CSV（任何编码），含手机号列",
            },
            "column_map": {
                "type": "string",
                "description": 'JSON 对象：模板变量 → 列名，如 {"姓名": "联系人"}',
            },
            "group_ids": {"type": "string", "description": "已保存分组的编号，逗号分隔"},
        },
    }
    upload_example = {"name": "重点企业", "file": "手机号,姓名\n13800138000,张三\n"}
    multipart = {
        "required": True,
        "content": {"multipart/form-data": {"schema": upload, "example": upload_example}},
    }
    create = {
        "allOf": [
            ref("CampaignDraft"),
            obj(
                {
                    "channel": {"const": "sms"},
                    "scheduled_at": {"type": ["string", "null"], "description": "带时区"},
                },
                [],
            ),
        ]
    }
    action_body = obj(
        {
            "at": {"type": ["string", "null"], "description": "start：开始时刻（ISO 8601，须带时区）"},
            "reason": {"type": ["string", "null"], "description": "cancel、reject：原因"},
        },
        [],
    )
    recipients = obj({"campaign_id": STRING, "encoding": STRING}, ["campaign_id"], additionalProperties=True)
    groups = obj(
        {
            "groups": {
                "type": "array",
                "items": obj({"group_id": STRING, "name": STRING, "members": INTEGER, "channel": STRING}),
            }
        }
    )
    saved = obj({"group_id": STRING, "name": STRING, "members": INTEGER, "excluded": {"type": "object"}})
    preview = {"type": "object", "required": ["campaign_id", "state", "samples", "recipients", "blockers"]}
    missing = {"404": error("NotFound")}
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return [
        _staff(
            "get",
            "/api/broadcasts",
            "群发任务列表",
            "群发",
            operation_id="broadcastsList",
            responses={"200": ok(obj({"campaigns": {"type": "array", "items": ref("Campaign")}}))},
        ),
        _staff(
            "post",
            "/api/broadcasts",
            "新建群发草稿",
            "群发",
            operation_id="broadcastsCreate",
            body=json_body(create, DRAFT_EXAMPLE),
            responses={"201": ok(ref("Campaign"), "已创建"), "400": error("BadRequest")},
        ),
        _staff(
            "get",
            "/api/broadcasts/groups",
            "已保存的分组",
            "群发",
            operation_id="broadcastsGroups",
            responses={"200": ok(groups)},
        ),
        _staff(
            "post",
            "/api/broadcasts/groups",
            "上传名单保存为分组",
            "群发",
            operation_id="broadcastsSaveGroup",
            body=multipart,
            responses={
                "201": ok(saved, "已保存"),
                "400": error("BadRequest"),
                "409": error("Conflict"),
                "413": error("TooLarge"),
            },
        ),
        _staff(
            "get",
            "/api/broadcasts/{id}",
            "群发任务及其进度",
            "群发",
            operation_id="broadcastsShow",
            parameters=[cid],
            responses={
                "200": ok({"allOf": [ref("Campaign"), obj({"progress": ref("CampaignProgress")})]}),
                **missing,
            },
        ),
        _staff(
            "patch",
            "/api/broadcasts/{id}",
            "修改草稿（整份草稿：名称、内容、用途、速率、时段）",
            "群发",
            operation_id="broadcastsUpdate",
            parameters=[cid],
            body=json_body(ref("CampaignDraft"), DRAFT_EXAMPLE),
            responses={
                "200": ok(ref("Campaign")),
                "400": error("BadRequest"),
                **missing,
                "409": error("Conflict"),
            },
        ),
        _staff(
            "post",
            "/api/broadcasts/{id}/recipients",
            "上传收件人名单或选择分组（仅草稿）",
            "群发",
            operation_id="broadcastsRecipients",
            parameters=[cid],
            body=multipart,
            responses={
                "200": ok(recipients),
                "400": error("BadRequest"),
                **missing,
                "409": error("Conflict"),
                "413": error("TooLarge"),
            },
        ),
        _staff(
            "post",
            "/api/broadcasts/{id}/wechat-tag",
            "公众号群发：收件人为某一关注者标签（按微信当前报告的标签与人数；替换 openid 名单，仅草稿）",
            "群发",
            operation_id="broadcastsWeChatTag",
            parameters=[cid],
            body=json_body(obj({"tag_id": INTEGER}, ["tag_id"]), {"tag_id": 101}),
            responses={
                "200": ok(ref("Campaign")),
                "400": error("BadRequest"),
                **missing,
                "409": error("Conflict"),
                "502": error("BadGateway"),
            },
        ),
        _staff(
            "post",
            "/api/broadcasts/{id}/wechat-cases",
            "公众号办件通知：收件人为绑定了办件并接收通知的关注者（某一事项，或不填为全部事项），"
            "每人一条模板消息（替换标签或 openid 名单，仅草稿）",
            "群发",
            operation_id="broadcastsWeChatCases",
            parameters=[cid],
            body=json_body(obj({"item_code": NULLABLE_STRING}, []), {"item_code": "QZ-001"}),
            responses={
                "200": ok(ref("Campaign")),
                "400": error("BadRequest"),
                **missing,
                "409": error("Conflict"),
                "502": error("BadGateway"),
            },
        ),
        _staff(
            "get",
            "/api/broadcasts/{id}/preview",
            "预览：样例、人数、排除、条段、预计时长、阻止发送的问题",
            "群发",
            operation_id="broadcastsPreview",
            parameters=[cid],
            responses={"200": ok(preview), **missing},
        ),
        _staff(
            "get",
            "/api/broadcasts/{id}/progress",
            "发送进度",
            "群发",
            operation_id="broadcastsProgress",
            parameters=[cid],
            responses={"200": ok(ref("CampaignProgress")), **missing},
        ),
        _staff(
            "get",
            "/api/broadcasts/{id}/export",
            "逐个收件人的发送结果（XLSX）",
            "群发",
            operation_id="broadcastsExport",
            parameters=[cid],
            responses={"200": {"description": "文件下载", "content": {xlsx: {"schema": STRING}}}, **missing},
        ),
        _staff(
            "post",
            "/api/broadcasts/{id}/{action}",
            "提交、审核、启动、暂停、恢复、取消",
            "群发",
            operation_id="broadcastsAction",
            description="审核人不能审核自己起草的任务（403）；状态不允许时为 409。",
            parameters=[cid, path_param("action", "操作", {"enum": list(BROADCAST_ACTIONS)})],
            body=json_body(action_body, required=False),
            responses={
                "200": ok({"type": "object"}),
                "400": error("BadRequest"),
                "403": forbidden("审核人不能审核自己起草的任务"),
                **missing,
                "409": error("Conflict"),
            },
        ),
    ]


def _open311() -> list[tuple[str, str, dict[str, Any]]]:
    fmt = path_param("fmt", "格式", {"enum": ["json", "xml"]})
    key: list[dict[str, list[str]]] = [{}, {"open311Key": []}]
    errors = {"400": error("Open311Error"), "403": error("Open311Error"), "404": error("Open311Error")}
    service = obj(
        {
            "service_code": STRING,
            "service_name": STRING,
            "description": STRING,
            "metadata": BOOLEAN,
            "type": {"const": "realtime"},
            "keywords": STRING,
            "group": STRING,
        }
    )
    definition = obj(
        {
            "service_code": STRING,
            "attributes": {
                "type": "array",
                "items": obj(
                    {
                        "variable": BOOLEAN,
                        "code": STRING,
                        "datatype": STRING,
                        "required": BOOLEAN,
                        "datatype_description": {"type": "null"},
                        "order": INTEGER,
                        "description": STRING,
                    }
                ),
            },
        }
    )
    attribute_codes = sorted({code for attrs in ATTRIBUTES.values() for code, _, _ in attrs})
    attributes = {
        f"attribute[{code}]": {"type": "string", "description": "类别的属性（见服务定义）"}
        for code in attribute_codes
    }
    form = obj(
        {
            "api_key": {
                "type": "string",
                "description": "对接系统的令牌（也可放在 X-Api-Key 请求头；不可放在 URL）",
            },
            "service_code": {
                "type": "string",
                "description": "类别：" + "、".join(c.code for c in CATEGORIES),
            },
            "description": {"type": "string", "description": "投诉内容（必填，最多 4000 字，不含 HTML）"},
            "lat": {"type": "string", "description": "纬度（与 long 同时给出）"},
            "long": {"type": "string", "description": "经度"},
            "address_string": {"type": "string", "description": "地址（或经纬度，二者必有其一）"},
            "address_id": STRING,
            "account_id": STRING,
            "device_id": STRING,
            "phone": STRING,
            **attributes,
        },
        ["service_code", "description"],
    )
    created = {
        "type": "array",
        "items": obj(
            {"service_request_id": STRING, "service_notice": STRING, "account_id": {"type": "null"}}
        ),
    }
    requests = {"type": "array", "items": ref("Open311Request")}

    def answer(schema: Schema, description: str = "成功") -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": schema}, "text/xml": {"schema": STRING}},
        }

    def op(
        operation_id: str,
        summary: str,
        description: str,
        parameters: list[Schema],
        responses: dict[str, Any],
        **more: Any,
    ) -> dict[str, Any]:
        return {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "tags": ["Open311"],
            "security": more.pop("security", []),
            "parameters": parameters,
            **more,
            "responses": responses,
        }

    return [
        (
            "get",
            "/open311/v2/services.{fmt}",
            op(
                "open311Services",
                "投诉类别（GeoReport 服务列表）",
                "公开。",
                [fmt],
                {"200": answer({"type": "array", "items": service}), "404": error("Open311Error")},
            ),
        ),
        (
            "get",
            "/open311/v2/services/{code}.{fmt}",
            op(
                "open311Service",
                "一个类别的属性（服务定义）",
                "公开。",
                [path_param("code", "类别代码", {"enum": [c.code for c in CATEGORIES]}), fmt],
                {"200": answer(definition), "404": error("Open311Error")},
            ),
        ),
        (
            "post",
            "/open311/v2/requests.{fmt}",
            op(
                "open311Create",
                "对接系统提交投诉",
                "需要对接系统的 api_key（表单字段或 X-Api-Key 请求头），"
                "每个 key 每分钟最多 OPEN311_POSTS_PER_MINUTE 次。",
                [fmt, header("Idempotency-Key", "重复提交同一键只登记一次")],
                {
                    "201": answer(created, "已登记"),
                    "200": answer(created, "同一 Idempotency-Key 已登记过"),
                    **errors,
                    "413": error("Open311Error"),
                    "429": error("Open311Error"),
                },
                security=[{"open311Key": []}, {}],
                requestBody={
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": form, "example": OPEN311_EXAMPLE},
                        "multipart/form-data": {"schema": form},
                    },
                },
            ),
        ),
        (
            "get",
            "/open311/v2/requests.{fmt}",
            op(
                "open311Requests",
                "按编号查询进度，或按日期列出（仅对接系统）",
                "按 service_request_id 查询公开；不带编号按日期列出须 X-Api-Key。不公开任何个人信息；"
                "保密投诉和举报只对对接系统显示。",
                [
                    fmt,
                    query("service_request_id", "投诉编号，逗号分隔"),
                    query("service_code", "类别代码"),
                    query("status", "open、closed 或 open,closed"),
                    query("start_date", "起始时刻（W3C/ISO 8601）"),
                    query("end_date", "截止时刻（与起始最多相隔 90 天）"),
                ],
                {"200": answer(requests), **errors},
                security=key,
            ),
        ),
        (
            "get",
            "/open311/v2/requests/{id}.{fmt}",
            op(
                "open311Request",
                "一件投诉的进度",
                "公开（保密投诉和举报只对对接系统显示）。",
                [path_param("id", "投诉编号", example=COMPLAINT_EXAMPLE), fmt],
                {"200": answer(requests), "404": error("Open311Error")},
                security=key,
            ),
        ),
    ]


def _infrastructure() -> list[tuple[str, str, dict[str, Any]]]:
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
        _staff(
            "get",
            PATH,
            "本接口说明（OpenAPI 3.1 JSON）",
            "运维",
            operation_id="openapi",
            responses={"200": ok({"type": "object", "required": ["openapi", "info", "paths"]})},
        ),
        _staff_page(),
    ]


def _staff_page() -> tuple[str, str, dict[str, Any]]:
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


# ---------------------------------------------------------------------------------------------- document

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
        *_identity(),
        *_admin(),
        *_bot_and_kb(),
        *_complaints(),
        *_broadcasts(),
        *_open311(),
        *_infrastructure(),
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
            "schemas": _schemas(),
            "responses": _responses(),
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
