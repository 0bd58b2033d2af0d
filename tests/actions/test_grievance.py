"""A first message that tells of a grievance at the center, though it names no complaint, is one; a
question — with the window, the staff or the hall in it — is not."""

from __future__ import annotations

import pytest

from bot.gateway.actions.grievance import _model, grievance_odds, tells_of_a_grievance

GRIEVANCES = [
    "叫号机又坏了，大家拿着号不知道叫到哪，全靠喊，乱成一锅粥",
    "他把我的身分证往台面上一扔，滑到地上了，也不说捡一下",
    "交材料非要买他们的档案袋，五块一个",
    "复印不是说免费吗？大厅复印一张收两块钱，态度还很差",  # a rhetorical question
    "窗口让我回去等电话，等了半个月没电话，打过去说我的件早就退回了",
    "说好当场办结 结果让我等一个礼拜 什么意思啊",  # asked of no one
    "补个户口本 说当场能拿 结果让我下礼拜再来 耍人呢",
]

QUESTIONS = [
    "人社窗口星期六开不开",
    "中午十二点半过去交二手房的税 窗口有人没",
    "我妈78岁了腿脚不好 有没有人能帮她代办事情",
    "个税汇算不会弄，能去大厅找人教吗",
    "新车上牌是去车管所还是来你们大厅",
    "我想开个小卖部，营业执照怎么办",
    "公积金才交了两个月 能租房提取吗",
    "在你们中心投诉了多久会有答复",
    "有人打电话说年报要交300块代办费 是真的吗",
    "刚刚接到个电话 说我公司没年检 要交300块年检费 不交就拉进黑名单 是真的假的",
]


@pytest.mark.parametrize("text", GRIEVANCES)
def test_a_grievance_is_one(text: str) -> None:
    assert tells_of_a_grievance(text), grievance_odds(text)


@pytest.mark.parametrize("text", QUESTIONS)
def test_a_question_is_not(text: str) -> None:
    assert not tells_of_a_grievance(text), grievance_odds(text)


def test_a_short_message_is_never_judged() -> None:
    assert not tells_of_a_grievance("态度差")  # too little to tell; NLU and the complaint words decide


async def test_the_action_server_builds_the_model_at_start_up(actions) -> None:
    app = actions.client.server.app
    _model.cache_clear()
    for callback in app.on_startup:  # start-up builds it, before any message
        await callback(app)
    assert _model.cache_info().currsize == 1
