"""User-facing texts (Simplified Chinese) shared by every channel and the actions.  Facts come from
Settings."""

from __future__ import annotations

from bot.core.config import Settings

CAPABILITIES = (
    "我可以帮您：\n"
    "1. 查询办事指南（材料、费用、时限、窗口）\n"
    "2. 查询办件进度（发送受理号）\n"
    "3. 投诉建议\n"
    "4. 转人工服务\n"
    "请直接输入您的问题。"
)


def welcome(settings: Settings) -> str:
    return f"您好，欢迎关注{settings.center_name}！我是政务服务助手。\n{CAPABILITIES}"


def fallback_unavailable(settings: Settings) -> str:
    return (
        f"抱歉，系统暂时繁忙，请稍后再试。急事请拨打咨询电话 {settings.center_phone}"
        f"（{settings.office_hours}）。"
    )


def no_reply(settings: Settings) -> str:
    return f"抱歉，我没能理解您的意思，请换个说法试试。也可拨打咨询电话 {settings.center_phone}。"


VOICE_NOT_RECOGNISED = "抱歉，暂时无法识别这条语音，请用文字描述您的问题。"
UNSUPPORTED_MEDIA = "已收到。目前我只能处理文字消息，请用文字描述您的问题，例如“营业执照怎么办理”。"
MORE_HINT = "（内容较长，回复“更多”查看后续内容）"
MORE_KEYWORDS = frozenset({"更多", "继续", "下一页", "more"})
LEAVE_MESSAGE_CANCEL = frozenset({"取消", "算了", "不用了", "不留言"})
LEAVE_MESSAGE_CANCELLED = "好的，已取消留言。还有什么可以帮您？"


def message_left(settings: Settings) -> str:
    return f"您的留言已记录，工作人员上班后会尽快回复您。急事请拨打 {settings.center_phone}。"


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


def bot_challenge(settings: Settings) -> str:
    return (
        f"我是{settings.center_name}的智能政务服务助手（机器人），不是真人。"
        f"如需人工服务，请回复“转人工”，或拨打咨询电话 {settings.center_phone}。"
    )


def capabilities(settings: Settings) -> str:
    """What the assistant does, and the phone for everything else."""
    return (
        "我可以帮您：\n1. 查询办事指南：例如“营业执照要带什么材料”“社保卡补办多少钱”\n"
        "2. 查询办件进度：发送受理号（回执单上的15位数字）即可\n3. 投诉建议：回复“我要投诉”\n"
        f"4. 转人工服务：回复“转人工”\n请直接输入您的问题；其他问题请拨打咨询电话 {settings.center_phone}。"
    )


def too_long(limit: int) -> str:
    return f"您的消息太长了（超过{limit}字），请分几次简要说明；投诉的详细经过可以在登记时分步填写。"


def out_of_scope(settings: Settings) -> str:
    return (
        f"抱歉，这个问题不在{settings.center_name}的服务范围内。我可以解答办事咨询、查询办件进度、受理投诉建议；"
        f"其他问题请咨询相关部门，或拨打咨询电话 {settings.center_phone}。"
    )


ALL_SHOWN = "以上就是全部内容。还有什么可以帮您？"


def rephrase() -> str:
    return (
        "抱歉，我没有完全理解您的意思，请换个说法再试一次，例如“营业执照怎么办理”“查询办件进度”。"
        "如需人工服务，请回复“转人工”。"
    )
