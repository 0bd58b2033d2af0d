"""Fuzzing the date and time parsing of what staff, integrations and the approval backend send: the complaint
API's dates, Open311's ``start_date``/``end_date``, the console's list filters, a campaign's send time, the
office-hours spec, working-day arithmetic, and the approval backend's case JSON.

Property: a value parses to something usable (an aware moment that converts to UTC, a date in range) or
raises the module's own error (``InvalidInputError``, ``Open311Error``, ``BroadcastError``, ``MappingError``,
``ValueError`` where documented) — never an ``OverflowError`` or anything else that becomes a 500.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bot.adapters.approval.mapping import FieldMapping, MappingError
from bot.core.office_hours import OfficeHours
from bot.core.workdays import WorkCalendar
from bot.domains.complaints.errors import InvalidInputError
from bot.domains.complaints.open311 import Open311Error, _parse_dt, _window
from bot.domains.complaints.staff_api import _date
from bot.gateway.web.listing import BEIJING, day_start
from sms_gateway.broadcast.api import _parse_time
from sms_gateway.broadcast.errors import BroadcastError
from sms_gateway.broadcast.service import checked_time
from tests.fuzz import fuzz_settings

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)

# ISO 8601 and near misses: every field at its limits, every offset, other separators, other digits.
offsets = st.one_of(
    st.just(""), st.just("Z"), st.from_regex(r"[+-](0\d|1[0-4]|2[0-3]):?[0-5]\d(:[0-5]\d)?", fullmatch=True)
)
iso_dates = st.one_of(
    st.dates().map(date.isoformat),
    st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-29", "2024-02-29", "1999-12-31", "2100-12-31"]),
    st.from_regex(r"\d{4}-?\d{2}-?\d{2}", fullmatch=True),
)
iso_datetimes = st.one_of(
    st.builds(lambda d, t, o: f"{d}T{t}{o}", iso_dates, st.times().map(lambda t: t.isoformat()), offsets),
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
)
date_like = st.one_of(
    iso_dates, iso_datetimes, st.text(max_size=30), st.text("0123456789-:T+Z ./年月日", max_size=30)
)


def usable(moment: datetime) -> None:
    """An aware moment the database, the comparisons and the pages can take: it converts to UTC and to
    Beijing time."""
    assert moment.tzinfo is not None
    moment.astimezone(UTC)
    moment.astimezone(BEIJING)


# ---------------------------------------------------------------------------------------------- staff input


@fuzz_settings(200)
@given(value=date_like)
def test_complaint_api_dates(value) -> None:
    try:
        day = _date(value, "from")
    except InvalidInputError as exc:
        assert str(exc)
        return
    assert day is None or 2000 <= day.year <= 2100


@fuzz_settings(200)
@given(start=st.one_of(st.none(), date_like), end=st.one_of(st.none(), date_like))
def test_open311_date_window(start, end) -> None:
    query = {k: v for k, v in (("start_date", start), ("end_date", end)) if v is not None}
    try:
        since, until = _window(query, NOW)
    except Open311Error as exc:
        assert exc.status == 400
        return
    usable(since)
    if until is not None:
        usable(until)
        assert since <= until
    if start:
        usable(_parse_dt(start, "start_date"))


@fuzz_settings(200)
@given(value=date_like, end=st.booleans())
@example(value="9999-12-31", end=True)  # found: OverflowError (a 500 on the lookup and audit pages)
@example(value="0001-01-01", end=False)  # found: before year 1 in UTC, OverflowError in the query
def test_console_list_filters(value, end) -> None:
    errors: dict[str, str] = {}
    moment = day_start(value, "since", errors, end=end)
    if moment is None:
        assert errors or not value
    else:
        assert not errors
        usable(moment)


@fuzz_settings(200)
@given(value=st.one_of(date_like, st.integers(), st.floats(), st.none()))
@example(value="0001-01-01T00:00:00+08:00")  # found: a 500 when the campaign was shown (OverflowError)
@example(value="9999-12-31T23:00:00+00:00")  # found: a 500 on the campaign page (in Beijing time)
def test_campaign_send_time(value) -> None:
    """The API's parsing, then the service's check (``create``'s ``scheduled_at``, ``start``'s ``at``)."""
    try:
        moment = checked_time(_parse_time(value))
    except BroadcastError as exc:
        assert exc.status == 400
        return
    if moment is not None:
        usable(moment)


# ---------------------------------------------------------------------------------------------- calendar


@fuzz_settings(200)
@given(
    spec=st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda d1, d2, times: f"{d1}-{d2} {times}",
            st.sampled_from(["mon", "tue", "sat", "SUN", "x", ""]),
            st.sampled_from(["fri", "sun", "mon", ""]),
            st.lists(st.from_regex(r"\d{1,2}:\d{2}-\d{1,2}:\d{2}", fullmatch=True), max_size=3).map(",".join),
        ),
    ),
    day=st.dates(),
)
def test_office_hours_spec(spec, day) -> None:
    try:
        hours = OfficeHours.parse(spec)
    except ValueError:
        return
    assert hours.is_working_day(day) in (True, False)


@fuzz_settings(200)
@given(start=st.dates(), days=st.integers(0, 30), end=st.dates())
@example(start=date.max, days=1, end=date.max)  # found: OverflowError instead of ValueError
@example(start=date(9999, 12, 25), days=10, end=date.max)
def test_working_day_arithmetic(start, days, end) -> None:
    calendar = WorkCalendar()
    try:
        due = calendar.add(start, days)
    except ValueError:
        assert start > date(9000, 1, 1)  # only when the calendar runs out of days
    else:
        assert due >= start and calendar.is_working_day(due)
        calendar.end_of_day(due)
    if abs((end - start).days) < 400:
        assert calendar.between(start, end) >= 0


# ------------------------------------------------------------------------------------- approval backend

MAPPING = FieldMapping.load()
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(), st.text(max_size=20), date_like
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@fuzz_settings(300)
@given(value=json_values)
@example(value=1e300)  # found: OverflowError from fromtimestamp
@example(value=math.inf)
@example(value=-(2**63))
def test_backend_moments_parse_or_are_refused(value) -> None:
    for parse in (MAPPING.parse_datetime, MAPPING.parse_date, MAPPING.parse_int, MAPPING.parse_list):
        try:
            parse(value)
        except MappingError:
            pass


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """A case payload of the reference backend with any field replaced by any JSON value."""
    case: dict[str, Any] = {
        "ticket_no": "202602130000126",
        "item": {"code": "36072200-XK-001", "name": "个体工商户设立登记"},
        "applicant": {"name": "张三", "phone": "13812345678"},
        "status": draw(st.sampled_from(["受理", "补正", "办结", "x"])),
        "accepted_at": draw(st.one_of(iso_datetimes, json_scalars)),
        "time_limit_days": draw(st.one_of(st.integers(0, 30), json_scalars)),
        "updated_at": draw(st.one_of(iso_datetimes, json_scalars)),
        "history": draw(
            st.one_of(
                st.lists(
                    st.fixed_dictionaries({"status": st.sampled_from(["受理", "补正"]), "at": date_like})
                ),
                json_values,
            )
        ),
    }
    for key in draw(st.sets(st.sampled_from(sorted(case)))):
        case[key] = draw(json_values)
    return case


@fuzz_settings(300)
@given(payload=cases(), today=st.dates(date(2000, 1, 1), date(2100, 1, 1)))
def test_backend_cases_parse_or_are_refused(payload, today) -> None:
    from bot.domains.progress.workdays import WorkingDays

    try:
        case = MAPPING.parse_case(payload, "202602130000126")
    except MappingError:
        return
    for moment in (case.accepted_at, case.updated_at, *(s.at for s in case.history)):
        if moment is not None:
            usable(moment)
    try:
        WorkingDays().promised_date(case, today)
    except ValueError:  # documented: no such working day within ten years
        pass
