"""Figures for the dashboard and 电子监察 pages: a few rows in every table they read, relative to today."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from bot.core.workdays import WorkCalendar
from bot.domains.complaints.models import Complaint
from bot.domains.progress.models import SupervisionCase
from bot.gateway.models import ConversationTurn
from knowledge_base.models import KbItem, KbUnanswered
from sms_gateway.models import SmsOptOut, SmsOutbound

CAL = WorkCalendar()
ITEM = "310000000001"  # 5 working days, 民政局
QUICK = "310000000002"  # 即办, 公安局


def local_today() -> date:
    return CAL.local_date(utcnow())


def _complaint(n: int, received: datetime, **values: object) -> Complaint:
    return Complaint(
        number=f"TS{n:06d}", channel="wechat", sender_id=f"wx:o{n}", kind="complaint", category="service",
        description="窗口态度", received_at=received, status=values.pop("status", "accepted"),
        accept_due=received.date(), **values,
    )  # fmt: skip


async def seed(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    now = utcnow()
    today = local_today()
    yesterday = now - timedelta(days=1)
    async with sessions.begin() as s:
        s.add_all(
            [
                KbItem(code=ITEM, name="=HYPERLINK(\"x\")婚姻登记", department="民政局", window="3号窗口",
                       materials="身份证", promised_time_limit="5个工作日"),
                KbItem(code=QUICK, name="居住证办理", department="公安局", window="8号窗口",
                       materials="身份证", promised_time_limit="即办"),
            ]
        )  # fmt: skip
        for channel, outcome, code in [
            ("wechat", "kb", ITEM), ("wechat", "kb", ITEM), ("sms", "kb", QUICK),
            ("wechat", "fallback", None), ("sms", "handoff", None),
        ]:  # fmt: skip
            s.add(ConversationTurn(at=yesterday, channel=channel, sender_hash="h" * 32, outcome=outcome,
                                   item_code=code, text_length=8))  # fmt: skip
        s.add(KbUnanswered(question="怎么养猫", normalized="怎么养猫", channel="wechat", kind="not_found",
                           created_at=yesterday))  # fmt: skip
        # answered on time, rated 5; answered late, rated 2; open and overdue
        s.add(_complaint(1, yesterday, due=today, replied_at=yesterday, rating=5, rated_at=now,
                         respondent="3号窗口", owner_department="民政局", status="replied"))  # fmt: skip
        s.add(_complaint(2, yesterday, due=today - timedelta(days=3), replied_at=yesterday, rating=2,
                         rated_at=now, respondent="8号窗口", owner_department="公安局", status="closed",
                         closed_at=now))  # fmt: skip
        s.add(_complaint(3, yesterday, due=today - timedelta(days=1), owner_department="民政局"))
        for n, status in enumerate(["delivered", "delivered", "failed", "sending"]):
            s.add(SmsOutbound(id=f"sms{n}", provider="fake", recipient=f"+861380000000{n}", body="通知",
                              segments=1, encoding="UCS2", purpose="broadcast", status=status,
                              created_at=yesterday))  # fmt: skip
        s.add(SmsOptOut(phone="+8613800000009", opted_out=True, source="keyword", changed_at=yesterday))
        # 电子监察 (the case register): one case overdue (accepted 10 working days ago, 5-day limit), one
        # completed on time, one 即办 case accepted today (due today: 预警)
        long_ago = datetime.combine(CAL.add(today - timedelta(days=20), 0), datetime.min.time(), UTC)
        for ticket, code, status, status_at, completed in [
            ("202601010000001", ITEM, "review", long_ago + timedelta(days=1), None),
            (
                "202601010000002",
                ITEM,
                "completed",
                long_ago + timedelta(hours=5),
                long_ago + timedelta(hours=5),
            ),
            ("202601010000003", QUICK, "accepted", now, None),
        ]:
            accepted = now if code == QUICK else long_ago
            s.add(SupervisionCase(ticket_no=ticket, item_code=code, item_name="", window="", status=status,
                                  status_at=status_at, first_seen_at=accepted, accepted_at=accepted,
                                  completed_at=completed, details=True))  # fmt: skip
    return {"from": (long_ago.date() - timedelta(days=1)).isoformat(), "to": today.isoformat()}
