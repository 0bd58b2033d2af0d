"""Working-day arithmetic on the Chinese calendar (chinese-calendar 2026 data): the Spring Festival, the
Mid-Autumn + National Day holidays and their 调休 weekend workdays, 补正 pauses, overdue."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from bot.adapters.approval.model import Applicant, Case, CaseStatus, Step
from tests.support.progress import TZ, working_days

WD = working_days()


def at(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=TZ)


def case(status: CaseStatus, accepted: datetime | None, days: int | None, history=(), promised=None) -> Case:
    return Case(
        ticket_no="202602130000126",
        item_code="36072200-XK-009",
        item_name="食品经营许可（新办）",
        applicant=Applicant("张小三", "13812345678"),
        status=status,
        accepted_at=accepted,
        time_limit_days=days,
        promised_on=promised,
        history=tuple(history),
    )


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 2, 13), True),  # Friday before the Spring Festival
        (date(2026, 2, 14), True),  # Saturday, 调休 workday
        (date(2026, 2, 16), False),  # Spring Festival holiday (a Monday)
        (date(2026, 2, 23), False),  # last holiday (a Monday)
        (date(2026, 2, 24), True),
        (date(2026, 2, 28), True),  # Saturday, 调休 workday
        (date(2026, 3, 1), False),  # an ordinary Sunday
        (date(2026, 9, 20), True),  # Sunday, 调休 workday before National Day
        (date(2026, 9, 25), False),  # Mid-Autumn Festival (a Friday)
        (date(2026, 10, 1), False),
        (date(2026, 10, 7), False),
        (date(2026, 10, 10), True),  # Saturday, 调休 workday
    ],
)
def test_calendar(day: date, working: bool) -> None:
    assert WD.is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        # Spring Festival 2026: 2/14 (Sat) is a workday, 2/15-2/23 are off.
        (date(2026, 2, 13), 1, date(2026, 2, 14)),
        (date(2026, 2, 13), 3, date(2026, 2, 25)),
        (date(2026, 2, 12), 5, date(2026, 2, 26)),
        (date(2026, 2, 27), 1, date(2026, 2, 28)),  # the second 调休 Saturday
        (date(2026, 2, 27), 2, date(2026, 3, 2)),
        # Mid-Autumn (9/25-9/27) and National Day (10/1-10/7); 9/20 (Sun) and 10/10 (Sat) are workdays.
        (date(2026, 9, 18), 1, date(2026, 9, 20)),
        (date(2026, 9, 18), 5, date(2026, 9, 24)),
        (date(2026, 9, 18), 6, date(2026, 9, 28)),
        (date(2026, 9, 30), 1, date(2026, 10, 8)),
        (date(2026, 9, 30), 3, date(2026, 10, 10)),
        (date(2026, 9, 30), 4, date(2026, 10, 12)),
        # 即办: the same day, or the next working day when accepted on a day off.
        (date(2026, 2, 13), 0, date(2026, 2, 13)),
        (date(2026, 2, 16), 0, date(2026, 2, 24)),
        (date(2026, 10, 3), 0, date(2026, 10, 8)),
        # An ordinary week: a Friday + 1 is the Monday.
        (date(2026, 3, 6), 1, date(2026, 3, 9)),
    ],
)
def test_add_working_days(start: date, days: int, expected: date) -> None:
    assert WD.add(start, days) == expected


def test_between_counts_working_days_after_start() -> None:
    assert WD.between(date(2026, 2, 13), date(2026, 2, 25)) == 3
    assert WD.between(date(2026, 9, 30), date(2026, 10, 10)) == 3
    assert WD.between(date(2026, 2, 25), date(2026, 2, 25)) == 0
    assert WD.between(date(2026, 2, 25), date(2026, 2, 13)) == 0
    with pytest.raises(ValueError):
        WD.add(date(2026, 2, 13), -1)


def test_years_outside_the_table_fall_back_to_the_plain_week() -> None:
    assert WD.add(date(2030, 1, 4), 1) == date(2030, 1, 7)  # Friday → Monday


def test_promised_date_from_the_accepted_date_and_time_limit() -> None:
    c = case(CaseStatus.REVIEW, at(2026, 2, 13), 3)
    assert WD.promised_date(c, date(2026, 2, 20)) == date(2026, 2, 25)
    # Accepted late in the evening (UTC) is still the local date.
    c_utc = case(CaseStatus.REVIEW, datetime.fromisoformat("2026-02-12T17:00:00+00:00"), 3)
    assert WD.promised_date(c_utc, date(2026, 2, 20)) == date(2026, 2, 25)


def test_correction_pause_extends_the_promised_date() -> None:
    history = [
        Step(CaseStatus.ACCEPTED, at(2026, 2, 10)),
        Step(CaseStatus.CORRECTION, at(2026, 2, 12)),
        Step(CaseStatus.REVIEW, at(2026, 2, 25)),
    ]
    c = case(CaseStatus.REVIEW, at(2026, 2, 10), 3, history)
    # Paused 2/13, 2/14, 2/24, 2/25 = 4 working days → 3 + 4 = 7 working days after 2/10.
    assert WD.paused_days(c.history, date(2026, 2, 10), date(2026, 3, 2)) == 4
    assert WD.promised_date(c, date(2026, 3, 2)) == date(2026, 2, 26)
    # Still in 补正: the pause runs until today.
    open_c = case(CaseStatus.CORRECTION, at(2026, 2, 10), 3, history[:2])
    assert WD.paused_days(open_c.history, date(2026, 2, 10), date(2026, 2, 24)) == 3


def test_backend_promised_date_wins() -> None:
    c = case(CaseStatus.REVIEW, at(2026, 2, 13), 3, promised=date(2026, 3, 31))
    assert WD.promised_date(c, date(2026, 2, 20)) == date(2026, 3, 31)
    assert WD.promised_date(case(CaseStatus.REVIEW, None, 3), date(2026, 2, 20)) is None


@pytest.mark.parametrize(
    ("status", "today", "overdue"),
    [
        (CaseStatus.REVIEW, date(2026, 2, 25), False),  # the promised day itself
        (CaseStatus.REVIEW, date(2026, 2, 26), True),
        (CaseStatus.APPROVAL, date(2026, 3, 10), True),
        (CaseStatus.ACCEPTED, date(2026, 3, 10), True),
        (CaseStatus.CORRECTION, date(2026, 3, 10), False),  # waiting for the applicant
        (CaseStatus.COMPLETED, date(2026, 3, 10), False),
        (CaseStatus.COLLECTED, date(2026, 3, 10), False),
        (CaseStatus.REJECTED, date(2026, 3, 10), False),
    ],
)
def test_overdue(status: CaseStatus, today: date, overdue: bool) -> None:
    assert WD.is_overdue(case(status, at(2026, 2, 13), 3), today) is overdue


def test_status_round_counts_entries_into_the_status() -> None:
    history = [
        Step(CaseStatus.ACCEPTED, at(2026, 2, 10)),
        Step(CaseStatus.CORRECTION, at(2026, 2, 11)),
        Step(CaseStatus.REVIEW, at(2026, 2, 12)),
        Step(CaseStatus.CORRECTION, at(2026, 2, 13)),
        Step(CaseStatus.CORRECTION, at(2026, 2, 13, 11)),  # saved twice: still the second round
    ]
    assert case(CaseStatus.CORRECTION, at(2026, 2, 10), 3, history).status_round() == 2
    assert case(CaseStatus.REVIEW, at(2026, 2, 10), 3, history[:3]).status_round() == 1
    # The history lags behind the status: the current status counts as a new round.
    assert case(CaseStatus.APPROVAL, at(2026, 2, 10), 3, history[:3]).status_round() == 1
    assert case(CaseStatus.ACCEPTED, at(2026, 2, 10), 3, []).status_round() == 1
