"""The 群发通知 pages over HTTP: the list, the composer, recipient upload with its exclusions report and the
preview, the approvers' queue, a campaign's page with its progress fragment, its controls and the export —
each for the right role only, each form refusing a missing CSRF token, the two-person rule by account."""

from __future__ import annotations

import dataclasses
import io
import re

import aiohttp
import openpyxl
import pytest
from aiohttp.test_utils import TestClient

from bot.core.config import Settings
from bot.core.env import Secret
from bot.domains.staff.audit import AuditFilter
from bot.gateway.app import Services, build_services
from bot.gateway.conversation.scripted_dialogue import ScriptedDialogue
from sms_gateway.config import SmsSettings
from sms_gateway.twilio import fake as fake_twilio
from tests.support.broadcast import csv_bytes, recipients_csv
from tests.support.sms import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER
from tests.support.web import csrf_of

TEMPLATE = "{姓名}您好：{企业}的年报请于6月30日前报送。"


@pytest.fixture
async def services(redis_client, sqlite_url, aiohttp_server) -> Services:
    """The gateway with SMS on (the Twilio fake), so broadcasts are served."""
    fake = await aiohttp_server(fake_twilio.build_app(ACCOUNT_SID, AUTH_TOKEN, from_numbers=(FROM_NUMBER,)))
    sms = dataclasses.replace(
        SmsSettings(),
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=Secret(AUTH_TOKEN),
        twilio_from_number=FROM_NUMBER,
        twilio_api_base=str(fake.make_url("")).rstrip("/"),
    )
    settings = dataclasses.replace(Settings(), database_url=sqlite_url, wechat_message_mode="plain")
    built = await build_services(settings, redis=redis_client, dialogue=ScriptedDialogue(), sms_settings=sms)
    assert built.broadcasts is not None
    return built


async def _page(client: TestClient, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, (path, resp.status, await resp.text())
    return await resp.text()


async def _create(client: TestClient, template: str = TEMPLATE, name: str = "年报提醒") -> str:
    page = await _page(client, "/console/broadcasts/new")
    resp = await client.post(
        "/console/broadcasts",
        data={"csrf_token": csrf_of(page), "name": name, "template": template, "purpose": "提醒"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    return location.rsplit("/", 1)[1]


async def _upload(
    client: TestClient, cid: str, data: bytes, filename: str = "名单.csv", column_map: str = ""
) -> tuple[int, str]:
    page = await _page(client, f"/console/broadcasts/{cid}")
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf_of(page))
    form.add_field("column_map", column_map)
    form.add_field("file", data, filename=filename, content_type="text/csv")
    resp = await client.post(f"/console/broadcasts/{cid}/recipients", data=form)
    return resp.status, await resp.text()


async def _act(client: TestClient, cid: str, action: str, **fields: str) -> aiohttp.ClientResponse:
    page = await _page(client, f"/console/broadcasts/{cid}")
    return await client.post(
        f"/console/broadcasts/{cid}/{action}",
        data={"csrf_token": csrf_of(page), **fields},
        allow_redirects=False,
    )


async def test_the_whole_flow_from_draft_to_sending(sign_in, services: Services) -> None:
    operator = await sign_in("op", ["broadcast_operator"])
    listing = await _page(operator, "/console/broadcasts")
    assert "新建群发" in listing and "还没有群发任务" in listing and "待我审核" not in listing
    composer = await _page(operator, "/console/broadcasts/new")
    assert 'data-count="template-count"' in composer and 'data-prefix="【县行政服务中心】"' in composer
    for field in ("name", "template", "purpose", "rate", "window"):
        assert f'for="{field}"' in composer and f'id="{field}"' in composer
    cid = await _create(operator)
    page = await _page(operator, f"/console/broadcasts/{cid}")
    assert "收件人名单为空" in page and "上传名单" in page  # the preview's blocker, before any list

    rows = [["手机号", "姓名", "企业"], ["13900000001", "张三", "甲公司"], ["13900000001", "张三", "甲公司"],
            ["12345", "李四", "乙公司"], ["13900000002", "王五", "丙公司"]]  # fmt: skip
    status, page = await _upload(operator, cid, csv_bytes(rows))
    assert status == 200, page
    assert "本次上传" in page and "号码重复" in page and "号码无效" in page
    assert "检查通过" in page and "139****0001" in page and "13900000001" not in page  # numbers masked
    assert "【县行政服务中心】张三您好：甲公司的年报请于6月30日前报送。" in page
    assert (await _act(operator, cid, "approve")).status == 403  # operators do not approve
    resp = await _act(operator, cid, "submit")
    assert resp.status == 303 and resp.headers["Location"] == f"/console/broadcasts/{cid}?done=submit"
    page = await _page(operator, f"/console/broadcasts/{cid}?done=submit")
    assert "已提交审核" in page and "待审核" in page

    approver = await sign_in("boss", ["approver"])
    queue = await _page(approver, "/console/broadcasts/review")
    assert "年报提醒" in queue and "可发送 2 人" in queue
    resp = await _act(approver, cid, "approve", back="review")
    assert resp.status == 303 and resp.headers["Location"] == "/console/broadcasts/review?done=approve"
    assert "目前没有待审核的群发" in await _page(approver, "/console/broadcasts/review?done=approve")
    assert (await _act(approver, cid, "start")).status == 403  # approvers do not start

    resp = await _act(operator, cid, "start")
    assert resp.status == 303
    page = await _page(operator, f"/console/broadcasts/{cid}")
    assert "发送中" in page and 'hx-trigger="every 3s"' in page and "暂停" in page
    fragment = await _page(operator, f"/console/broadcasts/{cid}/progress")
    assert fragment.startswith('<section class="card" id="progress"') and "预计剩余时间" in fragment
    assert "<html" not in fragment
    headers = {"HX-Request": "true"}
    resp = await operator.get(f"/console/broadcasts/{cid}/progress?shown=发送中", headers=headers)
    assert "HX-Redirect" not in resp.headers
    resp = await operator.get(f"/console/broadcasts/{cid}/progress?shown=已排期", headers=headers)
    assert resp.headers["HX-Redirect"] == f"/console/broadcasts/{cid}"  # reload: the controls changed
    assert (await _act(operator, cid, "pause")).status == 303
    page = await _page(operator, f"/console/broadcasts/{cid}")
    assert "已暂停" in page and "继续发送" in page
    assert (await _act(operator, cid, "resume")).status == 303
    assert (await _act(operator, cid, "cancel", reason="内容有误")).status == 303
    page = await _page(operator, f"/console/broadcasts/{cid}")
    assert "已取消" in page and "op(op) 取消：内容有误" in page and "every 3s" not in page

    listing = await _page(operator, "/console/broadcasts?state=已取消")
    assert "年报提醒" in listing and "已取消" in listing
    assert "年报提醒" not in await _page(operator, "/console/broadcasts?state=草稿")
    assert services.staff is not None
    actions = [e.action for e in await services.staff.audit.query(AuditFilter(limit=200))]
    for action in ("broadcast.create", "broadcast.recipients", "broadcast.submit", "broadcast.approve",
                   "broadcast.start", "broadcast.pause", "broadcast.resume", "broadcast.cancel"):  # fmt: skip
        assert action in actions, action


async def test_an_approver_never_approves_their_own_campaign(sign_in) -> None:
    both = await sign_in("both", ["broadcast_operator", "approver"])
    cid = await _create(both)
    status, _ = await _upload(both, cid, recipients_csv(2))
    assert status == 200
    assert (await _act(both, cid, "submit")).status == 303
    page = await _page(both, f"/console/broadcasts/{cid}")
    assert "须由另一名审核员审核" in page and f"/broadcasts/{cid}/approve" not in page
    queue = await _page(both, "/console/broadcasts/review")
    assert "须由另一名审核员审核" in queue
    resp = await _act(both, cid, "approve")  # the form is hidden; the service refuses by account
    assert resp.status == 403 and "起草人不能审核自己的群发任务" in await resp.text()
    other = await sign_in("checker", ["approver"])
    resp = await _act(other, cid, "reject")
    assert resp.status == 400 and "请填写退回原因" in await resp.text()
    resp = await _act(other, cid, "reject", reason="请补充截止时间")
    assert resp.status == 303
    page = await _page(both, f"/console/broadcasts/{cid}")
    assert "草稿" in page and "退回：请补充截止时间" in page


async def test_the_composer_shows_errors_next_to_the_fields(sign_in) -> None:
    operator = await sign_in("op", ["broadcast_operator"])
    page = await _page(operator, "/console/broadcasts/new")
    token = csrf_of(page)
    cases = [
        ({"name": "", "template": "您好"}, "name", "请填写群发名称"),
        ({"name": "x", "template": "您好{姓名"}, "template", "花括号不成对"),
        ({"name": "x", "template": "您好", "rate": "快"}, "rate", "发送速率应为数字"),
        ({"name": "x", "template": "您好", "window": "8点"}, "window", "发送时段格式"),
    ]
    for form, field, message in cases:
        resp = await operator.post("/console/broadcasts", data={"csrf_token": token, **form})
        text = await resp.text()
        assert resp.status == 400, (form, text)
        assert re.search(rf'id="{field}-error" role="alert">[^<]*{message}', text), (field, text)
    # 【】 in the text is allowed as a draft but blocks submitting (the service's preview)
    cid = await _create(operator, template="【通知】{姓名}您好")
    status, page = await _upload(operator, cid, recipients_csv(1))
    assert status == 200 and "正文中不能含有【】" in page
    resp = await _act(operator, cid, "submit")
    assert resp.status == 409 and "存在阻止发送的问题" in await resp.text()
    # a template variable the list lacks: refused at upload, or filled from another column
    cid = await _create(operator, template="{姓名}您好，{科室}通知")
    status, page = await _upload(operator, cid, recipients_csv(1))
    assert status == 400 and re.search(r'id="upload-error" role="alert">缺少模板变量对应的列：{科室}', page)
    status, page = await _upload(operator, cid, recipients_csv(1), column_map="科室=企业")
    assert status == 200 and "张0您好，企业0通知" in page and "检查通过" in page
    # a row with an empty cell: the preview's blocker names the row
    rows = [["手机号", "姓名", "科室"], ["13900000001", "张三", "办公室"], ["13900000002", "", "财务科"]]
    status, page = await _upload(operator, cid, csv_bytes(rows))
    assert status == 200 and "模板变量缺少取值：第3行缺少 {姓名}" in page
    status, page = await _upload(operator, cid, b"\x00\x01not a list", filename="x.xlsx")
    assert status == 400 and 'id="upload-error"' in page


async def test_forms_refuse_a_missing_csrf_token(sign_in, services: Services) -> None:
    operator = await sign_in("op", ["broadcast_operator"])
    resp = await operator.post("/console/broadcasts", data={"name": "x", "template": "您好"})
    assert resp.status == 403 and "防伪令牌" in await resp.text()
    assert services.broadcasts is not None
    cid = (await services.broadcasts.create(name="t", template="您好", created_by="op"))["id"]
    form = aiohttp.FormData()
    form.add_field("file", recipients_csv(1), filename="名单.csv", content_type="text/csv")
    resp = await operator.post(f"/console/broadcasts/{cid}/recipients", data=form)
    assert resp.status == 403
    for action in ("submit", "start", "pause", "resume", "cancel"):
        resp = await operator.post(f"/console/broadcasts/{cid}/{action}", data={})
        assert resp.status == 403, action
    assert (await services.broadcasts.view(cid))["state"] == "草稿"


async def test_pages_need_their_permission(console, sign_in, services: Services) -> None:
    assert services.broadcasts is not None
    cid = (await services.broadcasts.create(name="t", template="您好", created_by="x"))["id"]
    anonymous = await console()
    resp = await anonymous.get("/console/broadcasts", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/console/login")
    kb = await sign_in("editor", ["kb_editor"])
    for path in ("/console/broadcasts", "/console/broadcasts/new", f"/console/broadcasts/{cid}"):
        assert (await kb.get(path)).status == 403, path
    viewer = await sign_in("viewer", ["viewer"])
    page = await _page(viewer, f"/console/broadcasts/{cid}")
    assert "提交审核" not in page and "取消群发" not in page and "上传名单" not in page
    for path in (
        "/console/broadcasts/new",
        "/console/broadcasts/review",
        f"/console/broadcasts/{cid}/export",
    ):
        assert (await viewer.get(path)).status == 403, path
    listing = await _page(viewer, "/console/broadcasts")
    assert "新建群发" not in listing
    token = csrf_of(listing)
    for action in ("submit", "approve", "start", "cancel"):
        resp = await viewer.post(f"/console/broadcasts/{cid}/{action}", data={"csrf_token": token})
        assert resp.status == 403, action
    approver = await sign_in("boss", ["approver"])
    assert (await approver.get("/console/broadcasts/new")).status == 403
    assert (await approver.get("/console/broadcasts/review")).status == 200
    operator = await sign_in("op", ["broadcast_operator"])
    assert (await operator.get("/console/broadcasts/nope")).status == 404


async def test_the_export_is_a_spreadsheet_with_safe_cells(sign_in, services: Services) -> None:
    operator = await sign_in("op", ["broadcast_operator"])
    cid = await _create(operator, template="您好：年报请按时报送。")
    rows = [["手机号", "备注"], ["13900000001", "a"], ['=HYPERLINK("x")', "b"]]
    status, _ = await _upload(operator, cid, csv_bytes(rows))
    assert status == 200
    resp = await operator.get(f"/console/broadcasts/{cid}/export")
    assert resp.status == 200 and resp.content_type.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert values[0][3] == "+8613900000001"  # a normalised number stays as it is
    assert values[1][2] == '\'=HYPERLINK("x")' and values[1][4] == "号码无效"
    assert services.staff is not None
    entries = await services.staff.audit.query(AuditFilter(limit=200))
    assert any(e.action == "broadcast.export" and e.object_id == cid for e in entries)


async def test_a_clear_notice_when_sms_is_off(sign_in, monkeypatch, services: Services) -> None:
    operator = await sign_in("op", ["broadcast_operator"])
    monkeypatch.setattr(services, "broadcasts", None)
    for path in ("/console/broadcasts", "/console/broadcasts/new", "/console/broadcasts/x"):
        resp = await operator.get(path)
        assert resp.status == 503 and "短信通道未开启" in await resp.text(), path


async def test_a_draft_is_edited_and_a_rejected_one_edited_again(sign_in, services: Services) -> None:
    operator = await sign_in("op", ["broadcast_operator"])
    cid = await _create(operator)
    rows = [["手机号", "姓名", "企业"], ["13900000001", "张三", "甲公司"]]
    assert (await _upload(operator, cid, csv_bytes(rows)))[0] == 200
    page = await _page(operator, f"/console/broadcasts/{cid}")
    assert f'href="/console/broadcasts/{cid}/edit"' in page and "修改内容" in page
    form = await _page(operator, f"/console/broadcasts/{cid}/edit")
    assert "修改群发草稿" in form and "年报提醒" in form and TEMPLATE in form
    assert f'action="/console/broadcasts/{cid}/edit"' in form and 'for="template"' in form
    fields = {"name": "年报提醒（更正）", "template": "{姓名}您好：{企业}的年报请于7月15日前报送。",
              "purpose": "提醒", "rate": "", "window": "09:00-20:00"}  # fmt: skip
    bad = await operator.post(
        f"/console/broadcasts/{cid}/edit", data={"csrf_token": csrf_of(form), **fields, "rate": "快"}
    )
    assert bad.status == 400 and 'id="rate-error"' in await bad.text()
    assert (await operator.post(f"/console/broadcasts/{cid}/edit", data=fields)).status == 403  # no token
    saved = await operator.post(
        f"/console/broadcasts/{cid}/edit", data={"csrf_token": csrf_of(form), **fields}, allow_redirects=False
    )
    assert saved.status == 303 and saved.headers["Location"] == f"/console/broadcasts/{cid}?done=edit"
    page = await _page(operator, f"/console/broadcasts/{cid}?done=edit")
    assert "草稿已保存" in page and "年报提醒（更正）" in page and "09:00-20:00" in page
    assert "张三您好：甲公司的年报请于7月15日前报送。" in page  # the list stays; the preview follows the text
    # submitted: no longer editable; rejected: a draft again, editable
    assert (await _act(operator, cid, "submit")).status == 303
    assert "修改内容" not in await _page(operator, f"/console/broadcasts/{cid}")
    locked = await operator.post(
        f"/console/broadcasts/{cid}/edit", data={"csrf_token": csrf_of(form), **fields}
    )
    assert locked.status == 409 and "不能修改" in await locked.text()
    approver = await sign_in("boss", ["approver"])
    assert (await _act(approver, cid, "reject", reason="日期写错")).status == 303
    assert "修改群发草稿" in await _page(operator, f"/console/broadcasts/{cid}/edit")
    viewer = await sign_in("reader", ["viewer"])
    assert (await viewer.get(f"/console/broadcasts/{cid}/edit", allow_redirects=False)).status == 403
    assert services.staff is not None
    edits = await services.staff.audit.query(AuditFilter(action="broadcast.update"))
    assert [e.outcome for e in edits].count("ok") == 1 and all(e.object_id == cid for e in edits)
