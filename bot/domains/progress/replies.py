"""What the citizen reads: lookup replies, prompts and notifications (short, polite Simplified Chinese).

Personal data is masked (张*三); phones are shown only for the service windows; ID numbers, clerks' notes
and 审批意见 are never part of a reply.  SMS bodies never contain 【】 (carriers read it as a signature).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from bot.adapters.approval.model import Case, CaseStatus
from bot.adapters.approval.ticket import format_ticket
from bot.adapters.wechat.templates import template_data, thing, time_value
from bot.core.masking import mask_name
from bot.domains.progress.items import ItemFacts
from bot.domains.progress.workdays import WorkingDays
from sms_gateway.compose import Templated

PLAIN_STATUS = {
    CaseStatus.APPLIED: "已提交申请，正在等待窗口受理",
    CaseStatus.ACCEPTED: "已受理，正在等待审核",
    CaseStatus.CORRECTION: "需要补正材料",
    CaseStatus.REVIEW: "正在审核（工作人员正在审查申请材料）",
    CaseStatus.APPROVAL: "审核已通过，正在审批",
    CaseStatus.COMPLETED: "已办结，可以领取办理结果",
    CaseStatus.REJECTED: "不予受理",
    CaseStatus.RETURNED: "申请已退回",
    CaseStatus.COLLECTED: "已办结，办理结果已领取",
}
# The template's "phrase" field takes at most 5 characters.
SHORT_STATUS = {
    CaseStatus.APPLIED: "待受理",
    CaseStatus.ACCEPTED: "已受理",
    CaseStatus.CORRECTION: "需补正",
    CaseStatus.REVIEW: "审核中",
    CaseStatus.APPROVAL: "审批中",
    CaseStatus.COMPLETED: "已办结",
    CaseStatus.REJECTED: "不予受理",
    CaseStatus.RETURNED: "已退回",
    CaseStatus.COLLECTED: "已取件",
}
TEMPLATE_REMARK = {
    CaseStatus.CORRECTION: "请回复受理号查看需补正的材料",
    CaseStatus.COMPLETED: "请回复受理号查看领取地点和所需证件",
    CaseStatus.REJECTED: "如有疑问请咨询办理窗口",
    CaseStatus.RETURNED: "如有疑问请咨询办理窗口",
    CaseStatus.COLLECTED: "本件已办理完毕",
}
DEFAULT_BRING = ("受理回执（或受理号）", "申请人本人有效身份证件原件")


def cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def sms_safe(text: str) -> str:
    return text.replace("【", "〔").replace("】", "〕")


def _numbered(items: tuple[str, ...] | list[str]) -> list[str]:
    return [f"{n}. {item}" for n, item in enumerate(items, start=1)]


@dataclass(frozen=True)
class ReplyContext:
    center_phone: str
    working_days: WorkingDays
    cooldown_minutes: int = 60


class Replies:
    def __init__(self, ctx: ReplyContext) -> None:
        self.ctx = ctx

    # -- prompts ----------------------------------------------------------------------------------------

    def ask_ticket(self) -> str:
        return "请发送受理回执上的15位受理号（例如 20260213 000012 6），我来帮您查询办理进度。"

    def invalid_ticket(self) -> str:
        return "这个受理号好像不正确。受理号是受理回执上的15位数字，请核对后重新发送。"

    def ask_phone_digits(self) -> str:
        return "为保护您的个人信息，请回复办件登记时所留手机号码的后4位，核实后为您显示办理进度。"

    def ask_full_phone(self) -> str:
        return "为保护您的个人信息，这个办件需要核对完整的手机号码：请回复办件登记时所留的11位手机号码。"

    def digits_without_ticket(self) -> str:
        return "请先发送受理号，再按提示回复手机号码后4位。"

    def not_matched(self, channel: str) -> str:
        """The one answer for an unknown ticket, someone else's case and wrong digits alike."""
        if channel == "sms":
            return (
                "未查询到与本机号码相符的办件。请核对受理号，并使用办件登记的手机号码发送查询；"
                f"如有疑问，请致电 {self.ctx.center_phone}。"
            )
        return (
            "未能查询到与您提供的信息相符的办件。请核对受理号和手机号码后4位后重试；"
            f"如有疑问，请致电 {self.ctx.center_phone}。"
        )

    def rate_limited(self) -> str:
        minutes = self.ctx.cooldown_minutes
        wait = f"{minutes // 60}小时" if minutes % 60 == 0 else f"{minutes}分钟"
        return (
            f"查询未通过的次数较多，为保护办件信息安全，请{wait}后再试；"
            f"急需了解进度请致电 {self.ctx.center_phone}，或携带受理回执到原受理窗口查询。"
        )

    def unavailable(self, window_phone: str = "") -> str:
        phone = f"办理窗口 {window_phone}" if window_phone else self.ctx.center_phone
        return f"抱歉，审批系统暂时无法查询，请稍后再试。如需帮助，请致电 {phone}。"

    def bound_list(self, entries: list[tuple[str, str]]) -> str:
        lines = ["您查询过以下办件，请回复要查询的受理号："]
        lines += [f"{n}. {format_ticket(t)} {name}" for n, (t, name) in enumerate(entries, start=1)]
        return "\n".join(lines)

    def unsubscribed(self, count: int, ticket_no: str | None) -> str:
        if count == 0:
            return "您目前没有开启进度提醒的办件。"
        which = f"受理号 {format_ticket(ticket_no)} 的" if ticket_no else ""
        return f"已为您关闭{which}办件进度提醒。如需重新开启，请回复“开启提醒”。"

    def resubscribed(self, count: int) -> str:
        if count == 0:
            return "您查询过的办件都已开启进度提醒。如要查询新的办件，请发送受理号。"
        return "已为您开启办件进度提醒，办理进度有变化时会通知您。"

    # -- the case ---------------------------------------------------------------------------------------

    def case_reply(
        self,
        case: Case,
        *,
        channel: str,
        today: date,
        facts: ItemFacts | None = None,
        subscribed: bool | None = None,
    ) -> str:
        wd = self.ctx.working_days
        item_name = case.item_name or (facts.name if facts else "") or case.item_code
        window = case.window or (facts.window if facts else "")
        phone = self.window_phone(case, facts)
        lines = [f"受理号 {format_ticket(case.ticket_no)} 的办理进度：", f"事项：{item_name}"]
        if case.applicant.name:
            lines.append(f"申请人：{mask_name(case.applicant.name)}")
        lines.append(f"当前进度：{PLAIN_STATUS[case.status]}")
        if window:
            lines.append(f"办理窗口：{window}")
        if case.accepted_at is not None:
            lines.append(f"受理日期：{cn_date(wd.local_date(case.accepted_at))}")
        lines += self._deadline_lines(case, today)
        if wd.is_overdue(case, today):
            lines.append(f"该件已超过承诺办结日期，很抱歉让您久等了。您可致电办理窗口 {phone} 询问具体情况。")
        lines.append("下一步：" + self.next_step(case, facts))
        if subscribed is True and not case.status.is_final:
            lines.append("办理进度有变化时我们会提醒您；回复“取消提醒”可关闭提醒。")
        text = "\n".join(lines)
        return sms_safe(text) if channel == "sms" else text

    def window_phone(self, case: Case, facts: ItemFacts | None = None) -> str:
        return case.window_phone or (facts.phone if facts else "") or self.ctx.center_phone

    def _deadline_lines(self, case: Case, today: date) -> list[str]:
        if case.status.is_final or case.status is CaseStatus.APPLIED:
            return []
        if case.status is CaseStatus.CORRECTION:
            return ["承诺办结：补正期间暂停计时，材料补齐后继续计算。"]
        promised = self.ctx.working_days.promised_date(case, today)
        if promised is None:
            return []
        if case.promised_on is not None or case.time_limit_days is None:
            return [f"承诺办结：{cn_date(promised)}前"]
        if case.time_limit_days == 0:
            return [f"承诺办结：{cn_date(promised)}（即办件）"]
        return [f"承诺办结：{cn_date(promised)}前（{case.time_limit_days}个工作日，遇法定节假日顺延）"]

    def next_step(self, case: Case, facts: ItemFacts | None = None) -> str:
        phone = self.window_phone(case, facts)
        window = case.window or (facts.window if facts else "") or "原受理窗口"
        status = case.status
        if status is CaseStatus.APPLIED:
            return "请等待窗口受理，受理后开始计算办理时限。"
        if status in (CaseStatus.ACCEPTED, CaseStatus.REVIEW, CaseStatus.APPROVAL):
            return "目前无需您办理任何手续，请耐心等待。"
        if status is CaseStatus.CORRECTION:
            if not case.missing_materials:
                return f"请致电办理窗口 {phone} 了解需要补正的材料。"
            return "\n".join([f"请补齐以下材料，到{window}提交：", *_numbered(case.missing_materials)])
        if status is CaseStatus.COMPLETED:
            coll = case.collection
            place = (coll.place if coll else "") or (facts.location if facts else "") or window
            parts = [f"请到{place}领取办理结果。"]
            hours = (coll.hours if coll else "") or (facts.office_hours if facts else "")
            if hours:
                parts.append(f"领取时间：{hours}")
            if coll and coll.method:
                parts.append(f"领取方式：{coll.method}")
            bring = (coll.bring if coll else ()) or DEFAULT_BRING
            parts.append("请携带：")
            parts += _numbered(bring)
            return "\n".join(parts)
        if status is CaseStatus.REJECTED:
            return f"具体理由以窗口出具的书面告知为准。如需重新申请或有疑问，请致电办理窗口 {phone}。"
        if status is CaseStatus.RETURNED:
            return f"请按窗口告知的要求修改后重新提交申请。如有疑问，请致电办理窗口 {phone}。"
        return "本件已全部办理完毕，无需其他操作。"

    # -- notifications ----------------------------------------------------------------------------------

    def notification_sms(self, case: Case, facts: ItemFacts | None = None) -> str:
        item_name = case.item_name or (facts.name if facts else "") or case.item_code
        text = (
            f"您的办件有新进度：{item_name}（受理号 {format_ticket(case.ticket_no)}），"
            f"{PLAIN_STATUS[case.status]}。\n下一步：{self.next_step(case, facts)}"
        )
        if not case.status.is_final:
            text += "\n回复“取消提醒”可关闭提醒。"
        return sms_safe(text)

    def notification_template(self, case: Case) -> Templated:
        """The notice in the terms of the ``case_status`` SMS template (ticket and short status), for
        providers that send only approved templates."""
        return Templated("case_status", {"ticket": case.ticket_no, "status": SHORT_STATUS[case.status]})

    def template_data(
        self, case: Case, fields: dict[str, str], changed_at: datetime, facts: ItemFacts | None = None
    ) -> dict[str, str]:
        """Template fields (category-compliant: item, ticket, status, time, a factual hint; no marketing)."""
        item_name = case.item_name or (facts.name if facts else "") or case.item_code
        local = changed_at.astimezone(self.ctx.working_days.tz)
        values = {
            "item": thing(item_name),
            "ticket": case.ticket_no,
            "status": SHORT_STATUS[case.status],
            "time": time_value(local),
            "remark": TEMPLATE_REMARK.get(case.status, "回复受理号可查看办理详情"),
        }
        return template_data(values, fields)
