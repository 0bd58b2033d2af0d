"""The staff HTTP API (behind the gateway's staff middleware, with real accounts and tokens) and the
``govbot broadcast`` CLI; the two-person rule by account."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
import pytest
from aiohttp import web

from bot.core.actor import Actor
from bot.core.db import create_engine, session_factory
from bot.domains.staff import Staff
from bot.domains.staff.roles import permissions_of
from sms_gateway.broadcast import cli as bcli
from sms_gateway.broadcast.api import ROUTES, setup_routes
from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.models import CampaignState
from sms_gateway.broadcast.service import BroadcastService
from sms_gateway.compose import Composer
from tests.support.broadcast import csv_bytes, recipients_csv
from tests.support.staff import bearer, person, staff_app

SERVICE = web.AppKey("broadcast_service", BroadcastService)
TOKENS: dict[str, dict[str, str]] = {}  # the people's bearer headers, set by the client fixture


@pytest.fixture
async def client(aiohttp_client, database_url, redis_client):
    engine = create_engine(database_url)
    staff = Staff.build(session_factory(engine), redis_client)
    people = {
        "alice": ["broadcast_operator"],  # drafts
        "bob": ["approver", "broadcast_operator"],  # approves and sends
        "carol": ["approver", "broadcast_operator"],  # both roles: still not for her own campaigns
        "viewer": ["viewer"],
    }
    for name, roles in people.items():
        TOKENS[name] = bearer(await person(staff, name, roles, "行政服务中心办公室"))
    app = staff_app(staff)
    app[SERVICE] = BroadcastService(BroadcastSettings(), session_factory(engine), Composer("县行政服务中心"))
    setup_routes(app, SERVICE)
    try:
        yield await aiohttp_client(app)
    finally:
        await engine.dispose()


def upload_form(data: bytes, filename: str = "名单.csv", **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for k, v in fields.items():
        form.add_field(k, v)
    form.add_field("file", data, filename=filename, content_type="text/csv")
    return form


async def test_every_route_requires_a_signed_in_person(client) -> None:
    for method, path in ROUTES:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Staff-User": "alice"}):
            resp = await client.request(method, path, headers=headers)
            assert resp.status == 401, (method, path, headers)
    assert (await client.get("/api/broadcasts", headers=TOKENS["viewer"])).status == 200
    resp = await client.post("/api/broadcasts", json={"name": "x", "template": "y"}, headers=TOKENS["viewer"])
    assert resp.status == 403


async def test_api_flow(client) -> None:
    alice, bob = TOKENS["alice"], TOKENS["bob"]
    AUTH = TOKENS["viewer"]
    resp = await client.post(
        "/api/broadcasts",
        json={"name": "年报提醒", "template": "{姓名}您好：{企业}年报请于6月30日前报送。", "purpose": "提醒"},
        headers=alice,
    )
    assert resp.status == 201
    cid = (await resp.json())["id"]
    resp = await client.post(
        f"/api/broadcasts/{cid}/recipients", data=upload_form(b"xx,yy\n1,2"), headers=alice
    )
    assert resp.status == 400 and "找不到手机号列" in (await resp.json())["message"]
    resp = await client.post(
        f"/api/broadcasts/{cid}/recipients", data=upload_form(recipients_csv(5)), headers=alice
    )
    assert resp.status == 200 and (await resp.json())["eligible"] == 5
    # the draft's wording is corrected (PATCH holds the whole draft); wrong types are a 400, not a 500
    patched = {"name": "年报提醒", "template": "{姓名}您好：{企业}年报请于7月15日前报送。", "purpose": "提醒"}
    for bad in ({"rate": "abc"}, {"window": {"start": "08:00"}}, {"template": "{姓名"}):
        resp = await client.patch(f"/api/broadcasts/{cid}", json={**patched, **bad}, headers=alice)
        assert resp.status == 400, bad
    assert (await client.patch(f"/api/broadcasts/{cid}", json=patched, headers=AUTH)).status == 403
    resp = await client.patch(f"/api/broadcasts/{cid}", json={**patched, "rate": "20"}, headers=alice)
    assert resp.status == 200 and (await resp.json())["rate"] == 20.0
    assert (await client.patch("/api/broadcasts/nope", json=patched, headers=alice)).status == 404
    preview = await (await client.get(f"/api/broadcasts/{cid}/preview", headers=AUTH)).json()
    assert "7月15日" in preview["samples"][0]["body"]
    assert preview["recipients"] == 5 and preview["blockers"] == [] and len(preview["samples"]) == 3
    assert (await client.post(f"/api/broadcasts/{cid}/submit", headers=AUTH)).status == 403  # read-only
    assert (await client.post(f"/api/broadcasts/{cid}/submit", headers=alice)).status == 200
    resp = await client.patch(f"/api/broadcasts/{cid}", json=patched, headers=alice)
    assert resp.status == 409 and "不能修改" in (await resp.json())["message"]  # submitted: no longer a draft
    resp = await client.post(f"/api/broadcasts/{cid}/approve", headers=alice)
    assert resp.status == 403 and "审核" in (await resp.json())["message"]  # not an approver
    resp = await client.post(f"/api/broadcasts/{cid}/approve", headers={**alice, "X-Staff-User": "bob"})
    assert resp.status == 403  # a header names nobody
    assert (await (await client.post(f"/api/broadcasts/{cid}/approve", headers=bob)).json())[
        "state"
    ] == "已排期"
    resp = await client.post(f"/api/broadcasts/{cid}/start", json={"at": "2099-01-01T09:00:00"}, headers=bob)
    assert resp.status == 400 and "时区" in (await resp.json())["message"]
    resp = await client.post(f"/api/broadcasts/{cid}/start", headers=bob)
    assert (await resp.json())["state"] == CampaignState.SENDING
    assert (await (await client.post(f"/api/broadcasts/{cid}/pause", headers=bob)).json())[
        "state"
    ] == "已暂停"
    assert (await (await client.post(f"/api/broadcasts/{cid}/resume", headers=bob)).json())[
        "state"
    ] == "发送中"
    progress = await (await client.get(f"/api/broadcasts/{cid}/progress", headers=AUTH)).json()
    assert progress["queued"] == 5 and progress["eligible"] == 5
    resp = await client.post(f"/api/broadcasts/{cid}/cancel", json={"reason": "测试"}, headers=bob)
    assert (await resp.json())["state"] == "已取消"
    resp = await client.post(f"/api/broadcasts/{cid}/resume", headers=bob)
    assert resp.status == 409
    detail = await (await client.get(f"/api/broadcasts/{cid}", headers=AUTH)).json()
    assert detail["state"] == "已取消" and detail["progress"]["eligible"] == 5
    assert (await client.get(f"/api/broadcasts/{cid}/export", headers=AUTH)).status == 403
    resp = await client.get(f"/api/broadcasts/{cid}/export", headers=bob)
    assert resp.status == 200
    wb = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    rows = list(wb.active.iter_rows(values_only=True))
    assert rows[0][:5] == ("序号", "来源", "原始号码", "号码(E.164)", "结果")
    assert len(rows) == 6 and rows[1][4] == "未发送（已取消）"
    assert (await client.get("/api/broadcasts/nope", headers=AUTH)).status == 404
    assert (await client.post(f"/api/broadcasts/{cid}/explode", headers=bob)).status == 404
    resp = await client.post(
        "/api/broadcasts/groups", data=upload_form(recipients_csv(3), name="重点企业"), headers=alice
    )
    assert resp.status == 201 and (await resp.json())["members"] == 3
    groups = await (await client.get("/api/broadcasts/groups", headers=AUTH)).json()
    assert groups["groups"][0]["members"] == 3


async def test_an_approver_never_approves_her_own_campaign(client) -> None:
    carol = TOKENS["carol"]
    resp = await client.post(
        "/api/broadcasts", json={"name": "自审", "template": "您好：测试。"}, headers=carol
    )
    cid = (await resp.json())["id"]
    await client.post(f"/api/broadcasts/{cid}/recipients", data=upload_form(recipients_csv(2)), headers=carol)
    assert (await client.post(f"/api/broadcasts/{cid}/submit", headers=carol)).status == 200
    resp = await client.post(f"/api/broadcasts/{cid}/approve", headers=carol)
    assert resp.status == 403 and "起草人不能审核" in (await resp.json())["message"]
    resp = await client.post(f"/api/broadcasts/{cid}/approve", json={"actor": "bob"}, headers=carol)
    assert resp.status == 403  # naming someone else in the body changes nothing
    resp = await client.post(f"/api/broadcasts/{cid}/approve", headers=TOKENS["bob"])
    assert resp.status == 200 and (await resp.json())["approved_by"] == "bob(bob)"


# ------------------------------------------------------------------------------------------ CLI


CLI_PEOPLE = {
    "alice": Actor(1, "alice", "alice", "", frozenset({"broadcast_operator"}),
                   permissions_of(["broadcast_operator"]), via="cli"),
    "bob": Actor(2, "bob", "bob", "", frozenset({"approver", "broadcast_operator"}),
                 permissions_of(["approver", "broadcast_operator"]), via="cli"),
}  # fmt: skip


def run_cli(database_url: str) -> Callable[..., tuple[int, str, str]]:
    def wrap(handler: Any) -> Callable[[argparse.Namespace], int]:
        def run(args: argparse.Namespace) -> int:
            async def go() -> int:
                engine = create_engine(database_url)
                try:
                    return int(await handler(args, session_factory(engine)))
                finally:
                    await engine.dispose()

            return asyncio.run(go())

        return run

    parser = argparse.ArgumentParser(prog="govbot")
    bcli.register(parser.add_subparsers(dest="command", required=True), wrap)

    def call(*argv: str, capsys: Any) -> tuple[int, str, str]:
        rest, by = list(argv), "alice"
        if "--by" in rest:  # who runs the command: their sign-in (the gateway's wrapper), not an argument
            at = rest.index("--by")
            by = rest[at + 1]
            del rest[at : at + 2]
        args = parser.parse_args(["broadcast", *rest])
        assert args.permission
        args.actor = CLI_PEOPLE[by]
        code = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


@pytest.fixture
def cli(sqlite_url) -> Callable[..., tuple[int, str, str]]:
    return run_cli(sqlite_url)


async def test_cli_flow(cli, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SMS_SIGNATURE", "县行政服务中心")
    listing = tmp_path / "名单.csv"
    listing.write_bytes(recipients_csv(4, encoding="gbk"))

    def call(*argv: str) -> tuple[int, str, str]:
        return cli(*argv, capsys=capsys)

    code, out, _ = await asyncio.to_thread(
        call, "create", "--name", "普法", "--template", "{姓名}您好：宪法宣传周。", "--purpose", "普法",
        "--recipients", str(listing), "--by", "alice",
    )  # fmt: skip
    assert code == 0 and "收件人已导入（编码 gb18030）：共 4 行，可发送 4" in out
    cid = out.split()[1].split("（")[0]
    code, out, err = await asyncio.to_thread(call, "preview", cid)
    assert code == 0 and "收件人：4 人" in out and "✓ 可以提交审核" in out, err
    assert (await asyncio.to_thread(call, "submit", cid, "--by", "alice"))[0] == 0
    bob_drafted, _, _ = await asyncio.to_thread(
        call, "create", "--name", "自审", "--template", "您好：测试。", "--by", "bob"
    )
    assert bob_drafted == 0
    assert (await asyncio.to_thread(call, "approve", cid, "--by", "bob"))[0] == 0
    code, out, _ = await asyncio.to_thread(
        call, "start", cid, "--by", "bob", "--at", "2099-06-01T09:00+08:00"
    )
    assert code == 0 and "已排期" in out
    assert "已暂停" in (await asyncio.to_thread(call, "pause", cid, "--by", "bob"))[1]
    assert "已取消" in (await asyncio.to_thread(call, "cancel", cid, "--by", "bob", "--reason", "改期"))[1]
    code, out, _ = await asyncio.to_thread(call, "status", cid, "--follow", "--interval", "0.1")
    assert code == 0 and "░" in out and "已取消" in out
    code, out, _ = await asyncio.to_thread(call, "status")
    assert cid in out
    target = tmp_path / "结果.xlsx"
    code, out, _ = await asyncio.to_thread(call, "export", cid, str(target))
    assert code == 0 and "4 个收件人" in out
    ws = openpyxl.load_workbook(target).active
    assert ws is not None and ws.max_row == 5
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x80\x81\xff")
    code, _, err = await asyncio.to_thread(call, "recipients", cid, str(bad), "--by", "alice")
    assert code == 1 and "错误" in err


def test_progress_bar() -> None:
    line = bcli.progress_line(
        {
            "eligible": 10, "done": 5, "percent": 50.0, "state": "发送中", "sent": 5, "delivered": 2,
            "queued": 5, "in_flight": 0, "failed": 0, "opted_out_during": 0, "waiting_for_window": None,
        }
    )  # fmt: skip
    assert line.startswith("[" + "█" * 15 + "░" * 15 + "]  50.0%  发送中")


async def test_uploads_of_the_wrong_shape_are_400s_not_500s(client) -> None:
    alice = TOKENS["alice"]
    resp = await client.post("/api/broadcasts", json={"name": "通知", "template": "您好"}, headers=alice)
    cid = (await resp.json())["id"]
    for column_map in ('["姓名"]', "{not json", '{"姓名": 3}'):
        form = upload_form(recipients_csv(2), column_map=column_map)
        resp = await client.post(f"/api/broadcasts/{cid}/recipients", data=form, headers=alice)
        assert resp.status == 400, (column_map, await resp.text())
        form = upload_form(recipients_csv(2), name=f"分组{column_map}", column_map=column_map)
        resp = await client.post("/api/broadcasts/groups", data=form, headers=alice)  # it was a 500
        assert resp.status == 400, (column_map, await resp.text())
    form = aiohttp.FormData()
    form.add_field("column_map", aiohttp.BytesPayload(b"\xff\xfe\x00bad", content_type="text/plain"))
    form.add_field("file", recipients_csv(2), filename="名单.csv", content_type="text/csv")
    resp = await client.post(f"/api/broadcasts/{cid}/recipients", data=form, headers=alice)
    assert resp.status == 400 and "UTF-8" in (await resp.json())["message"]
    for body in ({"rate": "abc"}, {"window": {"start": "08:00"}}):
        resp = await client.post(
            "/api/broadcasts", json={"name": "通知", "template": "您好", **body}, headers=alice
        )
        assert resp.status == 400, body


async def test_the_api_export_never_writes_a_live_formula(client) -> None:
    alice, bob = TOKENS["alice"], TOKENS["bob"]
    resp = await client.post("/api/broadcasts", json={"name": "通知", "template": "您好"}, headers=alice)
    cid = (await resp.json())["id"]
    rows = [["手机号"], ['=HYPERLINK("http://evil","x")'], ["=cmd|' /C calc'!A0"], ["13900000001"]]
    form = upload_form(csv_bytes(rows))
    assert (await client.post(f"/api/broadcasts/{cid}/recipients", data=form, headers=alice)).status == 200
    resp = await client.get(f"/api/broadcasts/{cid}/export", headers=bob)
    assert resp.status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    assert sheet is not None
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)  # no formula anywhere
    texts = [str(c.value) for c in cells if c.value is not None]
    assert '\'=HYPERLINK("http://evil","x")' in texts and "+8613900000001" in texts


async def test_unreadable_files_are_400s(client) -> None:
    """A CSV cell over 128 KB and a truncated workbook: the file is at fault, said in Chinese, never a 500."""
    alice = TOKENS["alice"]
    resp = await client.post("/api/broadcasts", json={"name": "通知", "template": "您好"}, headers=alice)
    cid = (await resp.json())["id"]
    huge_cell = ("手机号,备注\n13900000001," + "x" * 200_000 + "\n").encode()
    wb = openpyxl.Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.append(["手机号"])
    sheet.append(["13900000001"])
    buffer = io.BytesIO()
    wb.save(buffer)
    truncated = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    for name, data in (("名单.csv", huge_cell), ("名单.xlsx", truncated)):
        resp = await client.post(
            f"/api/broadcasts/{cid}/recipients", data=upload_form(data, name), headers=alice
        )
        assert resp.status == 400, (name, await resp.text())
        assert "无法读取" in (await resp.json())["message"]


async def test_a_multipart_body_that_cannot_be_parsed_is_a_400(client) -> None:
    """No boundary, or part headers aiohttp cannot parse: the caller's fault, a 400 (found by fuzzing)."""
    alice = TOKENS["alice"]
    resp = await client.post("/api/broadcasts", json={"name": "通知", "template": "您好"}, headers=alice)
    cid = (await resp.json())["id"]
    for content_type, body in (
        ("multipart/form-data", b"x"),
        ("multipart/form-data; boundary=x", b"--x\r\nbroken"),
    ):
        for path in (f"/api/broadcasts/{cid}/recipients", "/api/broadcasts/groups"):
            headers = {**alice, "Content-Type": content_type}
            resp = await client.post(path, data=body, headers=headers)
            assert resp.status == 400, (path, content_type, await resp.text())
            assert "无法解析" in (await resp.json())["message"]


async def test_a_wechat_campaign_takes_a_follower_tag_as_wechat_reports_it(client) -> None:
    svc = client.app[SERVICE]
    alice = TOKENS["alice"]
    resp = await client.post(
        "/api/broadcasts", json={"name": "延时办公", "template": "12月9日起延长办公。", "channel": "wechat"},
        headers=alice,
    )  # fmt: skip
    cid = (await resp.json())["id"]
    url = f"/api/broadcasts/{cid}/wechat-tag"
    resp = await client.post(url, json={"tag_id": 7}, headers=alice)
    assert resp.status == 502 and "未连接公众号" in (await resp.json())["message"]  # no WeChat client wired

    async def tags() -> list[dict[str, object]]:
        return [{"id": 7, "name": "个体工商户", "count": 120}]

    svc.wechat_tags = tags
    assert (await client.post(url, json={"tag_id": "7"}, headers=alice)).status == 400
    assert (await client.post(url, json={"tag_id": 8}, headers=alice)).status == 400  # no such tag
    resp = await client.post(url, json={"tag_id": 7}, headers=alice)
    view = await resp.json()
    assert resp.status == 200 and (view["audience_tag"], view["recipients_total"]) == (7, 120)
    preview = await (await client.get(f"/api/broadcasts/{cid}/preview", headers=alice)).json()
    assert preview["blockers"] == [] and preview["recipients"] == 120
    assert (await client.post(url, json={"tag_id": 7}, headers=TOKENS["viewer"])).status == 403
