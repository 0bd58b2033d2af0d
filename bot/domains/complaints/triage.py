"""Scope triage of a citizen's free text before a complaint is filed (12345 诉求分类处理).

:func:`triage` returns what the intake should do: divert an emergency to 110/119/120/122 at once, explain the
lawful channel (诉讼/仲裁/行政复议/信访/纪检监察), say who handles matters that are not the center's business,
answer a consultation-shaped question as a question, or go on filing a complaint.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    EMERGENCY = "emergency"
    LEGAL_CHANNEL = "legal_channel"
    NOT_OURS = "not_ours"
    CONSULTATION = "consultation"
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class Triage:
    scope: Scope
    message: str  # the reply to send ("" for COMPLAINT and CONSULTATION: the caller goes on)
    hotline: str | None = None


_EMERGENCIES: list[tuple[str, str, str]] = [
    (r"火灾|着火|失火|起火|冒烟|燃气泄漏|煤气泄漏|爆炸", "119", "火警请立即拨打119，并尽快撤离到安全地带。"),
    (
        r"受伤|流血|出血|晕倒|昏迷|昏倒|抽搐|心脏病|呼吸困难|急救|救护车|中毒|不省人事",
        "120",
        "有人需要急救请立即拨打120。",
    ),
    (r"车祸|交通事故|撞车|追尾", "122", "交通事故请立即拨打122（有人受伤同时拨打120）。"),
    (
        r"报警|打人|被打|殴打|斗殴|抢劫|抢东西|持刀|拿刀|杀人|绑架|被偷|盗窃|偷了|威胁我|跟踪我|诈骗",
        "110",
        "遇到违法犯罪或人身危险请立即拨打110报警。",
    ),
]

_LEGAL: list[tuple[str, str]] = [
    (
        r"行政复议|申请复议|复议",
        "对行政机关作出的具体行政行为不服，可以依法向复议机关申请行政复议（一般在知道之日起60日内）。"
        "行政复议不通过本投诉渠道办理。",
    ),
    (
        r"起诉|诉讼|打官司|法院|判决|裁定|上诉|仲裁",
        "该事项属于诉讼或仲裁程序，请依法向人民法院或仲裁机构提出，本投诉渠道不能受理。"
        "需要法律帮助可拨打12348法律服务热线。",
    ),
    (
        r"信访|上访|信访局",
        "已进入或需走信访程序的事项，请向县信访局反映（可登录国家信访局网上信访平台），本投诉渠道不能重复受理。",
    ),
    (r"纪检|监察委|纪委|违纪举报", "反映公职人员违纪违法问题，请向县纪委监委举报（可拨打12388）。"),
]

_NOT_OURS: list[tuple[str, str]] = [
    (
        r"商品质量|假货|退货|退款|商家|网购|快递|消费纠纷|虚假宣传|食品安全|过期食品",
        "消费纠纷和食品安全问题请拨打12315（市场监管投诉举报热线）或登录全国12315平台。",
    ),
    (
        r"拖欠工资|欠薪|工资不发|不给工资|劳动合同|社保断缴",
        "劳动报酬和劳动合同问题请拨打12333，或向县人社局劳动保障监察大队反映。",
    ),
    (
        r"物业|邻居|噪音|扰民|路灯|井盖|垃圾|停水|停电|道路坑洼|违章建筑|违建|占道",
        "城市管理和生活服务问题请拨打12345政务服务便民热线反映。",
    ),
    (r"环境污染|排污|偷排|废气|污水", "环境污染问题请拨打12345或12369环保举报热线。"),
]

_COMPLAINT_MARKERS = re.compile(
    r"投诉|举报|态度|不耐烦|刁难|推诿|踢皮球|推来推去|踢来踢去|扯皮|拖延|不作为|乱收费|多收费|吃拿卡要|收红包|索要|好处费|插队|"
    r"不满|差劲|太差|很差|骂|凶|不理人|玩手机|脱岗|不在岗|让我跑|跑了好几趟|多次跑|建议|意见|求助|"
    r"没人接(?!送)|打不通|不接电话|没人理|没人管|凭什么|这算什么|不给我办|很冲"
)
#: Words that tie a message to the center's own service (then it is never "not ours").
_ABOUT_THE_CENTER = re.compile(
    r"窗口|工作人员|大厅|服务中心|办事员|办事|审批|办证|叫号|排队|取号|咨询电话|你们(的)?电话"
)
_QUESTION_MARKERS = re.compile(
    r"怎么办|怎么|如何|需要什么|要什么材料|哪些材料|在哪|哪里|几点|什么时候|多久|多少钱|收费吗|能不能|可以吗|要不要|需不需要|"
    r"吗[？?]?$|[？?]$"
)


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def has_complaint_words(text: str) -> bool:
    """Words of a complaint, report, suggestion or plea (投诉, 态度, 乱收费, 建议, 求助 …)."""
    return bool(_COMPLAINT_MARKERS.search(_norm(text)))


def about_the_center(text: str) -> bool:
    """The message is about the center's own service (its windows, staff, queue, hall)."""
    return bool(_ABOUT_THE_CENTER.search(_norm(text)))


def triage(text: str) -> Triage:
    """Classify ``text``; the first matching rule wins, emergencies first."""
    t = _norm(text)
    for pattern, hotline, message in _EMERGENCIES:
        if re.search(pattern, t):
            return Triage(Scope.EMERGENCY, f"情况紧急！{message}本平台无法处理紧急求助。", hotline)
    for pattern, message in _LEGAL:
        if re.search(pattern, t):
            return Triage(Scope.LEGAL_CHANNEL, message)
    if not _ABOUT_THE_CENTER.search(t):
        for pattern, message in _NOT_OURS:
            if re.search(pattern, t):
                return Triage(Scope.NOT_OURS, f"该事项不属于政务服务中心的受理范围。{message}")
    if not _COMPLAINT_MARKERS.search(t) and _QUESTION_MARKERS.search(t):
        return Triage(Scope.CONSULTATION, "")
    return Triage(Scope.COMPLAINT, "")
