"""Which category (and kind) a complaint's free-text description belongs to.

Two signals, added up per category:

* a naive Bayes model over character uni- and bigrams, trained on the labelled descriptions in
  ``data/triage_train_*.tsv`` (about 800, written in many citizens' styles) when first used;
* weighted cues (``_CUES``): phrases that name a category outright, so a short "取号机坏了" is not
  left to statistics alone.

The category with the highest total wins; a description with no signal at all is 其他.  The kind
follows the category (违规收费 and 廉政纪律 are 举报, 意见建议 is 建议, 求助 is 求助, the rest 投诉)
unless the citizen names it: "我要举报…" files a report; "我投诉…" or "不是举报，就吐槽一下" about a
fee files a complaint.

``python -m eval.triage`` measures it: five-fold cross-validation on the training files, and
``eval/triage_holdout.tsv``, written later by someone who saw neither the cues nor the training data and
never trained on.  The model's settings (smoothing 0.1, uni- and bigrams, cue weight 2) were chosen by the
cross-validation.

Scope triage (emergencies, lawful channels, matters that are not the center's: ``triage.py``) runs before
this and is unchanged.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bot.domains.complaints.categories import BY_CODE
from bot.domains.complaints.states import Kind

_N = r"[\d一二两三四五六七八九十几百千]+"

# (category, weight, pattern): a pattern counts once however often it matches.
_CUES: tuple[tuple[str, int, str], ...] = (
    # 服务态度: how staff treat people
    (
        "attitude",
        3,
        r"态度|态渡|不耐烦|没耐心|不耐心|爱答不理|爱理不理|爱搭不理|不搭理|不理(我|人)|再也不理|理都不理",
    ),
    (
        "attitude",
        3,
        r"翻白眼|白眼|黑着脸|冷脸|臭脸|脸色|摆脸|甩脸|头都不抬|不抬头|眼皮都不抬|凶巴巴|官架子|摆架子",
    ),
    (
        "attitude",
        3,
        r"吼|凶我|被凶|骂|辱骂|训斥|呵斥|拍桌子|甩(出|给|在|回)|往外扔|扔(给|出|回)|摔|推搡|一推|怼",
    ),
    (
        "attitude",
        3,
        r"挖苦|阴阳怪气|讽刺|嘲笑|笑话我|冷嘲热讽|瞧不起|看不起|嫌弃|嫌我|伤人|没礼貌|不礼貌|不尊重|难听|不客气",
    ),
    (
        "attitude",
        2,
        r"刁难|故意为难|为难人|挑骨头|找茬|说话(太|很|特别)?冲|语气|冷冰冰|冷漠|服务意识|大声|嗓门|不友好",
    ),
    (
        "attitude",
        2,
        r"打私人电话|(一边|边|在)打电话|玩手机|刷(手机|抖音|视频)|看(手机|视频)|聊天|边(吃|聊)|嗑瓜子|化妆",
    ),
    # 办事效率: delays, being sent around, coming back again and again
    (
        "efficiency",
        3,
        r"推诿|扯皮|皮球|踢来踢去|互相推|推来推去|推给|不归(他们|我们|这里)管|归谁管|(这个|那个)(科|部门|窗口)让我(找|去)",
    ),
    (
        "efficiency",
        3,
        r"跑(了)?"
        + _N
        + r"(趟|次)|"
        + _N
        + r"次了还|多跑|白跑|来回跑|跑冤枉路|跑了好几|转了一圈|来回(折腾|跑)|折腾",
    ),
    (
        "efficiency",
        3,
        r"一次性告知|一次说清|每次(都)?说缺|又说缺|又说(格式|不对)|重来|没人通知|也没人(通知|告诉)|说法(都)?不一样|要求(都)?不一样|换个(人|工作人员)就",
    ),
    (
        "efficiency",
        3,
        r"拖延|拖拉|拖沓|磨蹭|慢吞吞|拖了|拖着|超期|超时|超过(承诺)?时限|承诺(时限|的?时间)|还没(下来|办好|办完|拿到|批下来|好|消息|出证|备上|办下来|结果)",
    ),
    (
        "efficiency",
        2,
        r"等了"
        + _N
        + r"(天|个月|周|星期|个小时|小时)|"
        + _N
        + r"个?(多)?(月|星期|礼拜)了|半个月|都快"
        + _N
        + r"(天|个月)|一直(显示)?(“)?(审核中|在走流程)|走流程|效率",
    ),
    (
        "efficiency",
        2,
        r"(社区|街道|派出所|住建|自然资源|税务|不动产)说(归|让|是|要)|让我去(找|医保|社保|税务)|盖章|部门之间|沟通好|(弄|搞)丢了|重新交|明天再来|下次再来|改天再来",
    ),
    (
        "efficiency",
        2,
        r"又说要|还要(回去|再来)|回去(开|补|等)|白请(了)?(一天)?假|没(人)?给(个)?准话|让(我)?回去等|说好.{0,12}(工作日|天|当天|办结)",
    ),
    # 违规收费: money asked where none (or less) is due
    (
        "fees",
        3,
        r"乱收费|多收|收费|收(了)?(我)?"
        + _N
        + r"(块|元)?|要(了)?(我)?交?"
        + _N
        + r"(块|元)|加急费|服务费|审核费|材料费|手续费|工本费|押金",
    ),
    (
        "fees",
        3,
        r"中介|代办费|评估公司|指定(的)?.{0,6}(店|公司|机构|医院)|照相馆|刻章店|收款码|不是(说)?免费|应该免费|(全程|本来)?免费(的|发)?(吗|却|还|但|结果)|公示|发票",
    ),
    ("fees", 2, r"费用|交钱|掏钱|要钱|收钱|块钱|元钱|一张(表)?(要|收)|(要|收)了?(我)?(二|两|三|五|十|几)十"),
    # 廉政纪律: bribes, absence, favours
    (
        "integrity",
        4,
        r"好处|红包|信封|送礼|塞(钱|了|给)|给钱|回扣|吃拿卡要|私下(找|给|联系)|收礼|请(他|她)?吃饭|表示一下|意思意思|(两|一)条烟|购物卡|烟酒|潜规则|茶楼",
    ),
    (
        "integrity",
        3,
        r"走后门|后门|找关系|关系户|托关系|插队|亲戚|熟人|朋友(来|直接)|不用(排队|预约|取号)|没取号|特殊照顾",
    ),
    (
        "integrity",
        3,
        r"脱岗|离岗|不在岗|窗口(一直|都|就|还)?(没人|空着|一个人都没有)|一个人都没有|不见人|没见人|人不知道去哪|都去哪了|人呢|溜出去|马上回来|迟到|早退|提前下班",
    ),
    (
        "integrity",
        3,
        r"暂停服务|打牌|打游戏|玩游戏|睡觉|兼职|接(中介|私)活|跑件|代办.{0,8}(收钱|赚钱)|下班后.{0,10}(收钱|帮人|办)",
    ),
    # 大厅环境与设施: machines, systems, the building
    (
        "facility",
        3,
        r"叫号|取号|号机|排号|过号|号(半小时|一早|很快|早就)?(就)?发完|排不上|号源|放号|自助(机|终端|设备|一体机)|设备|打印机|机器|吞卡|评价器",
    ),
    (
        "facility",
        3,
        r"系统(又|一直|老是)?(崩|坏|故障|维护|卡|瘫痪|出错|升级)|崩了|服务器|登不上|打不开|闪退|网上办事大厅|网站|小程序.{0,6}(打不开|进不去|报错)",
    ),
    (
        "facility",
        3,
        r"wifi|WIFI|信号|厕所|卫生间|饮水机|热水|空调|座位|椅子|停车|车位|电梯|消防通道|无障碍|坡道|秩序|吵|闷热|太冷|漏水",
    ),
    (
        "facility",
        2,
        r"指示牌|标识|找不到(窗口|地方)|排(了)?(很久|好久|长队|半天)|排队|窗口(就|只)?开(了)?(两|几|一|"
        + _N
        + r")个",
    ),
    # 意见建议: ideas for doing better
    ("suggestion", 3, r"建议|提(个|点|一点)(意见|想法)|^(我)?希望|要是.{0,24}就好了|可以(考虑|搞|试试|学学)"),
    (
        "suggestion",
        4,
        r"(能不能|能否|可不可以|可否|是否可以|有没有可能|最好|希望|建议)[^。！？!?]{0,24}?"
        r"(增加|增设|开通|多开|加开|设(个|置|立)|改成|延长|也上班|中午|夜间|晚上|周末|做大|多放|公布|显示|培训|"
        r"出一本|母婴室|弄个|安排|提供|上线|推出|优化|邮寄|寄到|放到网上|网上办|分时段|预约|推送|提醒|放显眼|乡镇)",
    ),
    ("suggestion", 2, r"可以(做|再|多|加|增|设|放)|再加(个|一)|加个|多(设|放|开)(几|一)"),
    ("suggestion", 1, r"挺好|不错|辛苦了|点赞"),
    # 求助: the citizen's own difficulty
    ("help", 4, r"求助|求求|帮帮(我|忙)|谁能(教|帮)|教教我|求指点|救救|有没有人能|远程指导"),
    (
        "help",
        3,
        r"(我是|我)(盲人|聋哑|残疾|腿脚不便|行动不便|坐轮椅|外地人)|瘫痪在床|卧床|来不了|上门(办|帮)|不识字",
    ),
    (
        "help",
        3,
        r"不会用|不会弄|不太会|不懂|不知道(找谁|怎么|在哪|去哪)|怎么弄啊|急需|急着|加急|尽快(给)?办|临时(身份)?证明",
    ),
    (
        "help",
        2,
        r"(证|护照|身份证|户口本|社保卡).{0,4}(丢了|找不到了|被偷)|困难|手术|老伴|去世|轮椅|帮我查|(能不能|可不可以|能否)[^。！？!?]{0,12}?(帮|上门|加急|电话里办|办个)",
    ),
    # 不是大厅的事
    ("other", 4, r"快递|网购|商家|邻居|公交|物业|外卖|淘宝|装修|小区|房东|电饭煲|退货"),
)
_COMPILED = tuple((category, weight, re.compile(pattern)) for category, weight, pattern in _CUES)
_PRIORITY = ("integrity", "fees", "attitude", "efficiency", "help", "suggestion", "facility", "other")
_REPORT = re.compile(r"举报|检举|揭发")
_NOT_A_REPORT = re.compile(r"不是(要)?举报|吐槽")
_COMPLAINT = re.compile(r"我(要)?投诉|投诉一下")

DATA = Path(__file__).resolve().parent / "data"
SMOOTHING = 0.1
CUE_WEIGHT = 2.0


@dataclass(frozen=True)
class Labelled:
    description: str
    category: str
    kind: str


def load_labelled(path: Path) -> list[Labelled]:
    """``description<TAB>category<TAB>kind`` rows after a header line (further columns are ignored)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    return [Labelled(r[0], r[1], r[2]) for r in rows]


def training_data() -> list[Labelled]:
    return [row for path in sorted(DATA.glob("triage_train_*.tsv")) for row in load_labelled(path)]


def _grams(text: str) -> set[str]:
    text = re.sub(r"\d+", "0", unicodedata.normalize("NFKC", text))
    grams = (text[i : i + n] for n in (1, 2) for i in range(len(text) - n + 1))
    return {g for g in grams if any(ch.isalnum() for ch in g)}  # punctuation alone says nothing


class NaiveBayes:
    """Multinomial naive Bayes over the set of character uni- and bigrams of a description."""

    def __init__(self, rows: Iterable[Labelled], smoothing: float = SMOOTHING) -> None:
        self.smoothing = smoothing
        self.counts: dict[str, Counter[str]] = {}
        self.docs: Counter[str] = Counter()
        vocabulary: set[str] = set()
        for row in rows:
            grams = _grams(row.description)
            self.docs[row.category] += 1
            self.counts.setdefault(row.category, Counter()).update(grams)
            vocabulary |= grams
        self.vocabulary = frozenset(vocabulary)
        self.totals = {c: sum(counts.values()) for c, counts in self.counts.items()}

    def log_scores(self, text: str) -> dict[str, float]:
        grams = _grams(text) & self.vocabulary
        n, v, a = sum(self.docs.values()), len(self.vocabulary), self.smoothing
        return {
            c: math.log(self.docs[c] / n)
            + sum(math.log((self.counts[c][g] + a) / (self.totals[c] + a * v)) for g in grams)
            for c in self.docs
        }


@cache
def _model() -> NaiveBayes:
    return NaiveBayes(training_data())


@dataclass(frozen=True)
class Classification:
    category: str
    kind: Kind
    scores: dict[str, int]  # the cues' weights per category (for explanations and tests)


def cue_scores(text: str) -> dict[str, int]:
    scores: dict[str, int] = {}
    for category, weight, pattern in _COMPILED:
        if pattern.search(text):
            scores[category] = scores.get(category, 0) + weight
    return scores


def cue_strength(text: str) -> int:
    """The score of the category the text's cue words point to most (0: none)."""
    return max(cue_scores(text).values(), default=0)


def classify(description: str, model: NaiveBayes | None = None) -> Classification:
    """The category and kind of ``description`` (其他/投诉 when nothing fits)."""
    text = unicodedata.normalize("NFKC", description)
    cues = cue_scores(text)
    model = model or _model()
    if not cues and not (_grams(text) & model.vocabulary):
        category = "other"
    else:
        totals = {c: s + CUE_WEIGHT * cues.get(c, 0) for c, s in model.log_scores(text).items()}
        best = max(totals.values())
        category = next(c for c in (*_PRIORITY, *totals) if totals.get(c) == best)
    return Classification(category, kind_of(text, category), cues)


def kind_of(text: str, category: str) -> Kind:
    """The category's kind, unless the citizen's own words name another."""
    kind = BY_CODE[category].kind
    if _REPORT.search(text) and not _NOT_A_REPORT.search(text) and category not in ("suggestion", "help"):
        return Kind.REPORT
    if kind is Kind.REPORT and (_COMPLAINT.search(text) or _NOT_A_REPORT.search(text)):
        return Kind.COMPLAINT
    return kind


def cross_validate(rows: Sequence[Labelled], folds: int = 5) -> tuple[float, float]:
    """Category and kind accuracy of models trained on all but one fold, over every fold."""
    category_ok = kind_ok = 0
    for fold in range(folds):
        model = NaiveBayes(r for i, r in enumerate(rows) if i % folds != fold)
        for row in rows[fold::folds]:
            got = classify(row.description, model)
            category_ok += got.category == row.category
            kind_ok += got.kind.value == row.kind
    return category_ok / max(1, len(rows)), kind_ok / max(1, len(rows))
