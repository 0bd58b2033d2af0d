"""督办单 over HTTP: a 督办 note from 电子监察 reaches the department it names — on every page its staff
open until answered — and nobody else's; the department signs for it and answers it; the supervisor sees
the answer on 电子监察.  Each step audited; forms need their CSRF token."""

from __future__ import annotations

import json

from bot.domains.staff.audit import AuditFilter
from bot.gateway.app import Services
from tests.support.web import csrf_of

BANNER = "本部门有 1 张督办单待签收或反馈"


async def _urge(sign_in, note: str) -> None:
    boss = await sign_in("boss7", ["viewer", "complaint_supervisor"])
    page = await (await boss.get("/console/supervision")).text()
    resp = await boss.post(
        "/console/supervision/urge",
        data={
            "csrf_token": csrf_of(page),
            "department": "民政局",
            "ticket_no": "202601010000001",
            "note": note,
        },
        allow_redirects=False,
    )
    assert resp.status == 302


async def test_an_urge_reaches_its_department_which_signs_and_answers(sign_in, services: Services) -> None:
    await _urge(sign_in, "超期请说明原因，联系人 13812345678")
    mz = await sign_in("mz1", ["complaint_handler"], department="民政局")
    queue = await (await mz.get("/console/complaints")).text()
    assert BANNER in queue and 'href="/console/urges"' in queue
    other = await sign_in("ga1", ["complaint_handler"], department="公安局")
    assert BANNER not in await (await other.get("/console/complaints")).text()
    assert "没有督办单" in await (await other.get("/console/urges")).text()

    listed = await (await mz.get("/console/urges")).text()
    assert "超期请说明原因" in listed and "138****5678" in listed and "13812345678" not in listed
    assert "待签收" in listed and "202601010000001" in listed
    assert services.staff is not None
    (row,) = await services.staff.audit.query(AuditFilter(action="supervision.urge"))
    urge_id = json.loads(row.summary or "{}")["urge"]

    # another department cannot touch it: 404, as if it did not exist
    other_page = await (await other.get("/console/urges")).text()
    stranger = await other.post(f"/console/urges/{urge_id}/sign", data={"csrf_token": csrf_of(other_page)})
    assert stranger.status == 404
    no_token = await mz.post(f"/console/urges/{urge_id}/sign", data={}, allow_redirects=False)
    assert no_token.status == 403

    signed = await mz.post(
        f"/console/urges/{urge_id}/sign", data={"csrf_token": csrf_of(listed)}, allow_redirects=False
    )
    assert signed.status == 302 and signed.headers["Location"] == "/console/urges?done=sign"
    after = await (await mz.get("/console/urges?done=sign")).text()
    assert "已签收。" in after and "已签收" in after and "mz1" in after
    again = await mz.post(f"/console/urges/{urge_id}/sign", data={"csrf_token": csrf_of(after)})
    assert again.status == 400 and "已被他人处理" in await again.text()

    empty = await mz.post(
        f"/console/urges/{urge_id}/answer", data={"csrf_token": csrf_of(after), "answer": " "}
    )
    assert empty.status == 400 and f'id="answer-{urge_id}-error"' in await empty.text()
    answered = await mz.post(
        f"/console/urges/{urge_id}/answer",
        data={"csrf_token": csrf_of(after), "answer": "已补齐材料，今日办结"},
        allow_redirects=False,
    )
    assert answered.status == 302
    assert BANNER not in await (await mz.get("/console/complaints")).text()
    boss = await sign_in("boss7", ["viewer", "complaint_supervisor"])
    supervision = await (await boss.get("/console/supervision")).text()
    assert "已反馈" in supervision and "已补齐材料，今日办结" in supervision
    assert services.staff is not None
    steps = [r.action for r in await services.staff.audit.query(AuditFilter(object_id=str(urge_id)))]
    assert {"supervision.urge.answer", "supervision.urge.sign"} <= set(steps)


async def test_who_sees_which_urges(sign_in) -> None:
    await _urge(sign_in, "请加快办理")
    boss = await sign_in("boss7", ["viewer", "complaint_supervisor"])
    everyone = await (await boss.get("/console/urges")).text()
    assert "请加快办理" in everyone and "所有部门" in everyone and BANNER not in everyone
    nobody = await sign_in("nodept", ["viewer"], department="")
    page = await (await nobody.get("/console/urges")).text()
    assert "没有所属部门" in page and "请加快办理" not in page
    reader = await sign_in("mzview", ["viewer"], department="民政局")
    page = await (await reader.get("/console/urges")).text()
    assert "请加快办理" in page and "提交反馈" not in page  # reading only
    assert (await reader.post("/console/urges/1/sign", data={"csrf_token": csrf_of(page)})).status == 403
    kb = await sign_in("kbonly", ["kb_editor"])
    assert (await kb.get("/console/urges", allow_redirects=False)).status == 403


async def test_an_id_out_of_range_is_a_404(sign_in) -> None:
    mz = await sign_in("mz9", ["complaint_handler"], department="民政局")
    page = await (await mz.get("/console/urges")).text()
    for bad in ("99999999999", "0"):
        assert (await mz.post(f"/console/urges/{bad}/sign", data={"csrf_token": csrf_of(page)})).status == 404
