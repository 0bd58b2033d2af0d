"""Which aspect of a service a question asks about (materials, fee, time limit, …).

Detection runs on normalised text (Simplified, no punctuation) and ignores cues that are part of the
catalogue's own terms, so that 教师资格证 does not look like a question about 资格 (conditions) and
互联网上网服务 does not look like 网上 (online).  All cue matches are collected, overlapping ones are
resolved longest-first, and the aspects are returned in question order; weak cues (手续, 窗口, 费用,
能办吗 …) count only when there is no specific one.  The first aspect is the primary one.
"""

from __future__ import annotations

import re
from typing import Final

MATERIALS: Final = "materials"
FEE: Final = "fee"
TIME_LIMIT: Final = "time_limit"
LOCATION: Final = "location"
OFFICE_HOURS: Final = "office_hours"
ONLINE: Final = "online"
CONDITIONS: Final = "conditions"
PROCESS: Final = "process"
LEGAL_BASIS: Final = "legal_basis"
PHONE: Final = "phone"

ASPECTS: tuple[str, ...] = (
    MATERIALS,
    FEE,
    TIME_LIMIT,
    LOCATION,
    OFFICE_HOURS,
    ONLINE,
    CONDITIONS,
    PROCESS,
    LEGAL_BASIS,
    PHONE,
)

ASPECT_LABELS: dict[str, str] = {
    MATERIALS: "申请材料",
    FEE: "收费标准",
    TIME_LIMIT: "办理时限",
    LOCATION: "办理地点",
    OFFICE_HOURS: "办公时间",
    ONLINE: "网上办理",
    CONDITIONS: "受理条件",
    PROCESS: "办理流程",
    LEGAL_BASIS: "设定依据",
    PHONE: "咨询电话",
}

_VERBS = (
    "办理|办|弄|整|搞|申请|申领|领取|领|交|缴|补办|补|开具|开|注销|变更|提取|取|参保|备案|审批|考|换|上|报|迁"
    "|查|操作|处理|做|登记|注册|认定|挂失|延续|申报|过户|解押|去"
)

_CUES: dict[str, tuple[str, ...]] = {
    MATERIALS: (
        r"材料",
        r"资料",
        r"证件",
        r"原件",
        r"复印件",
        r"照片",
        r"带(?:上|着)?(?:什么|啥|哪些|些什么|些啥|什么东西)",
        r"(?:要|需要)带",
        r"拿(?:什么|啥|哪些)",
        r"准备(?:什么|啥|哪些|些什么|好什么)",
        r"(?:提交|提供|出示)(?:什么|啥|哪些)",
        r"(?:需要|要|须|得)(?:什么|啥|哪些)(?!条件|要求|资格|时候|手续|费|钱|证$)",
        r"一次性告知",
        r"(?:要|需要|得)交(?:啥|什么|哪些)(?!费|钱|税|款)",  # 续期需要交啥 (papers, not money)
        # "要交健康证吗", "需要租房合同吗": whether a paper is needed
        # (the paper itself stays a word of the question: 租房合同 names 租房提取)
        r"(?:需要|要|得)(?:交|带|提供|准备|出示)"
        r"(?=[\u4e00-\u9fff]{0,6}?(?:合同|证明|证|照片|复印件|原件|户口本|户口簿)(?:吗|不|么)$)",
        r"需要(?=[\u4e00-\u9fff]{0,4}?(?:合同|证明|照片|复印件|原件)(?:吗|不|么)$)",
        r"(?:不用|不需要|用不用|需不需要)带",  # 听说现在不用带户口本了
    ),
    FEE: (
        r"多少钱",
        r"几块钱?",
        r"几多钱",
        r"好多钱",  # Southwestern Mandarin: how much
        r"几毛",
        r"收费",
        r"收不收",
        r"费用",
        r"(?:要|花|交|给|付|掏)钱",
        r"(?<!减)免费",  # (not 减免费用)
        r"工本费",
        r"价格",
        r"价钱",
        r"贵不贵",
        r"贵吗",
        r"(?<![领退拿返补赔])钱吗",
        r"要不要钱",
        r"(?:交|付|花|缴|收)多少",
        r"多少费",
        r"费多少",
        r"(?:什么|哪些|啥)费",
        r"(?:什么|哪些|啥)税",
        r"税费",
        r"费吗",
        r"收钱",
        r"不要钱",
        r"(?:多少|几个)点(?:利息)?",
        r"税(?:是|要)?多少",  # 契税多少
        r"(?:税|费)(?:怎么|咋|如何)算",
        r"(?:交|收|付)(?:啥|什么|哪些)(?:钱|费)",
        # "年报要交300块代办费 是真的吗": an amount asked about (not "收了我50块": money taken, a complaint)
        r"(?<!收了我)(?<!收我)(?<!要了我)(?<!\d)\d+(?:块|元)",
        r"(?:交|要|收|花)几多",  # Gan / Hakka: how much
        r"利息",
        r"利率",
        r"罚款",
        r"罚钱",
        r"滞纳金",
        r"收(?=[\u4e00-\u9fff]{0,3}费)",  # 收开户费不 (开户 stays a word of the question)
        r"(?<=[\u4e00-\u9fff])费(?:吗|不|么|呢)",  # 年检费吗
        r"钱(?:要|得)?(?:自己|个人)(?:出|掏|付)|(?:自己|个人)(?:出钱|掏钱)",  # 评定的钱要自己出吗
        r"全免|减半|免税",
        r"(?:税|费)(?:还|也)?(?:要|用|需要|得)(?:交|缴)(?:吗|不|么|嘛)",  # 购置税还要交吗
    ),
    TIME_LIMIT: (
        r"多久",
        r"多长时间",
        r"多少时间",
        r"(?<![前这])几天",  # not 前几天 (a few days ago)
        r"多少天",
        r"几个工作日",
        r"多少个工作日",
        r"几个月",
        r"多快",
        r"时限",
        r"办结",
        r"当天",
        r"当场",
        r"立等",
        r"马上(?:能|可以)",
        r"要等",
        r"等多久",
        r"期限",
        r"周期",
        r"什么时候(?:能|可以|会)?(?:拿|领|到|好|办好|出|下来|批|到账|通|装|回复|审结)",
        r"到账",
        r"多长",
        r"时间长",
        r"快吗",
        r"慢吗",
        r"(?:要|得|等)好久",
        r"几耐",  # Cantonese: how long
        r"多就(?=$| )",  # a slip for 多久
        r"几号(?:开始|截止|结束|之前|以前|前|到)",  # a date, not a window number
        r"生效",
        r"(?<![公作业班门么])时间$",  # "二手房过户 时间"
    ),
    LOCATION: (
        # (not where something was lost: 不晓得放哪里去了, 丢在哪了)
        r"(?<![放丢掉搁塞])在哪(?!去了|了)",
        r"(?<!在)哪里(?!去了|了)",
        r"(?<!在)哪儿(?!去了|了)",
        r"(?:哪个|几号|什么)窗口",
        r"去哪",
        r"到哪",
        r"什么地方",
        r"啥地方",
        r"地点",
        r"(?<![换改新])(?<!登记)(?<!注册)(?<!住所)(?<!经营)地址(?![变改迁更换])",  # not a registered address
        r"窗口(?!工作人员|人员|服务)",
        r"几楼",
        r"哪个楼",
        r"哪层",
        r"几号",
        r"哪个部门",
        r"哪个单位",
        r"找谁",
        r"位置",
        r"(?<!这块)(?<!一块)(?<!流程)(?<!程序)(?<!手续)(?<!审批)怎么走",  # 审批这块怎么走: the steps
        r"大厅",
        r"边度",  # Cantonese: where
        r"喺边",
        r"(?:在|去|回|到)(?:乡里|乡镇|乡下|镇上|镇里|村里|县里|县城|市里|银行"
        r"|[\u4e00-\u9fff]{0,4}?(?:政府|村委会|居委会|社区|街道|派出所|医院|服务中心))[\u4e00-\u9fff]{0,7}?"
        r"(?:办|申请|申领|交|缴|领|登记)(?=[\u4e00-\u9fff]{0,6}?(?:吗|不|(?<![什那怎])么|呢)|$| )",
        r"(?:必须|一定|要|得)(?:到|去)(?:县里|县城|市里|镇上|乡里|乡镇)",
        r"是(?:去|到)[\u4e00-\u9fff]{1,8}?(?:办)?(?:吗|么|不|嘛)$",  # 宅基地审批是去县里服务中心吗
        r"(?:回|在)[\u4e00-\u9fff]{1,4}?办还是(?:在|去|回)",  # 是要回信丰办还是在那边办
    ),
    OFFICE_HOURS: (
        r"几点",
        # asked of the center ("周六上班吗", "几点下班"), not where one works ("在县城上班")
        r"上班(?:吗|不|没|么|嘛|时间|了没|呢)|(?:几点|什么时候|啥时候|何时)(?:上班|下班)",
        r"下班(?:吗|前|时间|了没)",
        r"办公时间",
        r"工作时间",
        r"营业时间",
        r"周末",
        r"周六",
        r"周日",
        r"星期六",
        r"星期天",
        r"星期日",
        r"礼拜[一二三四五六日天]|(?<![个两几])礼拜",  # "过期一个礼拜了" is a span of time
        r"节假日",
        r"假期",
        r"中午",
        r"午休",
        r"晚上",
        r"双休",
        r"(?<![才就]能)开门",  # "还要办啥证才能开门" is the shop's opening
        # a clock time one means to come by: 下午五点半以后还能去吗, 十二点前到得了吗
        r"[一二两三四五六七八九十\d]{1,3}点(?:半|钟|\d{1,2}分?)?(?:以后|之后|以前|之前|前|后)",
        r"(?:上午|下午|中午|早上|晚上)[一二两三四五六七八九十\d]{1,3}点",  # 下午两点去…有没有人
        r"有没有人(?:在|上班)?(?=$| )",
    ),
    ONLINE: (
        r"网上",
        r"线上",
        r"网办",
        r"在线",
        r"手机上",
        r"手机里",
        r"手机(?:办|能|可以|申请)",
        r"用手机",
        r"app",
        r"小程序",
        r"赣服通",
        r"不用跑",
        r"不跑",
        r"微信上",
        r"电脑上",
        r"网站",
        r"政务服务网",
        r"掌上",
        r"邮寄",
        r"寄过来",
        r"寄到家",
        r"远程",
        r"(?:不用|不想|不必|免得|省得|少)再?跑一趟",
        r"(?:不用|不想|少|免)跑腿",
        r"(?:哪个|什么|啥)(?:系统|平台|网站|app|小程序)",  # 在哪个系统上报
    ),
    CONDITIONS: (
        r"条件",
        r"资格",
        r"要求",
        r"符合",
        r"谁(?:可以|能)",
        r"哪些人",
        r"什么人",
        r"外地(?:人|户口|户籍)(?:能|可以)",
        # (what follows the verb stays a word of the question: 能在信丰办护照吗 asks about 护照)
        r"(?:能|可以|可不可以|能不能|能否)(?:去|来|一起|一块|直接|回[\u4e00-\u9fff]{0,2}?"
        r"|在(?!手机|网|线上|赣服通|微信|电脑|app|小程序|掌上|乡|镇|县里|县城|村|市里|银行)[\u4e00-\u9fff]{1,4}?)?"
        r"(?:办|申请|申领|领|参保|登记|补|换|迁|开|落户|享受|提|取|退休|过户|报销|减免)"
        # (the question may go on after it: "租房能提公积金吗 交了半年")
        r"(?=[\u4e00-\u9fff]{0,6}?(?:吗|不|么)(?:$| ))",
        r"还(?:能|可以)(?=[\u4e00-\u9fff]{0,8}?(?:吗|么|不)(?:$| ))",  # 还能注销不: 注销 stays a word
        r"(?<= )(?:可不可以|可以吗|行不行|行吗|可以不|得不得)$",  # 用他的名字登记个小卖部 可不可以
        r"才(?:能|可以)",
        # "卖种子要办许可证吗", "开培训班要审批吗": whether one needs it at all is who must apply
        r"(?:要|需要|得|还要|也要)(?:去)?(?:办|审批|备案|申请|登记|许可|办证)"
        r"[\u4e00-\u9fff]{0,8}?(?:吗|(?<![什怎那])么|不)(?:$| )",
        r"(?:要不要|需不需要|用不用)(?:去)?(?:办|审批|备案|申请|登记)",
        r"(?:多少|几)岁",
        r"(?:能|可以)贷",
        r"要本人",
        r"可唔可以",  # Cantonese: may one
        r"得唔得",
        r"(?:一定|必须|非得|是否)要?本人",
        r"(?:能|可以)不能办",
        r"(?:办|弄|搞)得(?:成|了)(?:吗|不|么)|能办成",  # 原法人不配合签字，变更还办得成吗
        r"能不能(?:办|申请|领|参保|登记)",
        r"够不够",
        r"年龄",
        r"满足",
        r"考试",
        r"门槛",
        r"(?:要|得|需要)多大|多大(?:面积|的店|的房|的地方)|面积",  # 店面要多大
        r"(?:最少|至少|最低)(?:要|得|需要)?(?:几|多少)(?:个人|个成员|人|名|平|平方|年|岁)",  # 最少要几个人
        # when one may or must apply, not how long it takes: 提前多久申请, 缴存多久才能贷, 买车后多少天内申报
        r"提前(?:多久|几天|多少天|多长时间|几个月)",
        r"什么时候(?:可以|能|才能)(?:申请|报名)",
        r"(?:能|可以)以[\u4e00-\u9fff]{1,8}?(?:身份|名义)",  # 能以灵活就业身份交社保吗
        r"(?:以下|以上|以内)的?(?:也|还)?(?:要|用|需要)(?:吗|不|么)",  # 30万以下的要吗
        r"(?:缴存|缴费|缴|交|参保|工作|满|住|干)了?(?:多久|多长时间|几年|几个月)才(?:能|可以)",
        r"(?:后|起)(?:多少天|几天|多久|几个月)(?:内|以内|之内)",
        r"(?:两个人|双方|夫妻|两口子)[\u4e00-\u9fff]{0,3}?(?:都|一起|一块)(?:要|得)?(?:去|来|到场)",
        r"(?:要|得|需要|必须)(?:一起|都)(?:去|来|到场)",
        r"限制",
        r"才(?:交|缴|缴存|参保|工作|干|住|满)了",  # 公积金才交了两个月 能租房提取吗
        r"(?:能|可以)(?:挂|用|以)[\u4e00-\u9fff]{1,4}?(?:名字|名义|身份)",  # 小店能挂他名字办个体户吗
    ),
    PROCESS: (
        rf"(?:怎么|怎样|如何|咋|怎么样)(?:才能|去|来)?(?=(?:{_VERBS}))",
        rf"(?:咋个|怎个)(?=(?:{_VERBS}))",
        r"先[\u4e00-\u9fff]{1,8}?再",
        r"先[\u4e00-\u9fff]{1,3}?后",  # 先干啥后干啥
        r"登报|遗失声明",  # a step of replacing a lost paper
        r"咋整",
        r"啷个",
        r"咋办",
        r"咋弄",
        r"咋搞",
        r"流程",
        r"(?:怎么|如何)(?=[\u4e00-\u9fff])(?!样|么|回事|收|算|联系|走|这么|那么|不)",
        r"步骤",
        r"程序",
        r"手续",
        r"办法",
        r"过程",
        r"顺序",
    ),
    LEGAL_BASIS: (
        r"依据",
        r"法律",
        r"法规",
        r"条例",
        r"根据什么",
        r"(?:哪个|什么|哪些)文件(?:规定|上|里)?",
        r"政策(?:依据|文件|规定|出处)|(?:依据|根据|按|按照)(?:什么|哪个|哪些|哪条)?政策|(?:哪个|哪条|什么)政策规定",
        r"规定",
        r"哪条",
    ),
    PHONE: (
        r"(?<![打接来])电话(?!说|讲|通知|叫|让)",  # not "有人打电话说…"
        r"打电话(?:咨询|问)",
        r"找谁咨询",
        r"联系方式",
        r"号码",
        r"热线",
        r"怎么联系",
        r"打哪个",
        r"联系谁",
    ),
}

_CUE_RES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (aspect, re.compile("|".join(sorted(patterns, key=len, reverse=True))))
    for aspect, patterns in _CUES.items()
)


def cue_spans(text: str, names: str = "") -> list[tuple[int, int, str]]:
    """All aspect cues in ``text`` as (start, end, aspect), ignoring cues that are part of a catalogue term.

    ``names`` is the catalogue's names, aliases and terms joined by "|": a cue whose neighbourhood (one or two
    characters either side) occurs there belongs to an item name (医疗费用, 教师资格, 互联网上网服务), not
    to the question.
    """
    found: list[tuple[int, int, str]] = []
    for aspect, regex in _CUE_RES:
        for m in regex.finditer(text):
            start, end = m.start(), m.end()
            if end <= start:
                continue
            if names and _inside_name(text, start, end, names):
                continue
            if _told_not_asked(aspect, text, start, end):
                continue
            found.append((start, end, aspect))
    return found


# What the citizen tells rather than asks: "不会用个税app" (online is what they cannot do), "在网上申报通过了"
# (done already), "税费交完以后…" (paid already).
_CANNOT_BEFORE = re.compile(r"不(?:会|懂|太会)(?:用|弄|玩|操作)?[\u4e00-\u9fff]{0,2}$")
_CANNOT_AFTER = re.compile(r"[\u4e00-\u9fff]{0,2}?不(?:会|懂|太会)(?:用|弄|玩|操作)")
_DONE_AFTER = re.compile(
    r"[\u4e00-\u9fff]{0,8}?(?:通过了|办好了|办了|申报了|交了|提交了|报了|填了|申请了|弄好了)(?!吗|没|么)"
)
_PAID_AFTER = re.compile(r"(?:都|已经)?(?:交完|缴完|交了|缴了|付了|付完|交清|结清)")


def _told_not_asked(aspect: str, text: str, start: int, end: int) -> bool:
    if aspect == ONLINE:
        cannot = _CANNOT_BEFORE.search(text, 0, start) or _CANNOT_AFTER.match(text, end)
        return bool(cannot or _DONE_AFTER.match(text, end))
    if aspect == FEE:
        return bool(_PAID_AFTER.match(text, end))
    return False


def _inside_name(text: str, start: int, end: int, names: str) -> bool:
    for left, right in ((2, 0), (1, 0), (0, 1), (0, 2), (1, 1)):
        s, e = start - left, end + right
        if s < 0 or e > len(text):
            continue
        if text[s:e] in names:
            return True
    return False


# Cues that only decide the aspect when nothing more specific is asked ("退休手续在哪里办" is about the place,
# "窗口几点上班" about office hours, "住院费用多久到账" about time).
_WEAK = re.compile(
    r"^(?:手续|办法|过程|窗口|费用|大厅|要求|规定|政策|怎么|如何|还?(?:能|可以|可不可以|能不能|能否).*)$"
)


# what may follow the question's focus
_TAIL = re.compile(r"^(?:[\u4e00-\u9fff]{1,2}的)?(?:什么|啥|哪些|些|东西|[吗呢啊呀吧么的了啦嘛哦])*$")
_ASKING = re.compile(r"什么|啥|哪|几|多少|多久|吗|么|怎|如何|呢|不")


def order_aspects(taken: list[tuple[int, int, str]], text: str) -> list[str]:
    """Aspects of non-overlapping cue spans in question order; weak cues count only when nothing specific
    is asked ("网上能办吗" is about online handling, not also about conditions).  A specific cue that ends
    the question is its focus and comes first when the other cues only name things ("快到退休年龄了，办退休
    要带什么" asks for the materials; "要带什么材料，多少钱" asks two questions, in that order)."""
    strong: list[str] = []
    weak: list[str] = []
    focus: str | None = None
    asking: dict[str, bool] = {}
    for start, end, aspect in sorted(taken):
        target = weak if _WEAK.match(text[start:end]) else strong
        if aspect not in target:
            target.append(aspect)
        if target is strong:
            asking[aspect] = asking.get(aspect, False) or bool(_ASKING.search(text[start : end + 2]))
            if _TAIL.match(text[end:]):
                focus = aspect
    if focus is not None and strong[0] != focus and not any(asking[a] for a in strong if a != focus):
        strong.remove(focus)
        strong.insert(0, focus)
    # "要备案吗 怎么弄": whether, then how — the steps answer both
    whether = any(a == CONDITIONS and _YES_OR_NO.search(text[s:e]) for s, e, a in taken)
    how = _HOW_AT_THE_END.search(text)
    if strong and strong[0] == CONDITIONS and ONLINE not in strong and whether and how:
        strong = [PROCESS, *[a for a in strong if a != PROCESS]]
    if (
        ONLINE in strong
        and strong[0] != ONLINE
        and any(aspect == ONLINE and _ONLINE_ASKED.match(text, end) for _start, end, aspect in taken)
    ):  # "企业年报在哪填 手机上可以弄吗": whether it can be done online is what the citizen would rather do
        strong.remove(ONLINE)
        strong.insert(0, ONLINE)
    return strong or weak


_YES_OR_NO = re.compile(r"(?:吗|(?<![什怎那])么|不)\s*$")
_HOW_AT_THE_END = re.compile(r"(?:怎么|咋|如何|怎样)(?:去)?(?:弄|办|搞|整|申请|办理|操作)(?:呢|啊|呀)?$")

# an online way asked about right after its cue: 网上能弄吗, 手机上可以办不, 手机上怎么弄
_ONLINE_ASKED = re.compile(
    r"[\u4e00-\u9fff]{0,3}?(?:能|可以|可不可以|能不能|行)[\u4e00-\u9fff]{0,3}?(?:吗|不|么|没)(?:$| |还是)"
    r"|[\u4e00-\u9fff]{0,2}?(?:怎么|咋|如何)(?:弄|办|搞|申请|操作|交)(?:$| )"
)


def detect_aspects(text: str, names: str = "") -> list[str]:
    """Aspects asked about in normalised ``text``, primary first (see :func:`cue_spans` for ``names``)."""
    matches = cue_spans(text, names)
    if not matches:
        return []
    # Longest cue wins where cues overlap.
    matches.sort(key=lambda m: (-(m[1] - m[0]), m[0]))
    taken: list[tuple[int, int, str]] = []
    for start, end, aspect in matches:
        if all(end <= s or start >= e for s, e, _ in taken):
            taken.append((start, end, aspect))
    return order_aspects(taken, text)


def detect_aspect(text: str, names: str = "") -> str | None:
    found = detect_aspects(text, names)
    return found[0] if found else None
