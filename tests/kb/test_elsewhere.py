"""Another office's service: the question is told where to go (with the center's phone), never answered
with the nearest catalogue item; the list never takes a question about one of the catalogue's own items."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_base.elsewhere import read_elsewhere, where_else
from knowledge_base.importer import read_aliases, read_catalogue
from knowledge_base.service import KnowledgeBase
from knowledge_base.textproc import normalize_text
from tests.support.kb import SAMPLE_ALIASES, SAMPLE_CATALOGUE, load_sample

PHONE = "0797-3322110"


def test_no_entry_takes_a_question_the_catalogue_answers() -> None:
    items = read_catalogue(SAMPLE_CATALOGUE).items
    for item in items:
        for question in (item.name, *(f.question for f in item.faq_list)):
            assert where_else(normalize_text(question)) is None, (item.name, question)


@pytest.mark.parametrize(
    ("question", "office"),
    [
        ("驾驶证快到期了，在你们这能换证吗", "车辆管理所"),
        ("二手车过户要去哪里办", "车辆管理所"),
        ("被人欠钱不还，去法院起诉要交多少诉讼费", "法院"),
        ("公司商标注册怎么申请", "商标"),
        ("县里的公租房怎么申请", "住房和城乡建设局"),
        ("銀行卡被凍結了怎麼辦", "银行"),  # Traditional
        # always the court's, though the catalogue answers 离婚 and speaks of lawsuits
        ("协议离婚谈不拢，去法院起诉要带什么", "法院"),
        ("教师资格证面试在哪报名", "考试"),
        ("健康证去哪里体检", "疾病预防控制中心"),
        ("婚检在哪做", "妇幼保健院"),
        ("护士执业证书在哪注册", "卫生健康委员会"),
        ("手机号码怎么过户给我妈", "运营商"),
        ("广州积分落户要什么条件", "积分入户"),
        ("家里房子被水淹了 临时救助怎么申请", "民政所"),
        ("奶奶想办个老年优待证 坐公交免费的", "老龄办"),
        ("想成立个书法协会 去哪登记", "社会组织登记"),
        ("儿子名字想改一下 户口上怎么改", "派出所"),
        ("这个月电费怎么这么贵 在哪查账单", "供电公司"),
        ("在厂里摔伤了 工伤认定去哪申请", "工伤保险股"),
        ("养老金资格认证怎么刷脸", "江西人社"),
        ("在东莞交的养老保险怎么转回来", "社会保险事业管理局"),
        ("社保缴费证明在哪打印", "自助机"),
        ("买车贷款哪家银行利息低", "银行"),
        ("网上哪个贷款平台利息低 急用钱", "银行"),
        ("小区要办个一千多人的大型活动 安全许可找谁批", "公安局"),
        ("建筑公司要办三级资质 在哪里申请", "住房和城乡建设局"),
        ("拉危险品的罐车 危险货物运输许可在县里能办吗", "交通运输局"),
        ("想考客运驾驶员从业资格证 开大巴的 在哪报名考试", "交通运输局"),
        ("楼上邻居天天半夜吵 找哪个管", "12345"),
        ("店门口想挂个大招牌 要审批吗 找哪个部门", "城市管理局"),
        ("退休人员每年那个养老金资格认证 怎么刷脸", "江西人社"),  # always: though 退休 names an item
        ("帮我查一下一个人的电话号码 他欠我钱跑了", "法院"),
        ("养的猪要卖了 检疫证明找哪个部门开", "动物卫生监督所"),
        ("老婆是越南人 在信丰能登记结婚吗", "涉外婚姻登记"),
    ],
)
async def test_another_offices_service_is_told_where_to_go(kb_sessions, question: str, office: str) -> None:
    await load_sample(kb_sessions)
    answer = await KnowledgeBase(kb_sessions, phone=PHONE).answer(question)
    assert answer.kind == "not_found" and answer.elsewhere and answer.item_code is None
    assert office in answer.text and PHONE in answer.text
    sms = await KnowledgeBase(kb_sessions, phone=PHONE).answer(question, channel="sms")
    assert PHONE in sms.text and len(sms.text) <= 134  # two SMS segments at most


async def test_a_question_naming_a_catalogue_item_stays_here(kb_sessions) -> None:
    await load_sample(kb_sessions)
    kb = KnowledgeBase(kb_sessions, phone=PHONE)
    aliases = dict(read_aliases(SAMPLE_ALIASES).aliases)
    assert where_else("网约车驾驶证") is not None and "网约车驾驶证" in aliases  # 驾驶证 is in the alias …
    answer = await kb.answer("网约车驾驶证怎么办")  # … which names the catalogue's own item
    assert answer.kind == "answer" and not answer.elsewhere and answer.item_code == aliases["网约车驾驶证"]
    assert await kb.unanswered() == []
    # the exam is another office's; the certification after it is the catalogue's
    passed = await kb.answer("今年小学教资笔试面试都过了，认定要准备哪些东西")
    assert passed.kind == "answer" and passed.item_code == "36072200-XK-105"


def test_a_malformed_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.tsv"
    path.write_text("# comment\npattern\twhere\n驾驶证\t车管所\n商标 no tab\n", encoding="utf-8")
    with pytest.raises(ValueError, match="entry 3"):
        read_elsewhere(path)
    path.write_text("pattern\twhere\n驾驶证\t车管所\n", encoding="utf-8")
    assert [e.where for e in read_elsewhere(path)] == ["车管所"]
    path.write_text("pattern\twhere\talways\n起诉\t法院\talways\n驾驶证\t车管所\n", encoding="utf-8")
    assert [(e.where, e.always) for e in read_elsewhere(path)] == [("法院", True), ("车管所", False)]
    path.write_text("pattern\twhere\talways\n起诉\t法院\tsometimes\n", encoding="utf-8")
    with pytest.raises(ValueError, match="entry 2"):
        read_elsewhere(path)


@pytest.mark.parametrize(
    ("question", "code"),
    [
        # a word on the list, but the catalogue answers the question and speaks of it, or it names the item
        ("二手房过户要带银行卡吗", "36072200-QR-080"),
        ("退休提取公积金打到哪张银行卡", None),
        ("身份证被盗了补办要带什么", "36072200-QR-035"),
        ("新生儿落户要带疫苗接种本吗", "36072200-QR-030"),
        ("违章建筑拆了以后宅基地还能申请吗", None),
        ("营业执照能快递寄到家吗", None),
        # a lawsuit after labour arbitration is the arbitration item's to explain; a bank it names
        ("劳动仲裁裁决不服可以起诉吗", "36072200-QT-069"),
        ("社保卡在哪个银行领", None),
    ],
)
async def test_a_word_on_the_list_in_a_question_the_catalogue_answers(
    kb_sessions, question: str, code: str | None
) -> None:
    await load_sample(kb_sessions)
    answer = await KnowledgeBase(kb_sessions, phone=PHONE).answer(question)
    assert not answer.elsewhere, answer.text
    if code is not None:
        assert answer.item_code == code


async def test_a_road_accident_names_the_accident_line(kb_sessions) -> None:
    await load_sample(kb_sessions)
    answer = await KnowledgeBase(kb_sessions, phone=PHONE).answer("出了交通事故对方跑了怎么办")
    assert answer.elsewhere and "122" in answer.text
