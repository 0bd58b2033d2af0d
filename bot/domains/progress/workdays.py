"""Working-day arithmetic for promised completion dates, on the same calendar as the office hours.

The calendar is :class:`bot.core.office_hours.OfficeHours` (the State Council's holidays and 调休 workdays
from the ``chinese-calendar`` package); this module only adds counting.  A time limit of N working days
starts the day after acceptance (the day of acceptance is not counted, as for 行政许可法 time limits) and
ends on the N-th working day after it; 0 (即办) means the day of acceptance, or the next working day when
the case was accepted on a day off.  Working days spent waiting for 补正 materials do not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from bot.adapters.approval.model import Case, CaseStatus, Step
from bot.core.workdays import WorkCalendar


class WorkingDays(WorkCalendar):
    """The shared working-day calendar plus what promised completion dates need."""

    def paused_days(self, history: Iterable[Step], accepted_on: date, today: date) -> int:
        """Working days spent in 补正 after acceptance (an open 补正 counts up to ``today``)."""
        paused = 0
        started: date | None = None
        for step in sorted(history, key=lambda s: s.at):
            day = self.local_date(step.at)
            if step.status is CaseStatus.CORRECTION:
                if started is None:
                    started = max(day, accepted_on)
            elif started is not None:
                paused += self.between(started, day)
                started = None
        if started is not None:
            paused += self.between(started, today)
        return paused

    def promised_date(self, case: Case, today: date) -> date | None:
        """The promised completion date: the backend's own date when it sends one; otherwise the accepted
        date plus the item's time limit in working days, extended by the working days spent in 补正."""
        if case.promised_on is not None:
            return case.promised_on
        if case.accepted_at is None or case.time_limit_days is None:
            return None
        accepted_on = self.local_date(case.accepted_at)
        return self.add(
            accepted_on, case.time_limit_days + self.paused_days(case.history, accepted_on, today)
        )

    def is_overdue(self, case: Case, today: date) -> bool:
        """Still open (not waiting for the applicant), and past the promised date."""
        if case.status.is_final or case.status in (CaseStatus.APPLIED, CaseStatus.CORRECTION):
            return False
        promised = self.promised_date(case, today)
        return promised is not None and today > promised
