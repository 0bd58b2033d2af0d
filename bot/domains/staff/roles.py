"""Roles and permissions: one table, in code (README shows the same table).

A person may hold several roles; their permissions are the union.  Every staff route names the one
permission it needs (``bot/gateway/staff/routes.py``), checked on the server; a personal API token
carries a subset of its owner's permissions.
"""

from __future__ import annotations

from collections.abc import Iterable

# permission → what it allows (shown to administrators when they pick token scopes)
PERMISSIONS: dict[str, str] = {
    "accounts.manage": "管理账号、角色、密码重置、停用与他人令牌",
    "settings.manage": "管理系统设置",
    "audit.read": "查看与导出审计日志",
    "reports.read": "查看总览与报表",
    "kb.read": "查询知识库、测试问答",
    "kb.edit": "编辑事项、别名，处理未答问题",
    "kb.import": "导入办事指南目录",
    "complaints.read": "查看本部门投诉",
    "complaints.handle": "办理本部门投诉（受理、答复、回访等）",
    "complaints.supervise": "督办、跨部门查看与派单",
    "complaints.export": "导出投诉清单",
    "broadcast.read": "查看群发任务与进度",
    "broadcast.compose": "创建群发、上传名单、预览、提交",
    "broadcast.operate": "启动、暂停、恢复、取消群发",
    "broadcast.approve": "审核（批准或驳回）他人的群发",
    "broadcast.export": "导出群发明细",
    "progress.audit": "查看办件查询审计",
    "chat.test": "以测试身份与机器人对话",
    "open311.submit": "通过 Open311 接口提交投诉（对接系统）",
}

# role → (Chinese name, permissions)
ROLES: dict[str, tuple[str, frozenset[str]]] = {
    "admin": (
        "管理员",
        frozenset(
            {
                "accounts.manage",
                "settings.manage",
                "audit.read",
                "progress.audit",
                "reports.read",
                "chat.test",
            }
        ),
    ),
    "kb_editor": ("知识库维护", frozenset({"kb.read", "kb.edit", "kb.import", "chat.test"})),
    "complaint_handler": (
        "投诉处理",
        frozenset({"complaints.read", "complaints.handle", "complaints.export", "kb.read"}),
    ),
    "complaint_supervisor": (
        "投诉督办",
        frozenset(
            {"complaints.read", "complaints.handle", "complaints.supervise", "complaints.export", "kb.read"}
        ),
    ),
    "broadcast_operator": (
        "群发操作员",
        frozenset({"broadcast.read", "broadcast.compose", "broadcast.operate", "broadcast.export"}),
    ),
    "approver": ("审核员", frozenset({"broadcast.read", "broadcast.approve"})),
    "viewer": (
        "只读",
        frozenset({"reports.read", "kb.read", "complaints.read", "broadcast.read", "progress.audit"}),
    ),
    "integration": ("对接系统", frozenset({"open311.submit"})),
}

# Roles whose holders must use a second factor when STAFF_TOTP_REQUIRED is on.
TOTP_ROLES = frozenset({"admin", "approver"})


class UnknownRole(ValueError):
    pass


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(r.strip() for r in roles if r.strip())
    unknown = chosen - ROLES.keys()
    if unknown:
        raise UnknownRole(f"未知角色：{', '.join(sorted(unknown))}（可选：{', '.join(ROLES)}）")
    return chosen


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for role in roles:
        if role in ROLES:
            out |= ROLES[role][1]
    return frozenset(out)


def role_names(roles: Iterable[str]) -> list[str]:
    return [ROLES[r][0] for r in sorted(roles) if r in ROLES]
