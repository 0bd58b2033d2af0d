"""The 知识库 pages over HTTP: the question tester, items (list, view, edit with history), aliases, the
unanswered queue and the catalogue import with its dry run; who may open and change what; CSRF."""

from __future__ import annotations

import csv
import io
import json

import pytest
from aiohttp import FormData
from sqlalchemy import func, select

from bot.domains.staff.audit import AuditFilter
from bot.gateway.app import Services
from knowledge_base.importer import SAMPLE_CATALOGUE, VERSION_KEY, ensure_sample_loaded
from knowledge_base.models import KbUnanswered, KbVersion
from tests.support.web import csrf_of, finish_job

PASSPORT = "36072200-XK-041"  # 普通护照申领
SAMPLE_CSV = SAMPLE_CATALOGUE.with_suffix(".csv")


@pytest.fixture(autouse=True)
async def catalogue(services: Services) -> None:
    await ensure_sample_loaded(services.sessions, services.redis)


async def _version(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.max(KbVersion.version))) or 0)


async def _unanswered(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(KbUnanswered)) or 0)


async def test_who_may_open_and_change_the_knowledge_base(console, sign_in) -> None:
    anonymous = await console()
    resp = await anonymous.get("/console/kb?q=护照", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/console/login?next=")
    outsider = await sign_in("sender", ["broadcast_operator"])
    assert (await outsider.get("/console/kb", allow_redirects=False)).status == 403
    viewer = await sign_in("viewer1", ["viewer"])
    for path in ("/console/kb", "/console/kb/items", f"/console/kb/items/{PASSPORT}", "/console/kb/aliases",
                 "/console/kb/unanswered"):  # fmt: skip
        resp = await viewer.get(path)
        assert resp.status == 200, path
    item = await (await viewer.get(f"/console/kb/items/{PASSPORT}")).text()
    assert "保存" not in item and "事项内容" in item  # read-only for kb.read
    assert (await viewer.get("/console/kb/import")).status == 403
    token = csrf_of(item)
    edit = await viewer.post(f"/console/kb/items/{PASSPORT}", data={"csrf_token": token, "fee": "免费"})
    assert edit.status == 403
    add = await viewer.post("/console/kb/aliases", data={"csrf_token": token, "alias": "x", "code": PASSPORT})
    assert add.status == 403
    nav = await (await viewer.get("/console/kb")).text()
    assert 'href="/console/kb/import"' not in nav and 'href="/console/kb/items"' in nav


async def test_the_tester_shows_ranking_and_both_replies_without_queueing(sign_in, services) -> None:
    client = await sign_in("editor", ["kb_editor"])
    before = await _unanswered(services)
    page = await (await client.get("/console/kb", params={"q": "护照要多少钱"})).text()
    assert "普通护照申领" in page and "收费标准" in page and "直接回答" in page
    assert page.count('data-channel="wechat"') >= 1 and page.count('data-channel="sms"') >= 1
    assert "普通护照120元/本" in page and f'href="/console/kb/items/{PASSPORT}"' in page
    page = await (await client.get("/console/kb", params={"q": "明天股票会涨吗"})).text()
    assert "未找到" in page and "抱歉" in page
    assert await _unanswered(services) == before  # staff tries are not citizens' questions
    empty = await (await client.get("/console/kb")).text()
    assert 'for="q"' in empty and "检索排名" not in empty


async def test_items_are_listed_searched_and_paginated(sign_in) -> None:
    client = await sign_in("editor", ["kb_editor"])
    first = await (await client.get("/console/kb/items")).text()
    assert "第 1 / " in first and 'rel="next"' in first
    second = await (await client.get("/console/kb/items?page=2")).text()
    assert 'rel="prev"' in second
    found = await (await client.get("/console/kb/items", params={"q": "护照"})).text()
    assert "普通护照申领" in found and "个体工商户设立登记" not in found
    assert "没有符合条件的事项" in await (await client.get("/console/kb/items?q=%25%25")).text()
    missing = await client.get("/console/kb/items/36072200-XK-999")
    assert missing.status == 404 and "没有该事项" in await missing.text()


async def test_an_edit_reaches_the_bot_and_is_in_the_history(sign_in, services) -> None:
    client = await sign_in("editor", ["kb_editor"])
    page = await (await client.get(f"/console/kb/items/{PASSPORT}")).text()
    stamp = page.split('name="stamp" value="')[1].split('"')[0]
    form = {"csrf_token": csrf_of(page), "stamp": stamp, "fee": "普通护照100元/本"}
    refused = await client.post(f"/console/kb/items/{PASSPORT}", data={**form, "csrf_token": ""})
    assert refused.status == 403
    version = await _version(services)
    resp = await client.post(f"/console/kb/items/{PASSPORT}", data=form, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("?saved=1")
    assert await _version(services) == version + 1
    assert int(await services.redis.get(VERSION_KEY)) == version + 1
    answer = await services.kb.answer("护照要多少钱", log_unanswered=False)
    assert "普通护照100元/本" in answer.text  # the running bot answers from the edit
    tester = await (await client.get("/console/kb", params={"q": "护照要多少钱"})).text()
    assert "普通护照100元/本" in tester
    page = await (await client.get(f"/console/kb/items/{PASSPORT}?saved=1")).text()
    assert "已保存" in page and "修改事项" in page and "editor" in page
    assert "<del>普通护照120元/本；选择邮寄的邮费自理</del>" in page and "<ins>普通护照100元/本</ins>" in page
    assert services.staff is not None
    rows = await services.staff.audit.query(AuditFilter(action="kb.item.edit"))
    assert (
        json.loads(rows[0].summary)["after"] == {"fee": "普通护照100元/本"} and rows[0].object_id == PASSPORT
    )
    # The form was shown before this change: saving it again is refused, nothing is lost.
    stale = await client.post(f"/console/kb/items/{PASSPORT}", data={**form, "fee": "别的"})
    assert stale.status == 409 and "已被修改" in await stale.text()


async def test_an_invalid_edit_shows_the_problem_next_to_the_field(sign_in, services) -> None:
    client = await sign_in("editor", ["kb_editor"])
    page = await (await client.get(f"/console/kb/items/{PASSPORT}")).text()
    version = await _version(services)
    resp = await client.post(
        f"/console/kb/items/{PASSPORT}",
        data={"csrf_token": csrf_of(page), "name": "", "phone": "1" * 101, "fee": "改了"},
    )
    text = await resp.text()
    assert resp.status == 400
    assert 'id="e-name">事项名称不能为空' in text and 'id="e-phone">咨询电话过长' in text
    assert "改了" in text  # what was typed is kept
    assert await _version(services) == version


async def test_aliases_are_added_refused_twice_and_removed(sign_in, services) -> None:
    client = await sign_in("editor", ["kb_editor"])
    page = await (await client.get("/console/kb/aliases")).text()
    assert "开个体户" in page
    token = csrf_of(page)
    assert (
        await client.post("/console/kb/aliases", data={"alias": "出国本本", "code": PASSPORT})
    ).status == 403
    resp = await client.post(
        "/console/kb/aliases", data={"csrf_token": token, "alias": "出国本本", "code": PASSPORT},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303
    answer = await services.kb.answer("出国本本怎么办", log_unanswered=False)
    assert answer.item_code == PASSPORT
    again = await client.post(
        "/console/kb/aliases", data={"csrf_token": token, "alias": "出国本本", "code": PASSPORT}
    )
    assert again.status == 400 and "已指向事项" in await again.text()
    bad = await client.post("/console/kb/aliases", data={"csrf_token": token, "alias": "x", "code": "nope"})
    assert bad.status == 400 and 'id="e-code">目录中没有该事项' in await bad.text()
    item = await (await client.get(f"/console/kb/items/{PASSPORT}")).text()
    assert "出国本本" in item and "添加别名" in item
    alias_id = item.split("/console/kb/aliases/")[1].split("/delete")[0]
    resp = await client.post(
        f"/console/kb/aliases/{alias_id}/delete",
        data={"csrf_token": token, "back": f"/console/kb/items/{PASSPORT}"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == f"/console/kb/items/{PASSPORT}"
    item = await (await client.get(f"/console/kb/items/{PASSPORT}")).text()
    assert "删除别名" in item  # in the history
    gone = await client.post(f"/console/kb/aliases/{alias_id}/delete", data={"csrf_token": token})
    assert gone.status == 404


async def test_an_unanswered_question_becomes_an_alias_in_one_click(sign_in, services) -> None:
    question = "我想办出入境的那个本子"
    await services.kb.answer(question)
    await services.kb.answer(question)
    client = await sign_in("editor", ["kb_editor"])
    page = await (await client.get("/console/kb/unanswered")).text()
    assert question in page and "<td>2</td>" in page and 'list="kb-codes"' in page
    assert page.count("<option value=") == 110  # every item of the sample catalogue can be chosen
    form = {"csrf_token": csrf_of(page), "alias": question, "code": PASSPORT}
    assert (await client.post("/console/kb/unanswered/alias", data={**form, "csrf_token": ""})).status == 403
    resp = await client.post("/console/kb/unanswered/alias", data=form, allow_redirects=False)
    assert resp.status == 303
    page = await (await client.get("/console/kb/unanswered?done=added")).text()
    assert "已设为别名" in page and question not in page
    answer = await services.kb.answer(question, log_unanswered=False)
    assert answer.kind == "answer" and answer.item_code == PASSPORT
    bad = await client.post("/console/kb/unanswered/alias", data={**form, "alias": "新问题", "code": ""})
    assert bad.status == 400 and "请选择事项" in await bad.text()
    viewer = await sign_in("viewer1", ["viewer"])
    assert "设为别名</button>" not in await (await viewer.get("/console/kb/unanswered")).text()


def _catalogue_csv(change_fee: str, drop: str) -> bytes:
    rows = list(csv.reader(io.StringIO(SAMPLE_CSV.read_text(encoding="utf-8-sig"))))
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        if row[0] == drop:
            continue
        if row[0] == PASSPORT:
            row[10] = change_fee
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def _upload(token: str, data: bytes, name: str = "目录.csv") -> FormData:
    form = FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", data, filename=name, content_type="text/csv")
    return form


async def test_an_import_shows_the_dry_run_then_applies(sign_in, services) -> None:
    client = await sign_in("editor", ["kb_editor"])
    page = await (await client.get("/console/kb/import")).text()
    token = csrf_of(page)
    assert 'enctype="multipart/form-data"' in page and 'for="file"' in page
    data = _catalogue_csv("普通护照80元/本", drop="36072200-XK-001")
    assert (await client.post("/console/kb/import", data=_upload("", data))).status == 403
    version = await _version(services)
    preview = await client.post("/console/kb/import", data=_upload(token, data))
    text = await preview.text()
    assert preview.status == 200, text
    assert (
        "修改 <strong>1</strong>" in text
        and "删除 <strong>1</strong>" in text
        and "新增 <strong>0</strong>" in text
    )
    assert "普通护照申领" in text and "收费标准" in text and "个体工商户设立登记" in text
    assert await _version(services) == version  # a dry run writes nothing
    upload = text.split('name="token" value="')[1].split('"')[0]
    assert (await client.post("/console/kb/import/apply", data={"token": upload})).status == 403
    applied = await client.post("/console/kb/import/apply", data={"csrf_token": token, "token": upload})
    assert "导入" in await applied.text()  # the job's progress page
    text = await finish_job(client, applied)
    assert "已导入" in text and "更新 1 个，删除 1 个" in text and 'href="/console/kb/items"' in text
    assert await _version(services) == version + 1
    assert "普通护照80元/本" in (await services.kb.answer("护照要多少钱", log_unanswered=False)).text
    twice = await client.post("/console/kb/import/apply", data={"csrf_token": token, "token": upload})
    assert twice.status == 410 and "重新上传" in await twice.text()
    assert services.staff is not None
    rows = await services.staff.audit.query(AuditFilter(action="kb.import"))
    assert json.loads(rows[0].summary)["removed"] == ["36072200-XK-001"]


async def test_an_import_with_problems_changes_nothing(sign_in, services) -> None:
    client = await sign_in("editor", ["kb_editor"])
    token = csrf_of(await (await client.get("/console/kb/import")).text())
    bad = _catalogue_csv("", drop="").replace(f"{PASSPORT},普通护照申领".encode(), b"BAD-CODE,")
    resp = await client.post("/console/kb/import", data=_upload(token, bad))
    text = await resp.text()
    assert resp.status == 400 and "不能导入" in text and "格式不正确" in text and "确认导入" not in text
    wrong = await client.post("/console/kb/import", data=_upload(token, b"x", name="a.pdf"))
    assert wrong.status == 400 and "只能导入" in await wrong.text()
    none = await client.post("/console/kb/import", data={"csrf_token": token})
    assert none.status == 400 and "请选择" in await none.text()
