"""The complaint lifecycle: every legal and illegal transition, history, deadlines, rating and 差评 reopen."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date

import pytest

from bot.domains.complaints.citizen import UNKNOWN_OR_NOT_YOURS
from bot.domains.complaints.config import ComplaintSettings
from bot.domains.complaints.errors import ComplaintError, IllegalTransitionError, InvalidInputError
from bot.domains.complaints.intake import NewComplaint
from bot.domains.complaints.models import Complaint, ComplaintEvent, HistoryIsAppendOnlyError
from bot.domains.complaints.service import ComplaintService
from bot.domains.complaints.states import Kind, Status
from bot.domains.complaints.store import ComplaintStore
from tests.support.complaints import OTHER, WX, Clock, Recorder, local, new

Step = Callable[[ComplaintService, str], Awaitable[Complaint]]

STEPS: dict[str, Step] = {
    "accept": lambda s, n: s.accept(n, "张科员"),
    "reject": lambda s, n: s.reject(n, "王主任", "属于诉讼事项，请向人民法院起诉。"),
    "dispatch": lambda s, n: s.dispatch(n, "张科员", "县市场监管局"),
    "return": lambda s, n: s.return_(n, "李股长", "不属于本局职责"),
    "start": lambda s, n: s.start(n, "李股长"),
    "extend": lambda s, n: s.extend(n, "张科员", 3, "需要调取监控", "王主任"),
    "reply": lambda s, n: s.reply(n, "李股长", "经核实，已对该工作人员批评教育。"),
    "callback": lambda s, n: s.callback(n, "张科员", "电话回访，群众表示满意", rating=4),
    "close": lambda s, n: s.close(n, "王主任", "resolved"),
}

PATHS: dict[Status, list[str]] = {
    Status.REGISTERED: [],
    Status.ACCEPTED: ["accept"],
    Status.REJECTED: ["reject"],
    Status.DISPATCHED: ["accept", "dispatch"],
    Status.RETURNED: ["accept", "dispatch", "return"],
    Status.IN_PROGRESS: ["accept", "dispatch", "start"],
    Status.REPLIED: ["accept", "dispatch", "start", "reply"],
    Status.CALLED_BACK: ["accept", "dispatch", "start", "reply", "callback"],
    Status.CLOSED: ["accept", "dispatch", "start", "reply", "callback", "close"],
    Status.MERGED: [],
}

# (state, action) → resulting state; every pair not listed must be rejected.
LEGAL: dict[tuple[Status, str], Status] = {
    (Status.REGISTERED, "accept"): Status.ACCEPTED,
    (Status.REGISTERED, "reject"): Status.REJECTED,
    (Status.ACCEPTED, "dispatch"): Status.DISPATCHED,
    (Status.ACCEPTED, "extend"): Status.ACCEPTED,
    (Status.DISPATCHED, "return"): Status.RETURNED,
    (Status.DISPATCHED, "start"): Status.IN_PROGRESS,
    (Status.DISPATCHED, "extend"): Status.DISPATCHED,
    (Status.RETURNED, "dispatch"): Status.DISPATCHED,
    (Status.RETURNED, "extend"): Status.RETURNED,
    (Status.IN_PROGRESS, "reply"): Status.REPLIED,
    (Status.IN_PROGRESS, "extend"): Status.IN_PROGRESS,
    (Status.REPLIED, "callback"): Status.CALLED_BACK,
    (Status.CALLED_BACK, "close"): Status.CLOSED,
}
MERGEABLE = {Status.REGISTERED, Status.ACCEPTED}
SUPPLEMENTABLE = {Status.REGISTERED, Status.ACCEPTED, Status.DISPATCHED, Status.RETURNED, Status.IN_PROGRESS}


async def _in_state(service: ComplaintService, state: Status, key: str) -> str:
    result = await service.create(new(f"{key} 窗口推诿"), idempotency_key=key)
    number = result.complaint.number
    for step in PATHS[state]:
        await STEPS[step](service, number)
    if state is Status.MERGED:
        other = await service.create(new("另一件事", respondent="5号窗口"), idempotency_key=key + "-t")
        await service.merge(number, other.complaint.number, "张科员")
    got = await service.get(number)
    assert got is not None and got.status == state.value
    return number


@pytest.mark.parametrize("state", list(Status))
async def test_every_transition_from(service: ComplaintService, state: Status) -> None:
    for i, (name, step) in enumerate(STEPS.items()):
        number = await _in_state(service, state, f"{state}-{i}")
        before = len(await service.history(number))
        if (state, name) in LEGAL:
            row = await step(service, number)
            assert row.status == LEGAL[(state, name)].value, (state, name)
            history = await service.history(number)
            assert len(history) == before + 1
            assert history[-1].action == ("return" if name == "return" else name)
            assert history[-1].from_status == state.value and history[-1].actor
        else:
            with pytest.raises(IllegalTransitionError) as err:
                await step(service, number)
            assert "不能执行" in err.value.message and err.value.status == 409
            assert len(await service.history(number)) == before
            assert (await service.get(number)).status == state.value  # type: ignore[union-attr]
    # 并单 (staff merge) and citizen supplements
    number = await _in_state(service, state, f"{state}-m")
    target_no = (
        await service.create(new("目标", respondent="9号窗口"), idempotency_key=f"{state}-mt")
    ).complaint
    if state in MERGEABLE:
        merged = await service.merge(number, target_no.number, "张科员")
        assert merged.status == Status.MERGED.value and merged.merged_into_id == target_no.id
        assert (await service.history(target_no.number))[-1].note.startswith(f"并入 {number}")  # type: ignore[union-attr]
    else:
        with pytest.raises(IllegalTransitionError):
            await service.merge(number, target_no.number, "张科员")
    number = await _in_state(service, state, f"{state}-s")
    added = await service.add_to_existing(number, WX, "补充：当时是上午十点", idempotency_key=f"{state}-sk")
    assert (added is not None) == (state in SUPPLEMENTABLE)


async def test_history_is_append_only_and_complete(service: ComplaintService, sessions, clock: Clock) -> None:
    number = await _in_state(service, Status.CLOSED, "hist")
    history = await service.history(number)
    assert [e.action for e in history] == [
        "create",
        "accept",
        "dispatch",
        "start",
        "reply",
        "callback",
        "close",
    ]
    assert [e.seq for e in history] == list(range(1, 8))
    assert history[2].department == "县市场监管局" and history[2].actor == "张科员"
    assert all(e.at is not None for e in history)
    async with sessions() as s:
        event = await s.get(ComplaintEvent, history[0].id)
        event.note = "篡改"
        with pytest.raises(HistoryIsAppendOnlyError):
            await s.flush()
    async with sessions() as s:
        event = await s.get(ComplaintEvent, history[0].id)
        await s.delete(event)
        with pytest.raises(HistoryIsAppendOnlyError):
            await s.flush()


async def test_deadlines_across_spring_festival(sessions, recorder: Recorder) -> None:
    clock = Clock(local(2026, 2, 13, 16))  # Friday before the Spring Festival
    service = ComplaintService(sessions, clock=clock, sender=recorder)
    row = (await service.create(new(), idempotency_key="sf")).complaint
    assert row.accept_due == date(2026, 2, 14)  # the 调休 Saturday
    assert "2月14日前" in (await service.create(new(), idempotency_key="sf")).receipt
    clock.now = local(2026, 2, 14, 9)
    row = await service.accept(row.number, "张科员")
    assert row.due == date(2026, 2, 28)  # 24, 25, 26, 27 and the 调休 Saturday 28
    row = await service.extend(row.number, "张科员", 10, "涉及多个部门", "王主任")
    assert row.extension_days == 10
    with pytest.raises(InvalidInputError) as err:
        await service.extend(row.number, "张科员", 1, "再延", "王主任")
    assert "还可延期0个工作日" in err.value.message
    ext = (await service.history(row.number))[-1]
    assert json.loads(ext.detail)["approver"] == "王主任" and ext.note == "涉及多个部门"  # type: ignore[arg-type]


async def test_answer_days_configurable_per_kind(sessions, clock: Clock) -> None:
    settings = ComplaintSettings.from_env({"COMPLAINT_ANSWER_DAYS": "report=10, suggestion=3"})
    service = ComplaintService(sessions, clock=clock, settings=settings)
    report = (await service.create(new(kind=Kind.REPORT), idempotency_key="r")).complaint
    idea = (await service.create(new(kind=Kind.SUGGESTION), idempotency_key="s")).complaint
    plain = (await service.create(new(), idempotency_key="c")).complaint
    assert (await service.accept(report.number, "a")).due == date(2026, 3, 16)
    assert (await service.accept(idea.number, "a")).due == date(2026, 3, 5)
    assert (await service.accept(plain.number, "a")).due == date(2026, 3, 9)


async def test_national_day_answer_deadline(sessions) -> None:
    clock = Clock(local(2026, 9, 30, 11))
    service = ComplaintService(sessions, clock=clock)
    row = (await service.create(new(), idempotency_key="nd")).complaint
    assert row.accept_due == date(2026, 10, 8)
    row = await service.accept(row.number, "张科员")
    assert row.due == date(2026, 10, 13)  # 8, 9, 10 (调休 Saturday), 12, 13


async def test_reply_reaches_citizen_and_rating(service: ComplaintService, recorder: Recorder) -> None:
    number = await _in_state(service, Status.IN_PROGRESS, "rate")
    await service.reply(number, "李股长", "已批评教育当事人。")
    recipient, text, key = recorder.sent[-1]
    assert recipient.sender_id == WX and recipient.number == number
    assert "已批评教育当事人" in text and "回复数字" in text and key.startswith(number)
    assert (await service.awaiting_rating(WX)).number == number  # type: ignore[union-attr]
    assert (await service.rate(number, OTHER, 5)).text == UNKNOWN_OR_NOT_YOURS
    assert not (await service.rate(number, WX, 7)).ok
    result = await service.rate(number, WX, 4)
    assert result.ok and not result.reopened and "满意" in result.text
    row = await service.get(number)
    assert row.status == Status.CALLED_BACK.value and row.rating == 4 and not row.bad_review  # type: ignore[union-attr]
    again = await service.rate(number, WX, 1)
    assert not again.ok and "不在评价阶段" in again.text


async def test_bad_rating_reopens_with_deadline(
    service: ComplaintService, clock: Clock, recorder: Recorder
) -> None:
    number = await _in_state(service, Status.REPLIED, "bad")
    clock.now = local(2026, 3, 6, 15)  # Friday
    result = await service.rate(number, WX, 2, "根本没解决")
    assert result.ok and result.reopened and "3月13日前" in result.text
    row = await service.get(number)
    assert row is not None and row.status == Status.IN_PROGRESS.value
    assert row.bad_review and row.rating == 2 and row.reopen_count == 1 and row.due == date(2026, 3, 13)
    assert (await service.history(number))[-1].action == "reopen"
    await service.reply(number, "李股长", "已整改：该窗口增派人手。")
    assert "已整改" in recorder.sent[-1][1]  # the citizen is told the result
    second = await service.rate(number, WX, 1)  # only one reopen: the second 差评 is recorded
    assert second.ok and not second.reopened and "回访核实" in second.text
    row = await service.get(number)
    assert row.status == Status.CALLED_BACK.value and row.rating == 1 and row.bad_review  # type: ignore[union-attr]


async def test_create_exactly_once_under_concurrency(service: ComplaintService) -> None:
    results = await asyncio.gather(*(service.create(new(), idempotency_key="wx-msg-1") for _ in range(8)))
    assert len({r.complaint.number for r in results}) == 1
    assert sum(r.created for r in results) == 1
    rows, total = await service.search()
    assert total == 1 and len(await service.history(rows[0].number)) == 1
    other = await service.create(new(), idempotency_key="wx-msg-2")
    assert other.created and other.complaint.number != rows[0].number


async def test_duplicate_detection(service: ComplaintService, clock: Clock) -> None:
    first = (
        await service.create(new(respondent="3号窗口", phone="13812345678"), idempotency_key="d1")
    ).complaint
    assert (await service.find_duplicate(WX, "三号窗口")).number == first.number  # type: ignore[union-attr]
    assert (await service.find_duplicate(WX, " 3 号窗口")).number == first.number  # type: ignore[union-attr]
    assert await service.find_duplicate(WX, "5号窗口") is None
    assert await service.find_duplicate(OTHER, "3号窗口") is None
    # same phone from SMS counts as the same citizen
    found = await service.find_duplicate("sms:+8613812345678", "3号窗口", phone="+86 138 1234 5678")
    assert found is not None and found.number == first.number
    # without a respondent: a similar description
    nowin = await service.create(new("办营业执照被要求跑了三趟还没办好", respondent=""), idempotency_key="d2")
    dup = await service.find_duplicate(WX, None, "办营业执照被要求跑了三趟还是没办好")
    assert dup is not None and dup.number == nowin.complaint.number
    assert await service.find_duplicate(WX, None, "大厅空调太冷") is None
    # outside the configured window, or once finished: no duplicate
    clock.advance(hours=73)
    assert await service.find_duplicate(WX, "3号窗口") is None
    clock.advance(hours=-73)
    await service.reject(first.number, "王主任", "重复反映")
    assert await service.find_duplicate(WX, "3号窗口") is None
    # 并单 from the citizen is idempotent and only for the owner
    target = nowin.complaint.number
    assert await service.add_to_existing(target, OTHER, "我也补充") is None
    a = await service.add_to_existing(target, WX, "补充：周一上午", idempotency_key="m1")
    b = await service.add_to_existing(target, WX, "补充：周一上午", idempotency_key="m1")
    assert a is not None and b is not None
    assert [e.action for e in await service.history(target)] == ["create", "supplement"]


async def test_unknown_and_not_yours_are_identical(service: ComplaintService) -> None:
    number = (await service.create(new(), idempotency_key="q")).complaint.number
    mine = await service.lookup(f"查询投诉 {number}", WX)
    assert number in mine and "已登记" in mine and "受理期限" in mine
    not_yours = await service.lookup(f"查询投诉 {number}", OTHER)
    from bot.domains.complaints import numbers

    while True:
        unknown_no = numbers.new_number()
        if unknown_no != number:
            break
    unknown = await service.lookup(f"查询投诉 {unknown_no}", WX)
    assert not_yours == unknown == UNKNOWN_OR_NOT_YOURS
    assert "请发送投诉编号" in await service.lookup("查询投诉", WX)


async def test_input_validation(service: ComplaintService) -> None:
    with pytest.raises(InvalidInputError):
        await service.create(new(""), idempotency_key=None)
    with pytest.raises(InvalidInputError) as err:
        await service.create(new(phone="12345"), idempotency_key=None)
    assert "联系电话" in err.value.message
    ok = await service.create(new(phone="0571 8765 4321"), idempotency_key=None)
    assert ok.complaint.phone == "0571-87654321"
    number = ok.complaint.number
    with pytest.raises(InvalidInputError):
        await service.reject(number, "王主任", "  ")
    with pytest.raises(InvalidInputError):
        await service.accept(number, "")
    with pytest.raises(InvalidInputError):
        await service.create(NewComplaint("wechat", WX, "x", category="nope"), idempotency_key=None)


async def test_concurrent_staff_changes_apply_once(service: ComplaintService) -> None:
    number = (await service.create(new(), idempotency_key="race")).complaint.number
    results = await asyncio.gather(
        *(service.accept(number, f"staff{i}") for i in range(4)),
        service.reject(number, "王主任", "重复"),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 1
    assert all(
        isinstance(r, ComplaintError) and r.status == 409 for r in results if isinstance(r, BaseException)
    )
    history = await service.history(number)
    assert [e.seq for e in history] == [1, 2] and history[1].action in ("accept", "reject")


async def test_supplement_racing_a_staff_change_is_not_lost(
    service: ComplaintService, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = (await service.create(new(), idempotency_key="race2")).complaint.number
    await service.accept(number, "张科员")
    original = ComplaintStore.load
    raced: list[bool] = []

    async def racing_load(s, num):
        row = await original(s, num)
        if not raced:  # a staff change lands between the citizen's read and write
            raced.append(True)
            await service.extend(num, "张科员", 1, "核实", "王主任")
        return row

    monkeypatch.setattr(ComplaintStore, "load", staticmethod(racing_load))
    added = await service.add_to_existing(number, WX, "补充说明", idempotency_key="sup-race")
    assert raced and added is not None and added.extension_days == 1
    history = await service.history(number)
    assert [e.action for e in history] == ["create", "accept", "extend", "supplement"]
    assert [e.seq for e in history] == [1, 2, 3, 4]


async def test_long_keys_and_fields_fit_the_columns(service: ComplaintService) -> None:
    key = "wx:" + "m" * 300
    first = await service.create(new(respondent="窗" * 300), idempotency_key=key)
    again = await service.create(new(respondent="窗" * 300), idempotency_key=key)
    assert first.created and not again.created and first.complaint.number == again.complaint.number
    assert first.complaint.idempotency_key is not None and len(first.complaint.idempotency_key) <= 128
    assert (await service.find_duplicate(WX, "窗" * 300)) is not None
    with pytest.raises(InvalidInputError):
        await service.create(NewComplaint("x" * 17, WX, "内容"), idempotency_key=None)
