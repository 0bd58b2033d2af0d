"""Personal API tokens, browser sessions and the audit log on a real database and Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from bot.core.spreadsheet import safe_cell
from bot.domains.staff import Staff
from bot.domains.staff.accounts import AccountError
from bot.domains.staff.audit import AuditFilter, RequestInfo, export_csv, export_xlsx
from bot.domains.staff.models import AuditIsAppendOnlyError, StaffAudit
from bot.domains.staff.tokens import token_hash
from tests.support.staff import PASSWORD, Clock

# ---------------------------------------------------------------------------------------------- tokens


async def test_a_token_is_shown_once_stored_hashed_and_scoped(staff: Staff) -> None:
    owner = await staff.accounts.create(
        "zhangsan", "张三", PASSWORD, ["complaint_handler"], "县市场监督管理局"
    )
    token, row = await staff.tokens.create(owner, "CLI", ["complaints.read"], 30, owner.id)
    assert token.startswith("gvb_") and len(token) > 40
    assert row.token_hash == token_hash(token) and token not in (row.token_hash, row.scopes)
    assert row.last_eight == token[-8:]
    actor = await staff.tokens.authenticate(token, "10.0.0.5")
    assert actor is not None and actor.account_id == owner.id and actor.via == "token"
    assert actor.permissions == frozenset({"complaints.read"})  # the token's scopes, not all the roles give
    (listed,) = await staff.tokens.of(owner.id)
    assert listed.last_used_ip == "10.0.0.5" and listed.last_used_at is not None
    for wrong in ("", token + "x", "gvb_" + "a" * 40, token.replace("gvb_", "ghp_")):
        assert await staff.tokens.authenticate(wrong, "10.0.0.5") is None


async def test_token_scopes_stay_within_the_owner(staff: Staff) -> None:
    owner = await staff.accounts.create("zhangsan", "张三", PASSWORD, ["viewer"])
    with pytest.raises(AccountError, match="超出"):
        await staff.tokens.create(owner, "too much", ["accounts.manage"], 30, owner.id)
    with pytest.raises(AccountError, match="未知权限"):
        await staff.tokens.create(owner, "typo", ["complaint.read"], 30, owner.id)
    with pytest.raises(AccountError, match="有效期"):
        await staff.tokens.create(owner, "forever", ["kb.read"], 10_000, owner.id)
    token, _ = await staff.tokens.create(owner, "reader", ["kb.read", "reports.read"], 30, owner.id)
    await staff.accounts.update(owner.id, roles=["kb_editor"])  # reports.read taken away
    actor = await staff.tokens.authenticate(token, "10.0.0.5")
    assert actor is not None and actor.permissions == frozenset({"kb.read"})


async def test_expiry_revocation_and_disabling_stop_a_token(staff: Staff, clock: Clock) -> None:
    owner = await staff.accounts.create("zhangsan", "张三", PASSWORD, ["viewer"])
    short, _ = await staff.tokens.create(owner, "short", ["kb.read"], 1, owner.id)
    revoked, row = await staff.tokens.create(owner, "revoked", ["kb.read"], 30, owner.id)
    disabled, _ = await staff.tokens.create(owner, "disabled", ["kb.read"], 30, owner.id)
    assert await staff.tokens.revoke(row.id) and not await staff.tokens.revoke(row.id)
    assert await staff.tokens.authenticate(revoked, "ip") is None
    clock.advance(days=1, seconds=1)
    assert await staff.tokens.authenticate(short, "ip") is None
    assert await staff.tokens.authenticate(disabled, "ip") is not None
    await staff.accounts.update(owner.id, active=False)
    assert await staff.tokens.authenticate(disabled, "ip") is None


# ---------------------------------------------------------------------------------------------- sessions


async def test_sessions_idle_and_absolute_expiry(staff: Staff, clock: Clock) -> None:
    idle, most = staff.settings.session_idle, staff.settings.session_max
    first, session = await staff.sessions.create(7, 0, "10.0.0.1", "ua")
    second, _ = await staff.sessions.create(7, 0, "10.0.0.1", "ua")
    assert first != second and len(first) >= 43 and session.csrf  # a new id at every sign-in
    clock.advance(seconds=idle - 5)
    assert await staff.sessions.load(first) is not None  # used: its idle time restarts
    clock.advance(seconds=idle - 5)
    assert await staff.sessions.load(second) is None  # idle too long
    assert await staff.sessions.load(first) is not None
    used = 2 * (idle - 5)
    while used + idle - 5 < most:  # a busy session ...
        clock.advance(seconds=idle - 5)
        used += idle - 5
        assert await staff.sessions.load(first) is not None
    clock.advance(seconds=most - used + 1)
    assert await staff.sessions.load(first) is None  # ... still ends at the absolute limit
    third, _ = await staff.sessions.create(7, 0, "10.0.0.1", "ua")
    await staff.sessions.end(third)
    assert await staff.sessions.load(third) is None
    assert await staff.sessions.load("") is None and await staff.sessions.load("x" * 500) is None


# ---------------------------------------------------------------------------------------------- audit


async def test_the_audit_log_is_append_only(staff: Staff) -> None:
    owner = await staff.accounts.create("zhangsan", "张三", PASSWORD, ["admin"])
    from bot.domains.staff.accounts import actor_for

    await staff.audit.record(
        "account.create",
        actor=actor_for(owner),
        object_type="account",
        object_id=2,
        summary={"after": {"roles": ["viewer"]}},
        request=RequestInfo("10.0.0.1", "Mozilla", "req-1"),
    )
    (row,) = await staff.audit.query(AuditFilter())
    assert (row.username, row.roles, row.action, row.object_id, row.client_ip) == (
        "zhangsan",
        "admin",
        "account.create",
        "2",
        "10.0.0.1",
    )
    sessions = staff.audit._sessions
    async with sessions() as session:
        stored = await session.get(StaffAudit, row.id)
        assert stored is not None
        stored.outcome = "changed"
        with pytest.raises(AuditIsAppendOnlyError):
            await session.flush()
    async with sessions() as session:  # the database refuses too, past the ORM
        with pytest.raises(Exception, match="append-only"):
            await session.execute(text("UPDATE staff_audit SET outcome = 'x'"))
        await session.rollback()
        with pytest.raises(Exception, match="180"):
            await session.execute(text("DELETE FROM staff_audit"))


async def test_purge_never_removes_rows_younger_than_six_months(staff: Staff, clock: Clock) -> None:
    from bot.domains.staff.audit import AuditLog

    sessions = staff.audit._sessions
    for username, age in (("old", 200), ("middle", 100), ("new", 0)):
        await AuditLog(sessions, Clock(clock() - timedelta(days=age))).record("login", username=username)
    assert await staff.audit.purge(30) == 1  # asked for 30 days: the legal 180 apply
    assert {r.username for r in await staff.audit.query(AuditFilter())} == {"middle", "new"}
    assert await staff.audit.purge(365) == 0


def test_exports_escape_formulas() -> None:
    assert [safe_cell(v) for v in ("=HYPERLINK(1)", "+1", "-2", "@x", "\t=1", "张三", None)] == [
        "'=HYPERLINK(1)",
        "'+1",
        "'-2",
        "'@x",
        "'\t=1",
        "张三",
        "",
    ]
    row = StaffAudit(
        at=Clock()(), username="=cmd|' /C calc'!A0", roles="", action="login", object_type="", object_id="",
        outcome="ok", summary="{}", client_ip="", user_agent="", request_id="",
    )  # fmt: skip
    assert "'=cmd|" in export_csv([row]).decode("utf-8-sig")
    import io

    import openpyxl

    ws = openpyxl.load_workbook(io.BytesIO(export_xlsx([row]))).active
    assert ws is not None and ws.cell(2, 2).value == "'=cmd|' /C calc'!A0" and ws.cell(2, 2).data_type == "s"


def test_exports_hold_control_characters_a_workbook_cannot() -> None:
    """A username typed with a control character at the sign-in form lands in the audit log; its XLSX export
    was an openpyxl IllegalCharacterError (a 500, found by the schemathesis fuzzing)."""
    import io

    import openpyxl

    assert safe_cell("a\x01b\x1f\tc\nd") == "a\ufffdb\ufffd\tc\nd"  # tab and newline are fine
    assert safe_cell("\x00=1") == "\ufffd=1"
    row = StaffAudit(
        at=Clock()(), username="bad\x07name", roles="", action="login", object_type="", object_id="",
        outcome="failed", summary="{}", client_ip="", user_agent="ua\x1b[0m", request_id="",
    )  # fmt: skip
    ws = openpyxl.load_workbook(io.BytesIO(export_xlsx([row]))).active
    assert ws is not None and ws.cell(2, 2).value == "bad\ufffdname" and ws.cell(2, 10).value == "ua\ufffd[0m"


async def test_a_nul_character_is_stored_and_searched_for_not_a_database_error(staff: Staff) -> None:
    """PostgreSQL's text holds no NUL: a username typed with one at the sign-in form, or an audit filter with
    one, was a DBAPIError 500 there (found by the schemathesis fuzzing); SQLite stores it as it is."""
    await staff.audit.record("login", username="bo\x00ss", outcome="failed", summary={"reason": "x\x00"})
    rows = await staff.audit.query(AuditFilter(outcome="fail\x00ed"))
    assert rows == []
    (row,) = await staff.audit.query(AuditFilter(action="login"))
    assert row.username in ("bo\x00ss", "bo\ufffdss")  # PostgreSQL: the NUL becomes U+FFFD
