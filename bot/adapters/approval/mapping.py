"""The field and status mapping from a backend's JSON to our model, loaded from a JSON file.

Real approval systems differ in paths, field names, envelopes, status vocabularies and date formats; the
mapping file says where each of our fields lives (dotted paths, list indexes allowed: ``data.rows.0.sqr``)
and how the backend's status values map to ours.  ``mapping_reference.json`` (next to this module) maps the
reference backend and documents every key.

Statuses are mapped by, in order: the file's exact ``statuses`` table, the file's ``status_keywords`` rules
(first rule whose text the status contains), the built-in exact codes and keyword rules below, and finally
``status_default`` — so an unknown status always lands on the nearest one of our nine.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.adapters.approval.model import (
    Applicant,
    Case,
    CaseStatus,
    ChangeBatch,
    Collection,
    StatusChange,
    Step,
)
from bot.core.phone import national_digits

log = logging.getLogger(__name__)

DEFAULT_MAPPING_FILE = Path(__file__).with_name("mapping_reference.json")

# Built-in keyword rules, checked after the file's own rules; the order matters (不予受理 before 受理).
BUILTIN_KEYWORDS: tuple[tuple[str, CaseStatus], ...] = (
    ("不予", CaseStatus.REJECTED),
    ("拒绝", CaseStatus.REJECTED),
    ("退回", CaseStatus.RETURNED),
    ("退件", CaseStatus.RETURNED),
    ("撤回", CaseStatus.RETURNED),
    ("撤销", CaseStatus.RETURNED),
    ("作废", CaseStatus.RETURNED),
    ("补正", CaseStatus.CORRECTION),
    ("补齐", CaseStatus.CORRECTION),
    ("补件", CaseStatus.CORRECTION),
    ("补充材料", CaseStatus.CORRECTION),
    ("已取", CaseStatus.COLLECTED),
    ("已领", CaseStatus.COLLECTED),
    ("已送达", CaseStatus.COLLECTED),
    ("已邮寄", CaseStatus.COLLECTED),
    ("待领", CaseStatus.COMPLETED),
    ("办结", CaseStatus.COMPLETED),
    ("办毕", CaseStatus.COMPLETED),
    ("已完成", CaseStatus.COMPLETED),
    ("已发证", CaseStatus.COMPLETED),
    ("出证", CaseStatus.COMPLETED),
    ("待受理", CaseStatus.APPLIED),
    ("预审", CaseStatus.APPLIED),
    ("已提交", CaseStatus.APPLIED),
    ("审批", CaseStatus.APPROVAL),
    ("批准", CaseStatus.APPROVAL),
    ("决定", CaseStatus.APPROVAL),
    ("签发", CaseStatus.APPROVAL),
    ("核准", CaseStatus.APPROVAL),
    ("制证", CaseStatus.APPROVAL),
    ("审核", CaseStatus.REVIEW),
    ("审查", CaseStatus.REVIEW),
    ("初审", CaseStatus.REVIEW),
    ("复审", CaseStatus.REVIEW),
    ("核查", CaseStatus.REVIEW),
    ("勘验", CaseStatus.REVIEW),
    ("踏勘", CaseStatus.REVIEW),
    ("公示", CaseStatus.REVIEW),
    ("办理中", CaseStatus.REVIEW),
    ("受理", CaseStatus.ACCEPTED),
    ("申请", CaseStatus.APPLIED),
)


class MappingError(ValueError):
    """The backend's JSON does not fit the mapping (a required field is missing or malformed)."""


_MISSING = object()


def get_path(data: Any, path: str) -> Any:
    """``get_path({"a": {"b": [1, 2]}}, "a.b.1")`` → 2; a missing step gives ``None``; ``""`` = ``data``."""
    if not path:
        return data
    current = data
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part, _MISSING)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else _MISSING
        else:
            return None
        if current is _MISSING:
            return None
    return current


@dataclass(frozen=True)
class FieldMapping:
    name: str = "reference"
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    case_path: str = "/api/v1/cases/{ticket_no}"
    changes_path: str = "/api/v1/changes"
    cursor_param: str = "since"
    limit_param: str = "limit"
    not_found_http_status: tuple[int, ...] = (404,)
    envelope_data: str = ""
    envelope_code: str = ""
    ok_codes: tuple[str, ...] = ()
    not_found_codes: tuple[str, ...] = ()
    case_fields: dict[str, str] = field(default_factory=dict)
    history_fields: dict[str, str] = field(default_factory=dict)
    change_fields: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, CaseStatus] = field(default_factory=dict)
    status_keywords: tuple[tuple[str, CaseStatus], ...] = ()
    status_default: CaseStatus = CaseStatus.REVIEW
    list_separators: str = "；;\n"
    timezone: str = "Asia/Shanghai"
    datetime_formats: tuple[str, ...] = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S")
    date_formats: tuple[str, ...] = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d")

    # -- loading ----------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None) -> FieldMapping:
        source = Path(path) if path else DEFAULT_MAPPING_FILE
        try:
            raw = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the approval mapping file {source}: {exc}") from exc
        return cls.from_dict(raw, source=str(source))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<dict>") -> FieldMapping:
        def status(value: str, where: str) -> CaseStatus:
            try:
                return CaseStatus(value)
            except ValueError:
                label = CaseStatus.from_label(value)
                if label is None:
                    raise ValueError(f"{source}: {where}: unknown status {value!r}") from None
                return label

        auth = raw.get("auth", {})
        endpoints = raw.get("endpoints", {})
        envelope = raw.get("envelope", {})
        case_fields = dict(raw.get("case", {}))
        for required in ("ticket_no", "status"):
            if not case_fields.get(required):
                raise ValueError(f"{source}: case.{required} must name a field")
        d = cls()
        return cls(
            name=raw.get("name", d.name),
            auth_header=auth.get("header", d.auth_header),
            auth_scheme=auth.get("scheme", d.auth_scheme),
            case_path=endpoints.get("case", d.case_path),
            changes_path=endpoints.get("changes", d.changes_path),
            cursor_param=endpoints.get("cursor_param", d.cursor_param),
            limit_param=endpoints.get("limit_param", d.limit_param),
            not_found_http_status=tuple(raw.get("not_found_http_status", d.not_found_http_status)),
            envelope_data=envelope.get("data", ""),
            envelope_code=envelope.get("code", ""),
            ok_codes=tuple(str(c) for c in envelope.get("ok_codes", [])),
            not_found_codes=tuple(str(c) for c in envelope.get("not_found_codes", [])),
            case_fields=case_fields,
            history_fields=dict(raw.get("history", {"status": "status", "at": "at"})),
            change_fields=dict(raw.get("changes", {})),
            statuses={str(k): status(v, f"statuses[{k!r}]") for k, v in raw.get("statuses", {}).items()},
            status_keywords=tuple(
                (rule["contains"], status(rule["status"], "status_keywords"))
                for rule in raw.get("status_keywords", [])
            ),
            status_default=status(raw.get("status_default", d.status_default.value), "status_default"),
            list_separators=raw.get("list_separators", d.list_separators),
            timezone=raw.get("timezone", d.timezone),
            datetime_formats=tuple(raw.get("datetime_formats", d.datetime_formats)),
            date_formats=tuple(raw.get("date_formats", d.date_formats)),
        )

    # -- values -----------------------------------------------------------------------------------------

    def map_status(self, value: Any) -> CaseStatus:
        text = "" if value is None else str(value).strip()
        if not text:
            raise MappingError("the status is missing")
        if text in self.statuses:
            return self.statuses[text]
        for needle, status in self.status_keywords:
            if needle in text:
                return status
        try:
            return CaseStatus(text.lower())
        except ValueError:
            pass
        label = CaseStatus.from_label(text)
        if label is not None:
            return label
        for needle, status in BUILTIN_KEYWORDS:
            if needle in text:
                return status
        log.info("unknown approval status mapped to the default", extra={"raw_status": text[:40]})
        return self.status_default

    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def parse_datetime(self, value: Any) -> datetime | None:
        """An aware moment; MappingError for anything else, and for a year outside 1900–2200 (near the ends
        of Python's calendar a moment cannot even be converted to another zone or counted from)."""
        if value in (None, ""):
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 10**11 else value  # epoch milliseconds or seconds
            try:
                parsed = datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError):  # beyond year 9999, or NaN
                raise MappingError(f"not a date-time: {str(value)[:30]!r}") from None
        else:
            text = str(value).strip()
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                for fmt in (*self.datetime_formats, *self.date_formats):
                    try:
                        parsed = datetime.strptime(text, fmt)
                        break
                    except ValueError:
                        continue
                else:
                    raise MappingError(f"not a date-time: {text[:30]!r}") from None
        if not 1900 <= parsed.year <= 2200:
            raise MappingError(f"a date-time out of range: {str(value)[:30]!r}")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self._tz())

    def parse_date(self, value: Any) -> date | None:
        if value in (None, ""):
            return None
        text = str(value).strip()
        for fmt in self.date_formats:
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        moment = self.parse_datetime(value)
        return moment.astimezone(self._tz()).date() if moment else None

    def parse_list(self, value: Any) -> tuple[str, ...]:
        if value in (None, ""):
            return ()
        if isinstance(value, list):
            items = [str(v.get("name", "")) if isinstance(v, dict) else str(v) for v in value]
        elif isinstance(value, str):
            items = (
                re.split(f"[{re.escape(self.list_separators)}]", value) if self.list_separators else [value]
            )
        else:
            raise MappingError("a list field is neither a list nor a string")
        cleaned = [re.sub(r"^\s*\d{1,2}[.．、)）]\s*", "", item).strip() for item in items]
        return tuple(item for item in cleaned if item)

    @staticmethod
    def parse_int(value: Any) -> int | None:
        if value in (None, ""):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            match = re.search(r"\d+(?:\.\d+)?", str(value))
            if not match:
                return None
            number = float(match.group(0))
        if not math.isfinite(number) or number < 0:
            raise MappingError("a negative or invalid time limit")
        return math.ceil(number)

    # -- documents --------------------------------------------------------------------------------------

    def unwrap(self, body: Any) -> tuple[str, Any]:
        """(``"ok"`` | ``"not_found"``, payload) from a 2xx body; raises MappingError for an error code."""
        if self.envelope_code:
            code = get_path(body, self.envelope_code)
            code_text = "" if code is None else str(code)
            if code_text in self.not_found_codes:
                return "not_found", None
            if self.ok_codes and code_text not in self.ok_codes:
                raise MappingError(f"the backend answered with result code {code_text[:20]!r}")
        payload = get_path(body, self.envelope_data)
        return "ok", payload

    def _field(self, data: dict[str, Any], name: str) -> Any:
        path = self.case_fields.get(name)
        return get_path(data, path) if path else None

    def _text(self, data: dict[str, Any], name: str) -> str:
        value = self._field(data, name)
        if value is None:
            return ""
        if isinstance(value, dict | list):
            raise MappingError(f"field {name} is not a scalar")
        return str(value).strip()

    def parse_case(self, payload: Any, expected_ticket: str) -> Case:
        if not isinstance(payload, dict):
            raise MappingError("the case is not a JSON object")
        ticket = re.sub(r"\D", "", self._text(payload, "ticket_no"))
        if ticket != expected_ticket:
            raise MappingError("the backend answered for a different ticket number")
        raw_status = self._text(payload, "status")
        status = self.map_status(raw_status)
        item_code = self._text(payload, "item_code")
        item_name = self._text(payload, "item_name")
        if not item_code and not item_name:
            raise MappingError("the case names no item")
        history_raw = self._field(payload, "history") or []
        if not isinstance(history_raw, list):
            raise MappingError("the history is not a list")
        history: list[Step] = []
        for entry in history_raw:
            if not isinstance(entry, dict):
                raise MappingError("a history entry is not an object")
            step_raw = get_path(entry, self.history_fields.get("status", "status"))
            at = self.parse_datetime(get_path(entry, self.history_fields.get("at", "at")))
            if step_raw is None or at is None:
                continue
            history.append(Step(self.map_status(step_raw), at, str(step_raw)))
        collection = None
        place = self._text(payload, "collection_place")
        bring = self.parse_list(self._field(payload, "collection_bring"))
        method = self._text(payload, "collection_method")
        if place or bring or method:
            collection = Collection(
                place=place, method=method, hours=self._text(payload, "collection_hours"), bring=bring
            )
        return Case(
            ticket_no=ticket,
            item_code=item_code,
            item_name=item_name,
            applicant=Applicant(
                name=self._text(payload, "applicant_name"),
                phone=national_digits(self._text(payload, "applicant_phone")),
            ),
            status=status,
            raw_status=raw_status,
            window=self._text(payload, "window"),
            window_phone=self._text(payload, "window_phone"),
            accepted_at=self.parse_datetime(self._field(payload, "accepted_at")),
            time_limit_days=self.parse_int(self._field(payload, "time_limit_days")),
            promised_on=self.parse_date(self._field(payload, "promised_date")),
            updated_at=self.parse_datetime(self._field(payload, "updated_at")),
            history=tuple(sorted(history, key=lambda s: s.at)),
            missing_materials=self.parse_list(self._field(payload, "missing_materials")),
            collection=collection,
        )

    def parse_changes(self, payload: Any, cursor: str | None) -> ChangeBatch:
        f = self.change_fields
        items = get_path(payload, f.get("items", "changes"))
        if not isinstance(items, list):
            raise MappingError("the change feed has no list of changes")
        changes: list[StatusChange] = []
        for entry in items:
            if not isinstance(entry, dict):
                raise MappingError("a change is not an object")
            ticket = re.sub(r"\D", "", str(get_path(entry, f.get("ticket_no", "ticket_no")) or ""))
            raw_status = get_path(entry, f.get("status", "status"))
            if not ticket or raw_status is None:
                raise MappingError("a change lacks its ticket number or status")
            changes.append(
                StatusChange(
                    ticket_no=ticket,
                    status=self.map_status(raw_status),
                    changed_at=self.parse_datetime(get_path(entry, f.get("at", "changed_at"))),
                    raw_status=str(raw_status),
                )
            )
        next_cursor = get_path(payload, f.get("next_cursor", "next_cursor"))
        has_more = bool(get_path(payload, f["has_more"])) if f.get("has_more") else False
        return ChangeBatch(
            changes=tuple(changes),
            next_cursor=str(next_cursor) if next_cursor not in (None, "") else cursor,
            has_more=has_more,
        )
