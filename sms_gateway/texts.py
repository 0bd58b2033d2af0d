"""User-facing SMS texts (Simplified Chinese, short: each fits one 70-character segment with the signature
where possible)."""

from __future__ import annotations


def opt_out_confirmation(center_phone: str) -> str:
    return f"您已退订，今后不再向您发送短信。回复“订阅”可恢复。咨询电话{center_phone}"


def opt_in_confirmation() -> str:
    return "您已恢复接收短信。直接发送问题即可咨询，回复T退订。"


def help_text(center_phone: str) -> str:
    return (
        f"政务服务助手：发送问题查办事指南，发送“查询+受理号”查办件进度。人工咨询请拨{center_phone}。回T退订"
    )


def unavailable(center_phone: str) -> str:
    return f"抱歉，系统暂时繁忙，请稍后再试。急事请拨打{center_phone}。"


def transfer_by_phone(center_phone: str) -> str:
    return f"短信暂不能转接人工，请拨打咨询电话{center_phone}（工作日办公时间）。"
