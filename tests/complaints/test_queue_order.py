"""The staff queue's order: open complaints by the deadline that runs now (acceptance while registered,
handling afterwards), nearest first; then the rest.  And the reply notice the console previews."""

from __future__ import annotations

import pytest

from bot.domains.complaints.errors import InvalidInputError
from bot.domains.complaints.service import ComplaintService, reply_notice
from bot.domains.complaints.states import Status
from tests.support.complaints import Clock, Recorder, new


async def test_open_complaints_by_nearest_deadline_first(service: ComplaintService, clock: Clock) -> None:
    async def filed(text: str, key: str) -> str:
        return (await service.create(new(text, respondent=key), idempotency_key=key)).complaint.number

    handled = await filed("窗口态度差", "a")  # accepted on day 0: answer due in 5 working days
    await service.accept(handled, "督办员")
    clock.advance(days=1)
    waiting = await filed("叫号机坏了", "b")  # registered on day 1: acceptance due the next working day
    done = await filed("已办结的投诉", "c")
    await service.reject(done, "督办员", "不属于受理范围，请向12345反映")
    waiting_late = await filed("拖延办理", "d")

    rows, total = await service.search(order="deadline")
    assert total == 4
    assert [r.number for r in rows] == [waiting, waiting_late, handled, done]
    rows, _ = await service.search(order="deadline", status=[Status.ACCEPTED.value, Status.REJECTED.value])
    assert [r.number for r in rows] == [handled, done]
    newest, _ = await service.search()
    assert newest[0].number == waiting_late  # the default order stays newest first
    with pytest.raises(InvalidInputError):
        await service.search(order="random")


async def test_the_reply_notice_is_what_the_citizen_receives(
    service: ComplaintService, recorder: Recorder
) -> None:
    number = (await service.create(new(), idempotency_key="r")).complaint.number
    await service.accept(number, "督办员")
    await service.dispatch(number, "督办员", "办公室")
    await service.start(number, "承办人")
    await service.reply(number, "承办人", "已批评教育。")
    notices = await service.notices(number)
    assert notices[-1].text == reply_notice(number, "已批评教育。")
