"""Campaigns without sending: approval rules, the state machine, recipient uploads (encodings, XLSX,
column mapping, groups), exclusions, preview numbers and blockers, template errors, bad files."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import openpyxl
import pytest

from bot.core.db import create_engine, session_factory
from bot.core.phone import to_e164
from sms_gateway.broadcast.config import BroadcastSettings, parse_window
from sms_gateway.broadcast.models import BroadcastRecipient, CampaignState
from sms_gateway.broadcast.recipients import RecipientFileError
from sms_gateway.broadcast.service import BroadcastError, BroadcastService
from sms_gateway.broadcast.template import TemplateError, check_template, render, variables
from sms_gateway.compose import Composer
from sms_gateway.optout import OptOutStore
from tests.support.broadcast import csv_bytes, phone, recipients_csv

TEMPLATE = "{姓名}您好：{企业}的年报截止日期为6月30日，请及时办理。"


@pytest.fixture
async def svc(database_url) -> AsyncIterator[BroadcastService]:
    engine = create_engine(database_url)
    try:
        yield BroadcastService(
            BroadcastSettings(max_recipients=50_000), session_factory(engine), Composer("县行政服务中心")
        )
    finally:
        await engine.dispose()


async def draft(svc: BroadcastService, template: str = TEMPLATE, **kw: object) -> str:
    c = await svc.create(name="年报提醒", template=template, created_by="alice", **kw)  # type: ignore[arg-type]
    return str(c["id"])


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def recipient_rows(svc: BroadcastService, cid: str) -> list[BroadcastRecipient]:
    return await svc._recipients(cid)


# ------------------------------------------------------------------------------------------ approval


async def test_second_person_approval_and_state_machine(svc: BroadcastService) -> None:
    cid = await draft(svc)
    await svc.set_recipients(cid, actor="alice", upload=("a.csv", recipients_csv(3)))
    with pytest.raises(BroadcastError, match="不能审核通过"):
        await svc.approve(cid, "bob")  # not submitted yet
    assert (await svc.submit(cid, "alice"))["state"] == CampaignState.PENDING_APPROVAL
    with pytest.raises(BroadcastError, match="起草人不能审核") as err:
        await svc.approve(cid, "alice")
    assert err.value.status == 403
    assert (await svc.reject(cid, "bob", "落款不对"))["state"] == CampaignState.DRAFT
    await svc.submit(cid, "alice")
    view = await svc.approve(cid, "bob")
    assert view["state"] == CampaignState.SCHEDULED and view["approved_by"] == "bob"
    with pytest.raises(BroadcastError, match="只有草稿"):
        await svc.set_recipients(cid, actor="alice", upload=("a.csv", recipients_csv(3)))
    with pytest.raises(BroadcastError, match="不能继续"):
        await svc.resume(cid, "bob")
    assert (await svc.start(cid, "bob"))["state"] == CampaignState.SENDING
    assert (await svc.pause(cid, "bob"))["state"] == CampaignState.PAUSED
    assert (await svc.resume(cid, "bob"))["state"] == CampaignState.SENDING
    assert (await svc.cancel(cid, "bob"))["state"] == CampaignState.CANCELLED
    with pytest.raises(BroadcastError, match="不能取消"):
        await svc.cancel(cid, "bob")


async def test_single_person_sites_can_switch_approval_off(svc: BroadcastService) -> None:
    svc.settings = BroadcastSettings(approval_required=False)
    cid = await draft(svc)
    await svc.set_recipients(cid, actor="alice", upload=("a.csv", recipients_csv(2)))
    assert (await svc.approve(cid, "alice"))["state"] == CampaignState.SCHEDULED  # straight from the draft


async def test_approval_is_refused_while_blockers_remain(svc: BroadcastService) -> None:
    cid = await draft(svc)
    with pytest.raises(BroadcastError, match="收件人名单为空"):
        await svc.submit(cid, "alice")


def test_settings_from_env() -> None:
    s = BroadcastSettings.from_env(
        {"BROADCAST_APPROVAL": "off", "BROADCAST_RATE": "50", "BROADCAST_WINDOW": "09:00-17:30"}
    )
    assert not s.approval_required and s.rate == 50 and s.window == (540, 1050)
    assert BroadcastSettings.from_env({}).window == (480, 1260)
    with pytest.raises(ValueError):
        parse_window("21:00-08:00")
    with pytest.raises(ValueError):
        BroadcastSettings.from_env({"BROADCAST_RATE": "0"})


# ------------------------------------------------------------------------------------------ templates


def test_template_variables_and_errors() -> None:
    assert variables("{姓名}您好，{企业}：{姓名}") == ["姓名", "企业"]
    assert render("{a}-{b}", {"a": "1", "b": "2"}) == "1-2"
    for bad in ("", "  ", "您好{姓名", "您好}", "您好{ }"):
        with pytest.raises(TemplateError):
            check_template(bad)


async def test_create_rejects_bad_templates_and_fields(svc: BroadcastService) -> None:
    with pytest.raises(BroadcastError, match="花括号"):
        await draft(svc, "您好{姓名")
    with pytest.raises(BroadcastError, match="用途"):
        await draft(svc, purpose="营销")
    with pytest.raises(BroadcastError, match="发送时段"):
        await draft(svc, window="25:00-26:00")
    with pytest.raises(BroadcastError, match="群发渠道"):
        await draft(svc, channel="fax")


# ------------------------------------------------------------------------------------------ uploads


async def test_gbk_csv_exclusions_and_opt_outs(svc: BroadcastService) -> None:
    await OptOutStore(svc.sessions).opt_out(to_e164(phone(2)), source="keyword")
    data = csv_bytes(
        [
            ["序号", "手机号码", "姓名", "企业"],
            [1, phone(1), "张三", "甲公司"],
            [2, "12345", "李四", "乙公司"],  # invalid
            [
                3,
                "86 " + phone(1)[:3] + "-" + phone(1)[3:7] + "-" + phone(1)[7:],
                "张三",
                "甲公司",
            ],  # duplicate
            [4, phone(2), "王五", "丙公司"],  # opted out
            [5, "+86" + phone(3), "赵六", "丁公司"],
            ["", "", "", ""],  # blank line: ignored
        ],
        encoding="gbk",
    )
    cid = await draft(svc)
    result = await svc.set_recipients(cid, actor="alice", upload=("名单.csv", data))
    assert result["encoding"] == "gb18030"
    assert (
        result["total"],
        result["eligible"],
        result["invalid"],
        result["duplicate"],
        result["opted_out"],
    ) == (
        5,
        2,
        1,
        1,
        1,
    )
    p = await svc.preview(cid)
    assert p.recipients == 2 and p.total_rows == 5
    assert p.exclusions == {"invalid": 1, "duplicate": 1, "opted_out": 1}
    reasons = {(r["reason"], r["source"], r["raw"]) for r in p.exclusion_rows}
    assert ("invalid", "upload:3", "12345") in reasons
    assert any(r[0] == "duplicate" and r[1] == "upload:4" for r in reasons)
    assert (
        p.samples[0]["body"]
        == "【县行政服务中心】张三您好：甲公司的年报截止日期为6月30日，请及时办理。回T退订"
    )
    assert p.blockers == []


async def test_xlsx_with_column_mapping_and_saved_group(svc: BroadcastService) -> None:
    data = xlsx_bytes(
        [
            ["企业年报提醒名单"],
            ["联系电话", "联系人", "单位名称"],
            [int(phone(5)), "钱七", "戊公司"],
            [phone(6), "孙八", "己公司"],
        ]
    )
    cid = await draft(svc)
    with pytest.raises(RecipientFileError, match="缺少模板变量对应的列"):
        await svc.set_recipients(cid, actor="alice", upload=("list.xlsx", data))
    result = await svc.set_recipients(
        cid, actor="alice", upload=("list.xlsx", data), column_map={"姓名": "联系人", "企业": "单位名称"}
    )
    assert result["eligible"] == 2 and result["encoding"] == "xlsx"
    group = await svc.save_group(name="重点企业", actor="alice", upload=("g.csv", recipients_csv(3, start=5)))
    assert group["members"] == 3
    assert [g["name"] for g in await svc.groups()] == ["重点企业"]
    # upload + group: the group's copies of phone(5) and phone(6) are duplicates
    result = await svc.set_recipients(
        cid,
        actor="alice",
        upload=("list.xlsx", data),
        column_map={"姓名": "联系人", "企业": "单位名称"},
        group_ids=[group["group_id"]],
    )
    assert (result["total"], result["eligible"], result["duplicate"]) == (5, 3, 2)
    rows = await recipient_rows(svc, cid)
    assert rows[-1].source == f"group:{group['group_id']}" and json.loads(rows[-1].variables)["姓名"] == "张2"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.csv", b"\xff\xfe\x00", "无法识别文件编码"),  # UTF-16 BOM but an odd number of bytes
        ("a.csv", "手机号,姓名\n13900000001,张三".encode("utf-16-le"), "无法识别文件编码"),  # no BOM
        ("a.csv", b"\x80\x81\xff\xfe\xfd", "无法识别文件编码"),
        ("a.csv", "姓名,企业\n张三,甲".encode(), "找不到手机号列"),
        ("a.csv", "手机号,姓名\n13900000001,张三".encode(), "缺少模板变量对应的列"),  # no 企业 column
        ("a.csv", "手机号,姓名,企业\n".encode(), "没有收件人"),
        ("a.csv", b"", "文件为空"),
        ("a.pdf", b"%PDF", "不支持的文件类型"),
        ("a.xlsx", b"PK\x03\x04 not really", "无法读取 Excel"),
    ],
)
async def test_bad_files_are_rejected_whole(
    svc: BroadcastService, name: str, data: bytes, message: str
) -> None:
    cid = await draft(svc)
    await svc.set_recipients(cid, actor="alice", upload=("ok.csv", recipients_csv(4)))
    with pytest.raises((RecipientFileError, BroadcastError), match=message):
        await svc.set_recipients(cid, actor="alice", upload=(name, data))
    rows = await recipient_rows(svc, cid)
    assert len(rows) == 4  # the previous list is untouched: nothing half-imported
    assert (await svc.view(cid))["recipients_total"] == 4


async def test_100000_rows_are_refused_with_nothing_imported(svc: BroadcastService) -> None:
    cid = await draft(svc)
    with pytest.raises(RecipientFileError, match="文件有 100000 行，单次群发上限 50000 行"):
        await svc.set_recipients(cid, actor="alice", upload=("big.csv", recipients_csv(100_000)))
    assert await recipient_rows(svc, cid) == []


# ------------------------------------------------------------------------------------------ preview


async def test_preview_numbers_and_blockers(svc: BroadcastService) -> None:
    svc.settings = BroadcastSettings(rate=10.0)
    cid = await draft(svc, "{姓名}您好：【重要】请于{截止日期}前办理。")
    data = csv_bytes(
        [
            ["手机号", "姓名", "截止日期"],
            [phone(1), "张三", "6月30日"],
            [phone(2), "李四", ""],
            [phone(3), "王五", "7月1日"],
        ]
    )
    await svc.set_recipients(cid, actor="alice", upload=("a.csv", data))
    p = await svc.preview(cid)
    assert p.variables == ["姓名", "截止日期"]
    assert any("【】" in b for b in p.blockers)
    assert any("第3行缺少 {截止日期}" in b for b in p.blockers)
    # the two complete rows: each one UCS-2 segment (signature + body + 回T退订 ≤ 70)
    assert p.segments_per_message == {"min": 1, "max": 1} and p.segments_total == 2
    assert p.estimated_seconds == 0.2
    with pytest.raises(BroadcastError, match="存在阻止发送的问题"):
        await svc.submit(cid, "alice")


async def test_preview_counts_segments_and_duration_and_segment_cap(svc: BroadcastService) -> None:
    svc.settings = BroadcastSettings(rate=2.0)
    long_body = "依法纳税是每个公民的义务。" * 10  # ~130 characters: 3 segments with the signature
    cid = await draft(svc, "{姓名}：" + long_body)
    await svc.set_recipients(cid, actor="alice", upload=("a.csv", recipients_csv(4)))
    p = await svc.preview(cid)
    assert p.segments_per_message == {"min": 3, "max": 3}
    assert p.segments_total == 12 and p.estimated_seconds == 6.0 and p.blockers == []
    too_long = await draft(svc, "{姓名}：" + "普法宣传内容。" * 100)  # > 8 segments
    await svc.set_recipients(too_long, actor="alice", upload=("a.csv", recipients_csv(2)))
    p = await svc.preview(too_long)
    assert any("超过单条上限 8 段" in b for b in p.blockers)


async def test_uploads_are_parsed_off_the_event_loop(svc: BroadcastService, monkeypatch) -> None:
    """A 50,000-row file takes seconds to read: it must not stall the loop that answers citizens."""
    import threading

    from sms_gateway.broadcast import audience

    threads: list[str] = []
    real_parse, real_members = audience.parse_upload, audience._group_members

    def parse(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return real_parse(*args, **kwargs)  # type: ignore[arg-type]

    def members(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return real_members(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audience, "parse_upload", parse)
    monkeypatch.setattr(audience, "_group_members", members)
    cid = await draft(svc)
    await svc.set_recipients(cid, actor="alice", upload=("名单.csv", recipients_csv(3)))
    await svc.save_group(name="重点企业", actor="alice", upload=("名单.csv", recipients_csv(3)))
    assert len(threads) >= 2 and threading.main_thread().name not in threads


async def test_a_group_upload_over_the_size_limit_is_refused(svc: BroadcastService) -> None:
    big = b"x" * (svc.settings.max_upload_bytes + 1)
    with pytest.raises(BroadcastError) as err:
        await svc.save_group(name="太大", actor="alice", upload=("名单.csv", big))
    assert err.value.status == 413


# ------------------------------------------------------------------------------------------ Aliyun templates

NOTICE = "{name}您好：{matter}，请于{deadline}前到县行政服务中心办理。详询0797-3322110"


@pytest.fixture
async def aliyun_svc(database_url) -> AsyncIterator[BroadcastService]:
    from sms_gateway.aliyun.compose import TemplateComposer
    from sms_gateway.aliyun.templates import TemplateRegistry

    engine = create_engine(database_url)
    try:
        composer = TemplateComposer(TemplateRegistry.load(), "县行政服务中心")
        yield BroadcastService(BroadcastSettings(), session_factory(engine), composer)
    finally:
        await engine.dispose()


async def test_an_aliyun_campaign_previews_its_registered_template(aliyun_svc: BroadcastService) -> None:
    cid = await draft(aliyun_svc, NOTICE)
    data = csv_bytes(
        [["手机号", "name", "matter", "deadline"], [phone(1), "张三", "营业执照年报", "6月30日"]]
    )
    await aliyun_svc.set_recipients(cid, actor="alice", upload=("a.csv", data))
    p = await aliyun_svc.preview(cid)
    assert p.blockers == []
    assert p.template is not None and (p.template["code"], p.template["status"]) == ("SMS_480008", "approved")
    assert p.template["variables"]["name"] == {"type": "姓名", "max": 20}
    assert p.samples[0]["body"] == (  # exactly the template's wording, no 回T退订 (a notification template)
        "【县行政服务中心】张三您好：营业执照年报，请于6月30日前到县行政服务中心办理。详询0797-3322110"
    )


@pytest.mark.parametrize(
    ("label", "template", "row", "blocker"),
    [
        ("free text", "{name}您好：请来办年报。", ["张三"], "只能发送已审核的模板"),
        ("a template still under review", "{name}您好：会议改期至{time}，地点{place}。",
         ["张三", "5日", "三楼"], "SMS_480009（broadcast_meeting）审核中"),
        ("a value over its limit", NOTICE, ["张三", "营业执照年报" * 7, "6月30日"],
         "第2行变量 matter（其他）有 42 个字"),
        ("a URL in a value", NOTICE, ["张三", "见 www.gov.cn 通知", "6月30日"], "第2行变量 matter 含网址"),
    ],
)  # fmt: skip
async def test_an_aliyun_campaign_is_blocked_until_it_fits_an_approved_template(
    aliyun_svc: BroadcastService, label: str, template: str, row: list[str], blocker: str
) -> None:
    cid = await draft(aliyun_svc, template)
    names = variables(template)
    data = csv_bytes([["手机号", *names], [phone(1), *row[: len(names)]]])
    await aliyun_svc.set_recipients(cid, actor="alice", upload=("a.csv", data))
    p = await aliyun_svc.preview(cid)
    assert any(blocker in b for b in p.blockers), (label, p.blockers)
    with pytest.raises(BroadcastError, match="存在阻止发送的问题"):
        await aliyun_svc.submit(cid, "alice")
