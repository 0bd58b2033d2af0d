"""Search: normalisation, synonyms, typos, aspects, decisions (no database: index built from the sample)."""

from __future__ import annotations

import pytest

from knowledge_base.aspects import detect_aspects
from knowledge_base.features import home_place, name_variants
from knowledge_base.importer import read_aliases, read_catalogue
from knowledge_base.search import SearchIndex
from knowledge_base.textproc import another_place_owns, normalize_text
from tests.support.kb import SAMPLE_ALIASES, SAMPLE_CATALOGUE


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex(
        read_catalogue(SAMPLE_CATALOGUE).items, read_aliases(SAMPLE_ALIASES).aliases, version=7
    )


def test_normalisation() -> None:
    assert normalize_text("辦理護照，要多少錢？？") == "办理护照 要多少钱"
    assert normalize_text("ＫＴＶ　１２３号!!") == "ktv 123号"
    assert normalize_text("户口本丢了😭") == "户口簿丢了"
    assert normalize_text("身分證") == "身份证"


def test_name_variants() -> None:
    assert name_variants("出生登记（新生儿落户）") == ["出生登记", "新生儿落户"]
    assert "网吧" in name_variants("互联网上网服务营业场所经营单位设立审批（网吧）")
    assert "变更" not in name_variants("食品经营许可延续、变更")
    assert "营业执照换发" in name_variants("营业执照遗失补领/换发")


@pytest.mark.parametrize(
    ("question", "code"),
    [
        ("身份证丢了咋整", "36072200-QR-035"),  # alias + colloquial
        ("身份证掉了怎么补", "36072200-QR-035"),  # synonym 掉了 → 补领
        ("户口本不见了", "36072200-GG-038"),  # rewrite 户口本 → 户口簿 + synonym
        ("社保卡補辦要帶什麼", "36072200-GG-066"),  # Traditional
        ("公基金租房提取", "36072200-GG-077"),  # homophone typo 基 → 积
        ("营业直照丢了", "36072200-XK-008"),  # homophone typo 直 → 执
        ("开个小饭馆要办什么证", "36072200-XK-009"),  # colloquial 饭馆 → 食品经营许可
        ("自由职业者怎么交社保", "36072200-GG-062"),  # synonym inside an unknown word
        ("新生儿落户", "36072200-QR-030"),  # bracketed name variant
        ("低保 材料", "36072200-JF-047"),  # SMS brevity
        ("领了执照去税务局报到在哪个窗口", "36072200-GG-016"),  # no false typo fix across 税务局
        ("办离婚要交钱不", "36072200-QR-045"),  # nor across 离婚 (办离 is not a typo of 办理)
        ("購屋提領公積金要帶什麼證件", "36072200-GG-076"),  # Taiwanese 购屋, 提领
        ("BB剛出世，報戶口要帶哪些證件", "36072200-QR-030"),  # Cantonese 出世
        ("周六上午能去办yyzz吗 个体的", "36072200-XK-001"),  # pinyin initials typed in a hurry
        ("bdc证丢了补一本多少钱", "36072200-QR-084"),
    ],
)
def test_top_hit(index: SearchIndex, question: str, code: str) -> None:
    result = index.search(question)
    assert result.hits[0].code == code, [(h.name, h.score) for h in result.hits[:3]]
    assert result.decision == "answer"


def test_ambiguous_gives_choices(index: SearchIndex) -> None:
    result = index.search("身份证")
    assert result.decision == "choices"
    assert {h.code for h in result.choices} == {
        "36072200-QR-033",
        "36072200-QR-034",
        "36072200-QR-035",
        "36072200-QR-036",
    }


@pytest.mark.parametrize("question", ["今天天气怎么样", "给我讲个笑话", "股票怎么买", "怎么申请专利", "你好"])
def test_out_of_scope_not_found(index: SearchIndex, question: str) -> None:
    assert index.search(question).decision == "not_found"


def test_action_words_alone_are_not_enough(index: SearchIndex) -> None:
    result = index.search("丢了怎么办")
    assert result.decision == "not_found" and not result.subject_matched


@pytest.mark.parametrize(
    ("question", "aspects"),
    [
        ("办身份证要带什么材料，多少钱", ["materials", "fee"]),
        ("护照要多久能拿到", ["time_limit"]),
        ("结婚登记在几楼", ["location"]),
        ("周六上班吗", ["office_hours"]),
        ("能不能在手机上办", ["online"]),
        ("低保申请条件", ["conditions"]),
        ("户口迁入的办理流程", ["process"]),
        ("身份证丢了咋整", ["process"]),
        ("依据哪个法规", ["legal_basis"]),
        ("咨询电话多少", ["phone"]),
        ("退休手续在哪里办", ["location"]),  # 手续 is a weak cue
        ("网上能办吗", ["online"]),  # so is 能办吗
        ("外地人能办吗", ["conditions"]),
        ("营业执照", []),
        # dialect and everyday phrasings (tuned on eval/chat_questions.tsv's dev half)
        ("搞个证要好久咯", ["time_limit"]),
        ("驾照丢了咋个补", ["process"]),
        ("要先交钱再报销吗", ["process"]),  # the order of steps, not the amount
        ("退休了能领钱吗", ["conditions"]),  # 领钱 is not a fee
        ("过期两个月了还能续吗", ["conditions"]),
        ("只有年满十六岁才能办吗", ["conditions"]),
        ("一定要本人去吗", ["conditions"]),
        ("租房能提公积金吗", ["conditions"]),
        # whether one needs it at all; the age; "can I borrow"
        ("开个烧烤摊要办证吗", ["conditions"]),
        ("搞个培训班需不需要审批", ["conditions"]),
        ("新农合交满几年多少岁能领钱", ["conditions"]),
        ("公积金断缴了还能贷款吗", ["conditions"]),
        ("几多钱", ["fee"]),
        # the cue that ends the question is its focus when the others only name things
        ("房产资料查询要钱吗", ["fee", "materials"]),
        ("到了退休年龄，办手续要带什么", ["materials", "conditions"]),
        ("要带什么材料，要多少钱", ["materials", "fee"]),
        ("周六上午还能办吗", ["office_hours"]),
        # Cantonese and Southwestern words, papers asked for, fines and named fees, an SMS fragment
        ("補領結婚證要幾耐", ["time_limit"]),
        ("低保申請喺邊度辦", ["location"]),
        ("細路仔可唔可以辦社保卡", ["conditions"]),
        ("租房提取公积金需要租房合同吗", ["materials"]),
        ("做豆腐的人要交健康证吗", ["materials"]),
        ("现在去上户口要罚款不", ["fee"]),
        ("开天然气要收开户费不哦，要得好多钱", ["fee"]),
        ("二手房过户 时间", ["time_limit"]),
        ("养老保险在乡里办得成么", ["location"]),
        ("可以在信丰领结婚证吗", ["conditions"]),
        ("新生儿落户能在手机上办吗", ["online"]),
        # the question goes on after it; a span of weeks and a place of work are not office hours
        ("开小卖部能办执照吗 我是外地的", ["conditions"]),
        ("过期一个礼拜了还能补吗", ["conditions"]),
        ("在县城上班 能办居住证吗", ["conditions"]),
        ("店面要多大", ["conditions"]),
        ("最少要几个人", ["conditions"]),
        ("夫妻俩都要去吗", ["conditions"]),
        ("契税是多少", ["fee"]),
        ("每月要交几多", ["fee"]),
        ("有人打电话说要交钱", ["fee"]),  # a call someone made is not the phone asked for
        ("几号截止", ["time_limit"]),  # a date, not a window number
        ("补办要多就", ["time_limit"]),
        ("能在镇上申请吗", ["location"]),
        ("必须到县里去吗", ["location"]),
        ("找谁咨询", ["phone"]),
        ("先审批后发证吗", ["process"]),
        ("驾照换证要提前几天申请", ["conditions"]),  # when one may apply, not how long it takes
        ("社保交多久才能领", ["conditions"]),
        ("结婚后多少天内要登记", ["conditions"]),
        ("结婚证不晓得放哪里去了 咋补", ["process"]),  # where it was lost is not where to go
        # … but how long, how much, a weekday and a place to go stay what they were
        ("护照多久才能拿到", ["time_limit", "conditions"]),
        ("办营业执照最少要多少钱", ["fee"]),
        ("营业执照最少要几天能办好", ["time_limit"]),
        ("下个礼拜一能办吗", ["office_hours"]),
        ("能在县城办社保卡吗", ["location"]),
        ("身份证丢哪里补办", ["location"]),
        # papers to hand in, a tax reckoned, an amount asked about, when one may apply, a step
        ("换证需要交啥", ["materials"]),
        ("要准备些么子东西", ["materials"]),  # Gan: 么子 = 什么
        ("要交啥钱", ["fee"]),
        ("个税怎么算", ["fee"]),
        ("说要交200块手续费 是真的吗", ["fee"]),
        ("他们收了我50块钱", []),  # money taken is a complaint's words, not a fee question
        ("什么时候可以报名", ["conditions"]),
        ("能以个人名义申请吗", ["conditions"]),
        ("100平以下的也要吗", ["conditions"]),
        ("结婚证丢了要登报吗", ["process"]),
        # a clock time one means to come by; the shop's opening; whether it can be done at all
        ("下午五点半以后还能去16号窗口申请装电表吗", ["office_hours"]),
        ("还要办啥证才能开门", ["conditions"]),
        ("原法人不配合签字 变更还办得成吗", ["conditions"]),
        # a second question whether it can be done online is what the citizen would rather do
        ("企业年报在哪填 手机上可以弄吗", ["online", "location"]),
        ("去外地住院要备案吗 手机上怎么弄", ["online", "conditions"]),
        ("营业执照网上申请要带什么材料", ["materials", "online"]),
        # what is told, not asked: online that one cannot use or has done, a fee already paid, a past day
        ("家里老人不会用个税app 汇算清缴能到大厅让人帮忙弄吗 是哪个窗口", ["location"]),
        ("公司名字在网上自主申报通过了 多久不去办执照就作废了", ["time_limit"]),
        ("二手房过户 税费交完以后几天能拿到新证", ["time_limit"]),
        ("我们在外地打工 补结婚证 当天能拿到吗 不能的话还要再跑一趟", ["time_limit"]),
        ("家里老人前几天过世了 户口那块要怎么办", ["process"]),
        # where: a township's office, a system to file in; which paper says so; a registered address
        ("低保可以在镇政府申请吗", ["location"]),
        ("宅基地审批是去县里服务中心吗", ["location"]),
        ("托育机构备案是在哪个系统上报", ["online"]),
        ("补换社保卡收32块 是哪个文件规定的", ["legal_basis", "fee"]),
        ("可以用自己住的房子当公司登记地址吗", []),
        ("执业登记这块怎么走 麻烦说一下", []),
        ("在县城开个店要办什么", []),  # what to do: the overview (什么 is no yes-or-no 么)
        # whether: "…可不可以" at the end; papers one may leave at home; who pays; a tax relief
        ("我想用他的名字登记个小卖部 可不可以", ["conditions"]),
        ("身份证过期了能在信丰换吗", ["conditions"]),
        ("听人家讲现在不用带户口本了 是真的吗", ["materials"]),
        ("评残的钱要自己出吗", ["fee"]),
        ("购置税是全免还是减半", ["fee"]),
        ("政府有什么供养政策吗", []),  # what help there is: the overview, not the legal basis
        ("补社保卡收32块钱 是依据哪个文件收的", ["legal_basis", "fee"]),
        ("个税app我不会弄 可以去大厅找人帮忙弄吗 在哪个窗口", ["location"]),
        ("公积金才交了两个月 能租房提取吗", ["conditions"]),
        ("刚买了台新能源车 购置税还要交吗", ["fee"]),
        ("小店能挂他名字办个体户吗", ["conditions"]),
        ("户口想迁过去 是要回信丰办还是在那边办", ["location"]),
        ("我爸腿脚不好 有没有人能帮他跑腿代办事情", []),
        ("刚领了营业执照 税务这边要办些什么", []),
        ("下午两点去民政低保窗口有没有人 我从新田坐车过去", ["office_hours"]),
        # whether, then how: the steps answer both (not when it is the online way that is asked)
        ("想开家托育机构 要备案吗 怎么弄", ["process", "conditions"]),
        ("要什么条件 怎么办理", ["conditions"]),
        ("不做生意了 执照都找不到了 还能注销不", ["conditions"]),
        ("爷爷运回信丰火化 还能减免费用吗", ["conditions", "fee"]),  # 减免费用 holds no 免费
    ],
)
def test_aspects(question: str, aspects: list[str]) -> None:
    assert detect_aspects(normalize_text(question)) == aspects


def test_a_cue_does_not_swallow_the_words_after_it(index: SearchIndex) -> None:
    # "能在信丰办…吗" asks the conditions; 护照 is still what the question is about
    result = index.search("外地身份证能在信丰办护照吗")
    assert result.query.aspects == ["conditions"] and result.top is not None
    assert result.top.name == "普通护照申领"
    assert "合同" in index.search("租房提取公积金需要租房合同吗").query.content_tokens


def test_catalogue_terms_are_not_aspect_cues(index: SearchIndex) -> None:
    assert index.search("教师资格认定").query.aspects == []
    assert index.search("互联网上网服务营业场所").query.aspects == []
    assert index.search("医疗费用手工报销要哪些材料").query.aspects == ["materials"]


def test_hits_carry_aspect_and_department(index: SearchIndex) -> None:
    hit = index.search("護照多少錢").hits[0]
    assert (hit.code, hit.aspect, hit.department) == ("36072200-XK-041", "fee", "信丰县公安局出入境管理大队")
    assert 0 < hit.score <= 1.5


def test_empty_and_punctuation_only(index: SearchIndex) -> None:
    for q in ("", "？？？", "   "):
        result = index.search(q)
        assert result.decision == "not_found" and not result.query.has_content


def test_a_compound_made_of_catalogue_words_is_not_foreign(index: SearchIndex) -> None:
    # jieba keeps "动物防疫条件合格证" whole; the catalogue writes 动物防疫条件合格证核发: its parts are ours
    assert index.search("动物防疫条件合格证要多少天").query.foreign == 0.0
    assert index.search("二手车能卖多少钱").query.foreign > 0.0  # the catalogue never says 二手车


def test_among_choices_the_item_doing_what_is_asked_comes_first(index: SearchIndex) -> None:
    result = index.search("小卖部不开了，执照怎么注销")  # 开小卖部 names the licence; 注销 says what to do
    assert result.decision == "choices" and result.choices[0].name == "个体工商户注销登记"


@pytest.mark.parametrize(
    ("question", "code"),
    [
        # people, times and fillers the catalogue never uses do not make a question foreign to it
        ("同志，我老头子的身份证弄丢了，补一个要几块钱", "36072200-QR-035"),
        ("孩子下个月满月，想把户口上了。当天能办好吗", "36072200-QR-030"),
        ("中午才有空，去交居民医保窗口开不开", "36072200-GG-070"),
        # … nor do streets, crops and the neighbours one starts a co-operative with
        ("店从老街搬到新区了，执照上的地址要不要去改", "36072200-XK-002"),
        ("想跟乡亲们成立个养蜂合作社，该怎么办手续", "36072200-XK-014"),
        # … nor the county's own towns, the township's office, a paper handed in
        ("我住古陂镇 低包可以在镇政府申请吗 不想跑县里", "36072200-JF-047"),
        ("想在信丰开个小饭馆卖萝卜饺 要办哪些证", "36072200-XK-009"),  # what the shop sells
        ("我想开个药房，咋搞", "36072200-XK-015"),  # 想开 is not "get over it"
        ("失业经交上去多久能批", "36072200-JF-061"),
    ],
)
def test_people_times_fillers_and_home_are_not_foreign(index: SearchIndex, question: str, code: str) -> None:
    result = index.search(question)
    assert result.decision == "answer" and result.top is not None and result.top.code == code
    assert result.query.foreign < 0.5


@pytest.mark.parametrize(
    ("question", "code"),
    [  # colloquial and old names: 扯证 (getting married), 五保户 (特困供养), both agreeing to divorce
        ("跟男朋友商量好了想去扯证 要怎么弄", "36072200-QR-044"),
        ("村里五保户怎么申请 老人没儿没女也干不动活了", "36072200-JF-048"),
        ("和老公过不下去了，两个人都同意离，去民政局要怎么办", "36072200-QR-045"),
        # dialect, damage, voice-input slips, word order
        ("老婆刚生了 孩子户口怎么上", "36072200-QR-030"),
        ("营业执照正本被老鼠咬烂一个角 想换个新的 要带啥过去", "36072200-XK-008"),
        ("户口簿被细伢子撕得稀烂 要去换一本", "36072200-GG-038"),
        ("小孩8岁 暑假要跟我们去澳门 办通性证大人要带些什么", "36072200-XK-042"),
        ("想开个托育园 收两三岁的小朋友 卫健那边还要办什么", "36072200-QT-057"),
        ("村里要在河上修座小桥 水利那边要办什么手续", "36072200-XK-110"),
        ("开公司听说有个一窗通办 是怎么回事", "36072200-GG-022"),
        ("婚姻登记处在服务中心几楼啊", "36072200-QR-044"),
        ("在县城租房子住 公积金可以提出来交房租吗", "36072200-GG-077"),
        ("我想在屋门口开个小杂货铺 要怎么办手续", "36072200-XK-001"),
        ("补办身份证多少钱", "36072200-QR-035"),  # not 办身份证 (a first application) after 补
        ("补办营业执照要什么", "36072200-XK-008"),
        ("新开公司刻公章要钱吗", "36072200-GG-022"),
        ("开公司想一次性把执照公章税务社保都办了 去哪个窗口", "36072200-GG-022"),
        ("燃氣公司窗口在幾號", "36072200-GG-115"),
        ("我爸上个月走了，家里就剩我妈，他的户口要怎么销", "36072200-QR-039"),
        ("做了五年的早餐店不开了，执照要怎么销掉", "36072200-XK-003"),
        ("结婚两年了 老婆户口还在于都娘家 想迁到我信丰这边 要啥材料", "36072200-QR-031"),
    ],
)
def test_colloquial_and_old_names(index: SearchIndex, question: str, code: str) -> None:
    result = index.search(question)
    assert result.decision != "not_found" and result.top is not None and result.top.code == code


def test_a_question_that_says_most_of_an_item_name_is_not_foreign(index: SearchIndex) -> None:
    # the words the catalogue never uses (毕业证, 本人系) are the story around the item's own name …
    for question, code in (
        ("大学生毕业办就业创业证要带毕业证吗", "36072200-GG-060"),
        ("您好！本人系退役军人，请问优待证可否通过网上申请？", "36072200-GG-052"),
    ):
        result = index.search(question)
        assert result.decision == "answer" and result.top is not None and result.top.code == code
    # … but one word of a long name is not the item (辅具 is asked, not 残疾人补贴)
    assert index.search("残疾人想申请个轮椅，辅具去哪领").decision == "not_found"


def test_words_that_can_be_the_point_stay_foreign(index: SearchIndex) -> None:
    # an adjective (好吃) may be what the question is about (another place is judged by another_place_owns)
    assert index.search("县城饭店好吃吗").query.foreign > 0.0


def test_the_home_county_and_a_direction_complement_are_not_foreign(index: SearchIndex) -> None:
    result = index.search("嫁到信丰来了，户口怎么迁过来")  # 信丰 is home; 迁过来 is 迁
    assert result.query.foreign == 0.0 and result.decision != "not_found"
    assert {h.code for h in result.hits[:2]} == {"36072200-QR-031", "36072200-QR-032"}


def test_home_place_is_the_county_most_departments_belong_to() -> None:
    departments = ["信丰县公安局", "信丰县市场监督管理局", "国家税务总局信丰县税务局", ""]
    assert home_place(departments) >= {"信丰", "信丰县"}
    assert home_place([]) == frozenset()


@pytest.mark.parametrize(
    ("question", "owned"),
    [
        ("苏州工业园区的营业执照去哪里办", True),
        ("赣州章贡区的房产证丢了，去哪里补", True),
        ("于都县那边的低保", True),
        ("身份证是赣州市区的，办护照要回市里办吗", False),  # where the card is from, not whose service
        ("以前在深圳交的职工养老保险", False),
        ("城区的房子过户", False),  # a part of any town
        ("信丰县的营业执照", False),  # home
    ],
)
def test_another_place_owns(question: str, owned: bool) -> None:
    assert another_place_owns(normalize_text(question), {"信丰", "信丰县"}) is owned


def test_a_place_the_citizen_comes_from_is_not_foreign(index: SearchIndex) -> None:
    result = index.search("从东莞回来了，医保关系怎么转回信丰")
    assert result.top is not None and result.top.code == "36072200-GG-075" and result.decision == "answer"


@pytest.mark.parametrize(
    "question",
    [
        "江西省的社保卡",
        "赣州市的公积金",
        "安西镇的低保怎么申请",
        "中国的护照",
        "有上门的服务吗",
        "城镇的职工医保",
        "老城区的房子过户",
        "工业园区的企业",
    ],
)
def test_home_province_city_townships_and_everyday_words_are_not_another_place(
    index: SearchIndex, question: str
) -> None:
    assert not another_place_owns(normalize_text(question), index.home)
