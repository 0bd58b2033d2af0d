"""The overdue sweep (督办) and the notice outbox."""

from __future__ import annotations

import asyncio
from datetime import date

from bot.domains.complaints.service import ComplaintService
from tests.support.complaints import Clock, Recorder, local, new


async def test_sweep_marks_and_escalates_by_level(service: ComplaintService, clock: Clock) -> None:
    waiting = (await service.create(new(), idempotency_key="w")).complaint  # accept due Tue 3 Mar
    handled = (await service.create(new(respondent="5号窗口"), idempotency_key="h")).complaint
    await service.accept(handled.number, "张科员")  # due Mon 9 Mar
    fine = (await service.create(new(respondent="7号窗口"), idempotency_key="f")).complaint
    assert (await service.sweep(local(2026, 3, 3, 20))).escalated == []  # still on the due day
    clock.now = local(2026, 3, 4, 9)
    await service.accept(fine.number, "张科员")
    report = await service.sweep(local(2026, 3, 4, 9))
    assert report.escalated == [waiting.number]
    row = await service.get(waiting.number)
    assert row is not None and row.overdue and row.supervision_level == 1
    event = (await service.history(waiting.number))[-1]
    assert event.action == "supervise" and event.actor == "system" and "科室督办" in (event.note or "")
    assert (await service.sweep(local(2026, 3, 4, 18))).escalated == []  # idempotent within a level
    # two working days later the next level; weekends do not count
    assert (await service.sweep(local(2026, 3, 6, 9))).escalated == [waiting.number]  # 3 working days over
    assert (await service.get(waiting.number)).supervision_level == 2  # type: ignore[union-attr]
    report = await service.sweep(local(2026, 3, 10, 9))
    assert set(report.escalated) == {waiting.number, handled.number}
    assert (await service.get(handled.number)).supervision_level == 1  # type: ignore[union-attr]
    rows, total = await service.search(overdue=True)
    assert total == 2 and {r.number for r in rows} == {waiting.number, handled.number}
    # an extension moves the deadline and clears the overdue mark
    clock.now = local(2026, 3, 10, 10)
    row = await service.extend(handled.number, "张科员", 2, "需要现场核查", "王主任")
    assert row.due == date(2026, 3, 11) and not row.overdue and row.supervision_level == 0


async def test_two_concurrent_sweepers_escalate_once(sessions, clock: Clock) -> None:
    a = ComplaintService(sessions, clock=clock)
    b = ComplaintService(sessions, clock=clock)
    numbers = [
        (await a.create(new(respondent=f"{i}号窗口"), idempotency_key=f"k{i}")).complaint.number
        for i in range(6)
    ]
    late = local(2026, 3, 5, 9)
    reports = await asyncio.gather(a.sweep(late), b.sweep(late), a.sweep(late), b.sweep(late))
    escalated = [n for r in reports for n in r.escalated]
    assert sorted(escalated) == sorted(numbers)  # each complaint escalated exactly once in total
    for number in numbers:
        history = await a.history(number)
        assert [e.action for e in history] == ["create", "supervise"]
        assert (await a.get(number)).supervision_level == 1  # type: ignore[union-attr]


async def test_failed_notice_is_retried_by_the_sweep(
    service: ComplaintService, recorder: Recorder, clock: Clock
) -> None:
    number = (await service.create(new(), idempotency_key="n")).complaint.number
    recorder.fail = 1
    await service.reject(number, "王主任", "属于信访事项，请向县信访局反映。")
    assert recorder.sent == []
    (notice,) = await service.notices(number)
    assert notice.status == "pending" and notice.attempts == 1 and notice.error == "boom"
    assert (await service.sweep(local(2026, 3, 2, 10, 1))).delivered == 0  # back-off not over yet
    assert (await service.sweep(local(2026, 3, 2, 10, 5))).delivered == 1
    (notice,) = await service.notices(number)
    assert notice.status == "sent" and notice.via == "memory" and notice.attempts == 2
    _recipient, text, key = recorder.sent[0]
    assert "不予受理" in text and "信访局" in text and key == notice.key
    assert (await service.sweep(local(2026, 3, 2, 11))).delivered == 0  # never sent twice


async def test_reply_without_sender_is_kept_for_the_gateway(
    sessions, clock: Clock, recorder: Recorder
) -> None:
    cli_side = ComplaintService(sessions, clock=clock)  # e.g. `govbot complaints reply` with no channels
    number = (await cli_side.create(new(), idempotency_key="c")).complaint.number
    await cli_side.accept(number, "a")
    await cli_side.dispatch(number, "a", "县人社局")
    await cli_side.start(number, "b")
    await cli_side.reply(number, "b", "已处理。")
    assert (await cli_side.notices(number))[0].status == "pending"
    gateway_side = ComplaintService(sessions, clock=clock, sender=recorder)
    assert (await gateway_side.sweep()).delivered == 1
    assert "已处理" in recorder.sent[0][1]
