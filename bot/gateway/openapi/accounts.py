"""Operations of staff identity: signing in, one's own account and tokens, and the administrators' routes."""

from __future__ import annotations

from typing import Any

from bot.domains.staff.roles import ROLES
from bot.gateway.openapi.parts import (
    BOOLEAN,
    ID,
    STRING,
    STRINGS,
    error,
    forbidden,
    json_body,
    obj,
    ok,
    query,
    ref,
    staff,
)


def identity() -> list[tuple[str, str, dict[str, Any]]]:
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
        staff(
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
        staff(
            "post",
            "/api/staff/logout",
            "退出当前会话",
            "账号",
            operation_id="staffLogout",
            responses={"200": ok(ref("Ok"))},
        ),
        staff(
            "post",
            "/api/staff/logout-all",
            "退出本人的所有会话",
            "账号",
            operation_id="staffLogoutAll",
            responses={"200": ok(ref("Ok"))},
        ),
        staff(
            "get",
            "/api/staff/me",
            "我是谁：账号、角色与权限",
            "账号",
            operation_id="staffMe",
            responses={"200": ok(me)},
        ),
        staff(
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
        staff(
            "post",
            "/api/staff/totp",
            "开始绑定两步验证（TOTP）",
            "账号",
            operation_id="staffStartTotp",
            responses={"200": ok(obj({"secret": STRING, "uri": STRING}))},
        ),
        staff(
            "post",
            "/api/staff/totp/confirm",
            "确认两步验证码，启用两步验证",
            "账号",
            operation_id="staffConfirmTotp",
            body=json_body(obj({"code": STRING}), {"code": "123456"}),
            responses={"200": ok(ref("Ok")), "400": error("BadRequest")},
        ),
        staff(
            "get",
            "/api/staff/tokens",
            "本人的个人 API 令牌（不含令牌本身）",
            "账号",
            operation_id="staffTokens",
            responses={"200": ok(obj({"tokens": {"type": "array", "items": ref("Token")}}))},
        ),
        staff(
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
        staff(
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


def admin() -> list[tuple[str, str, dict[str, Any]]]:
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
        staff(
            "get",
            "/api/staff/accounts",
            "所有账号",
            "账号管理",
            operation_id="adminAccounts",
            responses={"200": ok(accounts)},
        ),
        staff(
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
        staff(
            "post",
            "/api/staff/accounts/{id}",
            "修改角色、部门、姓名，或停用/启用账号",
            "账号管理",
            operation_id="adminUpdateAccount",
            parameters=[ID],
            body=json_body(change, {"roles": ["viewer", "kb_editor"], "department": "县医保局"}),
            responses={"200": ok(ref("Account")), **bad},
        ),
        staff(
            "post",
            "/api/staff/accounts/{id}/password",
            "重置密码（临时密码，下次登录须修改）",
            "账号管理",
            operation_id="adminResetPassword",
            parameters=[ID],
            body=json_body(obj({"password": STRING}), {"password": "Harbor-lattice-9-gently"}),
            responses={"200": ok(ref("Ok")), **bad},
        ),
        staff(
            "post",
            "/api/staff/accounts/{id}/logout-all",
            "让某人退出所有会话",
            "账号管理",
            operation_id="adminLogoutAll",
            parameters=[ID],
            responses={"200": ok(ref("Ok")), **bad},
        ),
        staff(
            "get",
            "/api/staff/accounts/{id}/tokens",
            "某人的令牌",
            "账号管理",
            operation_id="adminTokens",
            parameters=[ID],
            responses={"200": ok(obj({"tokens": {"type": "array", "items": ref("Token")}})), **bad},
        ),
        staff(
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
        staff(
            "get",
            "/api/staff/roles",
            "角色与权限表",
            "账号管理",
            operation_id="adminRoles",
            responses={"200": ok(roles)},
        ),
        staff(
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
        staff(
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
