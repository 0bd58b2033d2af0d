"""Campaign templates: ``{name}``-style variables, rendering, and the checks behind the preview blockers."""

from __future__ import annotations

import re
from collections.abc import Mapping

_VAR = re.compile(r"\{([^{}\s]{1,32})\}")
_BAD_BRACE = re.compile(r"\{[^{}]*$|^[^{}]*\}|\{\s*\}")


class TemplateError(ValueError):
    """The template cannot be used (message in Chinese, for staff)."""


def variables(template: str) -> list[str]:
    """Variable names in order of first use."""
    seen: list[str] = []
    for name in _VAR.findall(template):
        if name not in seen:
            seen.append(name)
    return seen


def check_template(template: str) -> None:
    if not template or not template.strip():
        raise TemplateError("模板内容为空")
    stripped = _VAR.sub("", template)
    if "{" in stripped or "}" in stripped:
        raise TemplateError("模板中的花括号不成对或变量名无效（变量写作 {姓名} 这样的形式，不含空格）")


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill every ``{var}``; a missing variable raises ``KeyError`` (the preview lists it as a blocker)."""

    def fill(m: re.Match[str]) -> str:
        return str(values[m.group(1)])

    return _VAR.sub(fill, template)


def missing(template: str, values: Mapping[str, str]) -> list[str]:
    """Variables of the template that are absent or empty in ``values``."""
    return [v for v in variables(template) if not str(values.get(v, "")).strip()]
