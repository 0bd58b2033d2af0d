"""Operations of complaint tickets, for staff and for Open311 (GeoReport v2) partners."""

from __future__ import annotations

from typing import Any

from bot.domains.complaints import staff_api as complaints_api
from bot.domains.complaints.categories import CATEGORIES
from bot.domains.complaints.open311 import ATTRIBUTES
from bot.domains.complaints.service import CLOSE_RESULTS
from bot.domains.complaints.states import Kind, Status
from bot.gateway.openapi.parts import (
    BOOLEAN,
    COMPLAINT_EXAMPLE,
    INTEGER,
    NULLABLE_STRING,
    OPEN311_EXAMPLE,
    STRING,
    STRINGS,
    Schema,
    error,
    forbidden,
    header,
    json_body,
    obj,
    ok,
    path_param,
    query,
    ref,
    staff,
)


def complaints() -> list[tuple[str, str, dict[str, Any]]]:
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
        staff(
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
        staff(
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
        staff(
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
        staff(
            "post",
            "/api/complaints/sweep",
            "立即执行超期督办扫描",
            "投诉",
            operation_id="complaintsSweep",
            responses={"200": ok(obj({"escalated": STRINGS, "delivered": INTEGER}))},
        ),
        staff(
            "get",
            "/api/complaints/{number}",
            "一件投诉及其经过和通知",
            "投诉",
            operation_id="complaintsShow",
            parameters=[number],
            responses={"200": ok(ref("ComplaintDetail")), "404": error("NotFound")},
        ),
        staff(
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


def open311() -> list[tuple[str, str, dict[str, Any]]]:
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
