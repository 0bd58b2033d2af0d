"""The template registry: every kind of message we send through Alibaba Cloud SMS, bound to its approved
template (``TemplateCode``) and typed variables.  Aliyun sends no free text: each message is an approved
template with ``${var}`` slots, each value 1–35 characters of its type, never a URL.

The registry is a JSON file (``ALIYUN_TEMPLATES_FILE``; ``templates.example.json`` beside this module shows
each kind)::

    {"case_status": {"code": "SMS_480001",
                     "content": "您好，您的办件${ticket}当前状态：${status}。详询0797-3322110",
                     "variables": {"ticket": "number", "status": "other"}, "status": "approved"}, …}

:func:`TemplateRegistry.fill` turns a kind and its values into a :class:`TemplateMessage`, or refuses with
a :class:`TemplateError` whose message tells staff what to change (which variable, why, the limit).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sms_gateway.config import ALIYUN_TEMPLATES_EXAMPLE

EXAMPLE_FILE = ALIYUN_TEMPLATES_EXAMPLE
MAX_VALUE = 35
TYPE_LIMITS = {"name": 20, "number": 35, "time": 35, "money": 35, "other": 35, "phone": 20}
STATUS_LABELS = {"approved": "已通过审核", "pending": "审核中", "rejected": "未通过审核"}
TYPE_LABELS = {
    "name": "姓名",
    "number": "编号",
    "time": "时间",
    "money": "金额",
    "other": "其他",
    "phone": "电话",
}
_VARIABLE = re.compile(r"\$\{(\w+)\}")
_URL = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|cn|net|org|gov)\b", re.IGNORECASE)
_NUMBER = re.compile(r"^[0-9A-Za-z-]+$")
_MONEY = re.compile(r"^\d+(?:\.\d{1,2})?(?:元)?$")


class TemplateError(ValueError):
    """A message that does not fit its template (the message says what to change, in Chinese)."""


@dataclass(frozen=True)
class Template:
    kind: str
    code: str
    content: str
    variables: dict[str, str]  # name → type (name, number, time, money, other, phone)
    status: str = "approved"  # approved | pending | rejected (as the Aliyun console shows it)

    def render(self, values: dict[str, str]) -> str:
        return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), self.content)

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """A regex matching every text this template renders, one named group per variable."""
        parts = re.split(r"\$\{(\w+)\}", self.content)
        pattern = ""
        for n, part in enumerate(parts):
            limit = TYPE_LIMITS.get(self.variables.get(part, ""), MAX_VALUE)
            pattern += re.escape(part) if n % 2 == 0 else f"(?P<{part}>.{{1,{limit}}}?)"
        return re.compile(f"^{pattern}$", re.DOTALL)

    def matches(self, text: str) -> bool:
        return self.pattern.match(text) is not None

    def fill(self, values: Mapping[str, Any]) -> TemplateMessage:
        """The message with ``values``, each checked against its variable's type and length (approval is
        the registry's concern)."""
        params: dict[str, str] = {}
        for name, kind_of_value in self.variables.items():
            value = values.get(name)
            text = "" if value is None else str(value).strip()
            label = TYPE_LABELS.get(kind_of_value, kind_of_value)
            limit = TYPE_LIMITS.get(kind_of_value, MAX_VALUE)
            if not text:
                raise TemplateError(f"变量 {name}（{label}）没有内容")
            if len(text) > limit:
                raise TemplateError(
                    f"变量 {name}（{label}）有 {len(text)} 个字，超过 {limit} 个字的上限，请缩短"
                )
            if _URL.search(text):
                raise TemplateError(f"变量 {name} 含网址，阿里云不允许在变量中放网址")
            if kind_of_value == "number" and not _NUMBER.match(text):
                raise TemplateError(f"变量 {name} 须为编号（字母、数字、连字符）")
            if kind_of_value == "money" and not _MONEY.match(text):
                raise TemplateError(f"变量 {name} 须为金额（如 120 或 120.50）")
            params[name] = text
        return TemplateMessage(self.code, params, self.render(params))


@dataclass(frozen=True)
class TemplateMessage:
    code: str
    params: dict[str, str]
    text: str  # the rendered text, for the ledger and previews


class TemplateRegistry:
    def __init__(self, templates: dict[str, Template]) -> None:
        self.templates = templates

    @classmethod
    def load(cls, path: str | Path = EXAMPLE_FILE) -> TemplateRegistry:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        templates = {}
        for kind, entry in raw.items():
            if kind.startswith("_"):
                continue  # comments
            template = Template(kind, str(entry["code"]), str(entry["content"]),
                                {str(k): str(v) for k, v in entry.get("variables", {}).items()},
                                str(entry.get("status", "approved")))  # fmt: skip
            problems = check_template(template)
            if problems:
                raise ValueError(f"{path}: {kind}: " + "; ".join(problems))
            templates[kind] = template
        return cls(templates)

    def fill(self, kind: str, values: Mapping[str, Any]) -> TemplateMessage:
        template = self.templates.get(kind)
        if template is None:
            raise TemplateError(f"没有登记“{kind}”类短信的模板，请在模板清单中添加并报阿里云审核")
        if template.status != "approved":
            raise TemplateError(f"模板 {template.code}（{kind}）尚未通过审核，暂不能发送")
        return template.fill(values)


def check_template(template: Template) -> list[str]:
    """What Aliyun's review would refuse in a template (or our registry gets wrong)."""
    problems = []
    slots = _VARIABLE.findall(template.content)
    if set(slots) != set(template.variables):
        problems.append(
            f"content's variables {sorted(set(slots))} differ from the declared {sorted(template.variables)}"
        )
    if len(slots) != len(set(slots)):
        problems.append("a variable appears twice")
    if not _VARIABLE.sub("", template.content).strip(" ，。,.：:"):
        problems.append("a template made only of variables is not approved")
    if "【" in template.content or "】" in template.content:
        problems.append("no 【】 in the template body (the signature is added by Aliyun)")
    if re.search(r"\$\{\w+\}\$\{", template.content):
        problems.append("adjacent variables are not approved")
    if re.search(r"拒收请回复R|退订", template.content) and template.kind != "promotion":
        problems.append("a notification template must not carry opt-out wording")
    unknown = [t for t in template.variables.values() if t not in TYPE_LIMITS]
    if unknown:
        problems.append(f"unknown variable types {unknown}")
    return problems
