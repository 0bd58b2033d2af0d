"""The reply: item name, current step in plain words, window, accepted date, promised completion date in
working days, and the next step (补正: every missing material; 办结: where to collect and what to bring);
overdue cases say so with the window phone.  Cases come from the reference backend over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime

import pytest
import redis.asyncio as aioredis

from bot.adapters.approval import Applicant, Case, CaseStatus, Collection, HttpApprovalBackend
from bot.adapters.approval.ticket import make_ticket
from bot.core.db import create_engine, session_factory
from bot.domains.progress.items import ItemFacts, KnowledgeBaseItems
from bot.domains.progress.replies import Replies, ReplyContext
from bot.domains.progress.service import LookupResult, ProgressService
from knowledge_base.importer import ensure_sample_loaded
from knowledge_base.service import KnowledgeBase
from tests.support.progress import (
    APPLICANT_PHONE,
    CENTER_PHONE,
    ID_NUMBER,
    ITEM_3D,
    ITEM_NOW,
    Clock,
    RefHarness,
    fast_settings,
    local,
    make_service,
    working_days,
)

SMS = f"sms:+86{APPLICANT_PHONE}"
WINDOW = "一楼3-6号窗口（市场监管）"
WINDOW_PHONE = "0797-3312315"


class Desk:
    def __init__(self, reference: RefHarness, service: ProgressService, clock: Clock) -> None:
        self.reference = reference
        self.service = service
        self.clock = clock

    async def case(self, item: str = ITEM_3D, status: str = "受理", at: datetime | None = None) -> str:
        return (await self.reference.create(item, status=status, at=at or local(2026, 2, 13, 10)))[
            "ticket_no"
        ]

    async def reply(self, ticket: str, channel: str = "sms") -> str:
        outcome = await self.service.handle(SMS, channel, ticket, {"phone": "+86" + APPLICANT_PHONE})
        assert outcome.result is LookupResult.SHOWN, outcome
        assert len(outcome.messages) == 1
        return outcome.messages[0]


@pytest.fixture
async def desk(reference: RefHarness, redis_client: aioredis.Redis, sqlite_url: str) -> AsyncIterator[Desk]:
    engine = create_engine(sqlite_url)
    backend = HttpApprovalBackend(fast_settings(reference.url, cache_ttl=0), redis_client)
    clock = Clock(local(2026, 2, 20, 10))
    yield Desk(reference, make_service(backend, session_factory(engine), redis_client, clock), clock)
    await backend.close()
    await engine.dispose()


async def test_accepted_case(desk: Desk) -> None:
    ticket = await desk.case()
    assert ticket == make_ticket(date(2026, 2, 13), 1)
    text = await desk.reply(ticket)
    assert text.splitlines() == [
        f"受理号 20260213 000001 {ticket[-1]} 的办理进度：",
        "事项：食品经营许可（新办）",
        "申请人：张*三",
        "当前进度：已受理，正在等待审核",
        f"办理窗口：{WINDOW}",
        "受理日期：2026年2月13日",
        "承诺办结：2026年2月25日前（3个工作日，遇法定节假日顺延）",  # across the Spring Festival
        "下一步：目前无需您办理任何手续，请耐心等待。",
        "办理进度有变化时我们会提醒您；回复“取消提醒”可关闭提醒。",
    ]


@pytest.mark.parametrize(
    ("path", "plain"),
    [
        (["审核"], "当前进度：正在审核（工作人员正在审查申请材料）"),
        (["审核", "审批"], "当前进度：审核已通过，正在审批"),
    ],
)
async def test_in_progress_steps(desk: Desk, path: list[str], plain: str) -> None:
    ticket = await desk.case()
    for status in path:
        await desk.reference.change(ticket, status, at=local(2026, 2, 14, 10))
    text = await desk.reply(ticket)
    assert plain in text and "承诺办结：2026年2月25日前" in text and "无需您办理" in text


async def test_applied_case_has_no_dates_yet(desk: Desk) -> None:
    text = await desk.reply(await desk.case(status="申请"))
    assert "当前进度：已提交申请，正在等待窗口受理" in text
    assert "受理日期" not in text and "承诺办结" not in text
    assert "下一步：请等待窗口受理，受理后开始计算办理时限。" in text


async def test_correction_lists_every_missing_material(desk: Desk) -> None:
    ticket = await desk.case()
    missing = ["经营场所使用证明复印件1份", "食品安全管理制度文本1份", "法定代表人身份证复印件1份"]
    await desk.reference.change(ticket, "补正", missing_materials=missing, at=local(2026, 2, 14, 10))
    text = await desk.reply(ticket)
    assert "当前进度：需要补正材料" in text
    assert "承诺办结：补正期间暂停计时，材料补齐后继续计算。" in text
    assert (
        f"下一步：请补齐以下材料，到{WINDOW}提交：\n1. {missing[0]}\n2. {missing[1]}\n3. {missing[2]}" in text
    )
    # Back in review on 2/26: the 3 working days after the 补正 started (2/24, 2/25, 2/26) do not count, so
    # 3 + 3 working days after 2/13: 2/14, 2/24, 2/25, 2/26, 2/27 and the 调休 Saturday 2/28.
    await desk.reference.change(ticket, "审核", at=local(2026, 2, 26, 10))
    desk.clock.set(local(2026, 2, 27, 10))
    text = await desk.reply(ticket)
    assert "承诺办结：2026年2月28日前（3个工作日，遇法定节假日顺延）" in text
    assert "超过承诺办结日期" not in text


async def test_completed_case_says_where_to_collect_and_what_to_bring(desk: Desk) -> None:
    ticket = await desk.case()
    await desk.reference.change(ticket, "办结", at=local(2026, 2, 24, 10))
    text = await desk.reply(ticket)
    assert "当前进度：已办结，可以领取办理结果" in text
    assert "下一步：请到信丰县行政服务中心一楼3-6号窗口领取办理结果。" in text
    assert "领取时间：周一至周五" in text and "领取方式：窗口领取（也可申请免费邮寄）" in text
    assert "请携带：\n1. 受理回执（或受理号）\n2. 申请人本人有效身份证件原件\n3. 委托他人代领的" in text
    assert "承诺办结" not in text and "取消提醒" not in text  # finished: nothing more to follow
    await desk.reference.change(ticket, "已取件", at=local(2026, 2, 25, 10))
    text = await desk.reply(ticket)
    assert "当前进度：已办结，办理结果已领取" in text and "下一步：本件已全部办理完毕，无需其他操作。" in text


@pytest.mark.parametrize(
    ("initial", "final", "plain", "advice"),
    [
        ("申请", "不予受理", "当前进度：不予受理", "具体理由以窗口出具的书面告知为准"),
        ("受理", "退回", "当前进度：申请已退回", "请按窗口告知的要求修改后重新提交申请"),
    ],
)
async def test_refused_cases_point_to_the_window(
    desk: Desk, initial: str, final: str, plain: str, advice: str
) -> None:
    ticket = await desk.case(status=initial)
    await desk.reference.change(
        ticket, final, note="内部审批意见：材料存在虚假内容", at=local(2026, 2, 14, 10)
    )
    text = await desk.reply(ticket)
    assert plain in text and advice in text and WINDOW_PHONE in text
    assert "内部审批意见" not in text and "虚假" not in text  # clerks' notes are never shown


async def test_overdue_case_says_so_and_offers_the_window_phone(desk: Desk) -> None:
    ticket = await desk.case()
    await desk.reference.change(ticket, "审核", at=local(2026, 2, 14, 10))
    desk.clock.set(local(2026, 2, 25, 16))
    assert "超过承诺办结日期" not in await desk.reply(ticket)  # the promised day itself is still on time
    desk.clock.set(local(2026, 2, 26, 9))
    text = await desk.reply(ticket)
    assert f"该件已超过承诺办结日期，很抱歉让您久等了。您可致电办理窗口 {WINDOW_PHONE} 询问具体情况。" in text


async def test_immediate_item_and_national_day(desk: Desk) -> None:
    text = await desk.reply(await desk.case(ITEM_NOW, at=local(2026, 2, 13, 10)))
    assert "承诺办结：2026年2月13日（即办件）" in text
    desk.clock.set(local(2026, 10, 9, 10))
    text = await desk.reply(await desk.case(ITEM_3D, at=local(2026, 9, 30, 10)))
    assert "受理日期：2026年9月30日" in text and "承诺办结：2026年10月10日前" in text


async def test_wechat_and_sms_replies_never_show_personal_data(desk: Desk) -> None:
    ticket = await desk.case()
    sms = await desk.reply(ticket)
    outcome = await desk.service.handle("wx:oOwner000000000000000000001", "wechat", f"{ticket} 5678")
    assert outcome.result is LookupResult.SHOWN
    for text in (sms, outcome.messages[0]):
        assert "张小三" not in text and APPLICANT_PHONE not in text and ID_NUMBER not in text
        assert "【" not in text and "】" not in text


# ------------------------------------------------------------------------------------ composer details


def _case(**overrides: object) -> Case:
    values: dict[str, object] = {
        "ticket_no": "202602130000126",
        "item_code": ITEM_3D,
        "item_name": "【试点】食品经营许可（新办）",
        "applicant": Applicant("欧阳小明", APPLICANT_PHONE),
        "status": CaseStatus.COMPLETED,
        "window": WINDOW,
        "window_phone": WINDOW_PHONE,
    }
    values.update(overrides)
    return Case(**values)  # type: ignore[arg-type]


REPLIES = Replies(ReplyContext(CENTER_PHONE, working_days()))


def test_sms_bodies_have_no_square_brackets_and_names_are_masked() -> None:
    today = local(2026, 2, 20).date()
    sms = REPLIES.case_reply(_case(), channel="sms", today=today)
    wechat = REPLIES.case_reply(_case(), channel="wechat", today=today)
    assert "〔试点〕" in sms and "【" not in sms and "】" not in sms
    assert "【试点】" in wechat
    assert "申请人：欧**明" in wechat
    assert "【" not in REPLIES.notification_sms(_case())


def test_catalogue_facts_fill_what_the_backend_left_out() -> None:
    facts = ItemFacts(
        ITEM_3D, "食品经营许可（新办）", WINDOW, WINDOW_PHONE, "信丰县行政服务中心一楼", "周一至周五"
    )
    bare = _case(item_name="", window="", window_phone="", collection=None)
    text = REPLIES.case_reply(bare, channel="wechat", today=local(2026, 2, 20).date(), facts=facts)
    assert "事项：食品经营许可（新办）" in text and f"办理窗口：{WINDOW}" in text
    assert "请到信丰县行政服务中心一楼领取办理结果。" in text and "领取时间：周一至周五" in text
    assert "请携带：\n1. 受理回执（或受理号）\n2. 申请人本人有效身份证件原件" in text
    without = REPLIES.case_reply(bare, channel="wechat", today=local(2026, 2, 20).date())
    assert f"事项：{ITEM_3D}" in without
    rejected = _case(status=CaseStatus.REJECTED, window_phone="")
    assert CENTER_PHONE in REPLIES.next_step(rejected)
    correction = _case(status=CaseStatus.CORRECTION, missing_materials=())
    assert f"请致电办理窗口 {WINDOW_PHONE} 了解需要补正的材料" in REPLIES.next_step(correction)
    coll = _case(collection=Collection(place="邮寄", method="EMS", bring=("无需携带材料",)))
    assert "1. 无需携带材料" in REPLIES.next_step(coll)


def test_template_data_is_short_and_factual() -> None:
    fields = {
        "item": "thing1",
        "ticket": "character_string2",
        "status": "phrase3",
        "time": "time4",
        "remark": "thing5",
    }
    for status in CaseStatus:
        data = REPLIES.template_data(
            _case(status=status, item_name="建设项目环境影响报告表审批（含重大变动环评重新报批）"),
            fields,
            datetime.fromisoformat("2026-02-24T02:05:00+00:00"),
        )
        assert set(data) == set(fields.values())
        assert len(data["thing1"]) <= 20 and len(data["thing5"]) <= 20 and len(data["phrase3"]) <= 5
        assert data["character_string2"] == "202602130000126"
        assert data["time4"] == "2026年02月24日 10:05"
        assert not any(
            word in "".join(data.values()) for word in ("优惠", "活动", "关注", "点击领取", "推荐")
        )
        assert "欧阳" not in "".join(data.values()) and APPLICANT_PHONE not in "".join(data.values())
    only_two = REPLIES.template_data(_case(), {"item": "thing9", "status": "phrase1"}, datetime(2026, 2, 24))
    assert set(only_two) == {"thing9", "phrase1"}


async def test_knowledge_base_items(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        sessions = session_factory(engine)
        await ensure_sample_loaded(sessions)
        items = KnowledgeBaseItems(KnowledgeBase(sessions))
        facts = await items.facts(ITEM_3D)
        assert facts is not None and facts.name == "食品经营许可（新办）" and facts.window == WINDOW
        assert facts.phone == WINDOW_PHONE and facts.location
        assert await items.facts("36072200-XX-999") is None and await items.facts("") is None
    finally:
        await engine.dispose()
