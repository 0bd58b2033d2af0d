"""User-facing texts (Simplified Chinese) shared by every channel.  Facts come from Settings."""

from __future__ import annotations

from bot.config import Settings

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
