"""Honest answers for features that are still being built (case progress, complaints)."""

from __future__ import annotations

from bot.config import Settings


def progress_not_ready(settings: Settings) -> str:
    return (
        "办件进度在线查询功能正在建设中，暂时无法在这里查询。"
        f"请拨打咨询电话 {settings.center_phone}，或携带受理回执到原受理窗口查询。"
    )


def complaint_not_ready(settings: Settings) -> str:
    return (
        "在线投诉功能正在建设中。如需投诉或反映问题，"
        f"请拨打 {settings.center_phone}，或到服务中心一楼投诉受理窗口，我们会及时受理。"
    )


def guide_prompt() -> str:
    return "请问您想咨询哪个事项？可以直接说事项名称和想了解的内容，例如：“个体户营业执照要带什么材料”。"


def handoff_transfer() -> str:
    return "正在为您转接人工客服，请稍候……"


def handoff_offline(settings: Settings) -> str:
    return (
        f"现在是非工作时间，人工客服暂时不在线（{settings.office_hours}）。"
        f"急事请拨打 {settings.center_phone}。\n"
        "如需留言，请直接发送留言内容，工作人员上班后会尽快回复；回复“取消”可放弃留言。"
    )


def pick_a_number(count: int) -> str:
    return f"请回复 1 到 {count} 之间的数字，选择您要咨询的事项。"


def choice_declined() -> str:
    return "好的。请换个说法描述您要办理的事项，例如“新生儿落户要什么材料”。"


def anything_else() -> str:
    return "好的。还有什么可以帮您？"


def rephrase() -> str:
    return (
        "抱歉，我没有完全理解您的意思，请换个说法再试一次，例如“营业执照怎么办理”“查询办件进度”。"
        "如需人工服务，请回复“转人工”。"
    )
