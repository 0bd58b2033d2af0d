"""WeChat template messages since the 2023 rules: the ``first`` and ``remark`` fields are no longer shown,
every field has a typed key (``thing3``, ``character_string1``, ``phrase2``, ``time4`` …) chosen when the
template is added in the official-account console, and ``thing`` values hold at most 20 characters,
``phrase`` values at most 5.  Our senders name each value by its *role*; a per-template JSON map from role to
key (an environment variable) fits them to the template the center actually added."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol


class TemplateSender(Protocol):
    """What a sender of template messages needs from WeChat (``WeChatApiClient`` implements it)."""

    async def send_template(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> int: ...


def field_map(raw: str | None, defaults: Mapping[str, str], variable: str) -> dict[str, str]:
    """``defaults`` updated by the JSON object ``raw`` (role → key); unknown roles are an error."""
    fields = dict(defaults)
    if raw:
        custom = json.loads(raw)
        if not isinstance(custom, dict):
            raise ValueError(f"{variable}: a JSON object of role → template key is expected")
        unknown = set(custom) - set(defaults)
        if unknown:
            raise ValueError(f"{variable}: unknown roles {sorted(unknown)}")
        fields.update({str(k): str(v) for k, v in custom.items()})
    return fields


def thing(text: str, limit: int = 20) -> str:
    """A ``thing`` value: at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def time_value(moment: datetime) -> str:
    """A ``time`` value, e.g. ``2026年11月25日 09:30`` (``moment`` already in local time)."""
    return f"{moment.year}年{moment.month:02d}月{moment.day:02d}日 {moment:%H:%M}"


def template_data(values: Mapping[str, str], fields: Mapping[str, str]) -> dict[str, str]:
    """The ``data`` of a template message: each role's value under the template's key for that role."""
    return {key: values[role] for role, key in fields.items() if role in values}
