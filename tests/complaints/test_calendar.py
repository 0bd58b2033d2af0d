"""Working-day arithmetic on the Chinese calendar and the complaint numbers."""

from __future__ import annotations

from datetime import date

import chinese_calendar
import pytest

from bot.core.workdays import WorkCalendar
from bot.domains.complaints import numbers

CAL = WorkCalendar()


def test_calendar_matches_the_published_2026_table() -> None:
    for iso in ("2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10"):  # 调休 Saturdays/Sunday
        d = date.fromisoformat(iso)
        assert d.weekday() >= 5 and chinese_calendar.is_workday(d) and CAL.is_working_day(d)
    for day in range(15, 24):
        assert not CAL.is_working_day(date(2026, 2, day))
    for day in range(1, 8):
        assert not CAL.is_working_day(date(2026, 10, day))


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        ("2026-03-06", 1, "2026-03-09"),  # Friday + 1 → Monday
        ("2026-03-02", 5, "2026-03-09"),
        ("2026-02-13", 1, "2026-02-14"),  # Friday + 1 → the 调休 Saturday
        ("2026-02-13", 2, "2026-02-24"),  # then the Spring Festival (15–23) is skipped
        ("2026-02-12", 5, "2026-02-26"),  # 13, 14(Sat), 24, 25, 26
        ("2026-02-26", 2, "2026-02-28"),  # 27, 28 (调休 Saturday)
        ("2026-02-27", 1, "2026-02-28"),
        ("2026-02-15", 0, "2026-02-24"),  # accepted on a holiday: the next working day
        ("2026-09-18", 1, "2026-09-20"),  # Friday + 1 → the 调休 Sunday
        ("2026-09-30", 1, "2026-10-08"),  # National Day 1–7 skipped
        ("2026-09-30", 5, "2026-10-13"),  # 8, 9, 10 (调休 Saturday), 12, 13
        ("2026-10-08", 2, "2026-10-10"),
        ("2026-09-29", 15, "2026-10-26"),  # 5 + 10 extension across National Day
    ],
)
def test_add_working_days(start: str, days: int, due: str) -> None:
    assert CAL.add(date.fromisoformat(start), days) == date.fromisoformat(due)


def test_between_counts_working_days_after_start() -> None:
    assert CAL.between(date(2026, 2, 13), date(2026, 2, 24)) == 2
    assert CAL.between(date(2026, 9, 30), date(2026, 10, 10)) == 3
    assert CAL.between(date(2026, 3, 9), date(2026, 3, 9)) == 0
    with pytest.raises(ValueError):
        CAL.add(date(2026, 3, 2), -1)


def test_numbers_random_checked_and_parsed() -> None:
    seen = {numbers.new_number() for _ in range(2000)}
    assert len(seen) == 2000
    for n in list(seen)[:200]:
        assert numbers.is_valid(n) and len(n) == 12 and n.startswith("TS")
        assert numbers.parse(f"查询投诉 {n[:5].lower()} {n[5:]}") == n
    n = sorted(seen)[0]
    body = n[2:-1]
    for i, ch in enumerate(body):  # every single wrong symbol is caught
        for other in numbers.ALPHABET:
            if other != ch:
                assert not numbers.is_valid(n[:2] + body[:i] + other + body[i + 1 :] + n[-1])
    for i in range(len(body) - 1):  # every swap of two different neighbours is caught
        if body[i] != body[i + 1]:
            swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
            assert not numbers.is_valid("TS" + swapped + n[-1])
    assert numbers.parse("查询投诉 TS123") is None
    # not sequential: consecutive numbers share no common structure
    a, b = numbers.new_number(), numbers.new_number()
    assert a != b and abs(int.from_bytes(a.encode()) - int.from_bytes(b.encode())) > 1
