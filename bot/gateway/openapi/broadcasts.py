"""Operations of broadcast campaigns."""

from __future__ import annotations

from typing import Any

from bot.gateway.openapi.parts import (
    CAMPAIGN_EXAMPLE,
    DRAFT_EXAMPLE,
    INTEGER,
    NULLABLE_STRING,
    STRING,
    error,
    forbidden,
    json_body,
    obj,
    ok,
    path_param,
    ref,
    staff,
)
from bot.gateway.staff.routes import BROADCAST_ACTIONS


def broadcasts() -> list[tuple[str, str, dict[str, Any]]]:
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
        staff(
            "get",
            "/api/broadcasts",
            "群发任务列表",
            "群发",
            operation_id="broadcastsList",
            responses={"200": ok(obj({"campaigns": {"type": "array", "items": ref("Campaign")}}))},
        ),
        staff(
            "post",
            "/api/broadcasts",
            "新建群发草稿",
            "群发",
            operation_id="broadcastsCreate",
            body=json_body(create, DRAFT_EXAMPLE),
            responses={"201": ok(ref("Campaign"), "已创建"), "400": error("BadRequest")},
        ),
        staff(
            "get",
            "/api/broadcasts/groups",
            "已保存的分组",
            "群发",
            operation_id="broadcastsGroups",
            responses={"200": ok(groups)},
        ),
        staff(
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
        staff(
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
        staff(
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
        staff(
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
        staff(
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
        staff(
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
        staff(
            "get",
            "/api/broadcasts/{id}/preview",
            "预览：样例、人数、排除、条段、预计时长、阻止发送的问题",
            "群发",
            operation_id="broadcastsPreview",
            parameters=[cid],
            responses={"200": ok(preview), **missing},
        ),
        staff(
            "get",
            "/api/broadcasts/{id}/progress",
            "发送进度",
            "群发",
            operation_id="broadcastsProgress",
            parameters=[cid],
            responses={"200": ok(ref("CampaignProgress")), **missing},
        ),
        staff(
            "get",
            "/api/broadcasts/{id}/export",
            "逐个收件人的发送结果（XLSX）",
            "群发",
            operation_id="broadcastsExport",
            parameters=[cid],
            responses={"200": {"description": "文件下载", "content": {xlsx: {"schema": STRING}}}, **missing},
        ),
        staff(
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
