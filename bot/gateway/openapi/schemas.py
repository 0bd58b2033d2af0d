"""The shared schemas (``components.schemas``) and responses (``components.responses``)."""

from __future__ import annotations

from typing import Any

from bot.domains.complaints.states import Kind, Status
from bot.domains.staff.roles import PERMISSIONS, ROLES
from bot.gateway.openapi.parts import (
    BOOLEAN,
    INTEGER,
    MOMENT,
    NULLABLE_INTEGER,
    NULLABLE_STRING,
    NUMBER,
    REFUSED,
    STRING,
    STRINGS,
    Schema,
    obj,
    ref,
)


def schemas() -> dict[str, Schema]:
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


def responses() -> dict[str, Any]:
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
