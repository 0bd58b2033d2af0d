"""Staff accounts on a real database and Redis: password rules, canonical usernames, sign-in with lockout
and back-off per account and per address, TOTP, password changes, disabling."""

from __future__ import annotations

import pyotp
import pytest

from bot.domains.staff import DEMO_ACCOUNTS, DEMO_PASSWORD, Staff
from bot.domains.staff.accounts import AccountError, actor_for
from bot.domains.staff.passwords import WeakPassword, check_password
from tests.support.staff import OTHER_PASSWORD, PASSWORD, Clock


@pytest.mark.parametrize(
    ("label", "password", "error"),
    [
        ("too short", "Abc-12345", "至少 12"),
        ("too long", "Ab1-" * 40, "最多 128"),
        ("one kind only", "abcdefghijklmnopq", "至少两类"),
        ("contains the username", "zhangsan-Lantern-99", "用户名"),
        ("common", "Password1234", "太常见"),
        ("keyboard walk", "qwertyuiop123", "太常见"),
    ],
)
def test_password_rules(label: str, password: str, error: str) -> None:
    with pytest.raises(WeakPassword, match=error):
        check_password(password, "zhangsan", "张三")


def test_a_passphrase_passes() -> None:
    assert check_password(PASSWORD, "zhangsan", "张三") == PASSWORD
    assert check_password(DEMO_PASSWORD, "admin", "演示管理员") == DEMO_PASSWORD


async def test_usernames_are_canonical(staff: Staff) -> None:
    account = await staff.accounts.create(
        "ZhangSan", "张三", PASSWORD, ["complaint_handler"], "县市场监督管理局"
    )
    assert account.username == "zhangsan"
    for spelling in ("zhangsan", "ZHANGSAN", "Ｚｈａｎｇｓａｎ", " zhangsan "):
        with pytest.raises(AccountError, match="已存在"):
            await staff.accounts.create(spelling, "张三", PASSWORD, ["viewer"])
        found = await staff.accounts.by_username(spelling)
        assert found is not None and found.id == account.id
    with pytest.raises(AccountError, match="用户名"):
        await staff.accounts.create("张三", "张三", PASSWORD, ["viewer"])
    with pytest.raises(AccountError, match="未知角色"):
        await staff.accounts.create("lisi", "李四", PASSWORD, ["root"])


async def test_sign_in_and_the_actor(staff: Staff) -> None:
    account = await staff.accounts.create(
        "zhangsan", "张三", PASSWORD, ["complaint_handler"], "县市场监督管理局"
    )
    result = await staff.accounts.sign_in("ZhangSan", PASSWORD, "10.0.0.1")
    assert result.account is not None and result.account.id == account.id
    actor = actor_for(result.account)
    assert actor.can("complaints.handle") and not actor.can("complaints.supervise")
    assert actor.name == "张三(zhangsan)" and actor.department == "县市场监督管理局"
    assert (await staff.accounts.sign_in("zhangsan", "wrong", "10.0.0.1")).reason == "bad_credentials"
    assert (await staff.accounts.sign_in("nobody", PASSWORD, "10.0.0.1")).reason == "bad_credentials"


async def test_lockout_with_back_off(staff: Staff, clock: Clock) -> None:
    await staff.accounts.create("zhangsan", "张三", PASSWORD, ["viewer"])
    for _ in range(3):  # STAFF_LOCKOUT_FAILURES=3 in the fixture
        assert (await staff.accounts.sign_in("zhangsan", "wrong", f"10.0.0.{_}")).reason == "bad_credentials"
    locked = await staff.accounts.sign_in("zhangsan", PASSWORD, "10.0.1.1")
    assert locked.reason == "locked" and 1 <= locked.retry_after <= 61  # the right password waits too
    clock.advance(seconds=61)
    for _ in range(3):
        await staff.accounts.sign_in("zhangsan", "wrong", "10.0.2.1")
    second = await staff.accounts.sign_in("zhangsan", PASSWORD, "10.0.2.2")
    assert second.reason == "locked" and 60 < second.retry_after <= 121  # doubled
    clock.advance(seconds=121)
    assert (await staff.accounts.sign_in("zhangsan", PASSWORD, "10.0.2.3")).account is not None
    account = await staff.accounts.by_username("zhangsan")
    assert account is not None and account.failed_logins == 0 and account.locked_until is None


async def test_an_address_with_many_failures_is_refused(staff: Staff) -> None:
    await staff.accounts.create("zhangsan", "张三", PASSWORD, ["viewer"])
    for i in range(8):  # STAFF_IP_MAX_FAILURES=8: guesses at many usernames from one address
        await staff.accounts.sign_in(f"user{i}", "guess", "203.0.113.9")
    refused = await staff.accounts.sign_in("zhangsan", PASSWORD, "203.0.113.9")
    assert refused.reason == "address_limited" and refused.retry_after > 0
    assert (await staff.accounts.sign_in("zhangsan", PASSWORD, "198.51.100.7")).account is not None


async def test_totp_second_factor(staff: Staff, clock: Clock) -> None:
    account = await staff.accounts.create("approver1", "审核员", PASSWORD, ["approver"])
    secret, uri = await staff.accounts.start_totp(account.id)
    assert uri.startswith("otpauth://totp/") and "approver1" in uri
    with pytest.raises(AccountError, match="验证码"):
        await staff.accounts.confirm_totp(account.id, "000000")
    totp = pyotp.TOTP(secret)
    await staff.accounts.confirm_totp(account.id, totp.at(clock()))
    assert (await staff.accounts.sign_in("approver1", PASSWORD, "10.0.0.1")).reason == "totp_required"
    bad = await staff.accounts.sign_in("approver1", PASSWORD, "10.0.0.1", "123456")
    assert bad.reason == "totp_invalid" or totp.at(clock()) == "123456"
    clock.advance(seconds=30)
    ok = await staff.accounts.sign_in("approver1", PASSWORD, "10.0.0.1", totp.at(clock()))
    assert ok.account is not None
    replay = await staff.accounts.sign_in("approver1", PASSWORD, "10.0.0.1", totp.at(clock()))
    assert replay.reason == "totp_invalid"  # a code works once


async def test_totp_enrollment_is_demanded_when_required(database_url, redis_client, clock) -> None:
    from bot.core.db import create_engine, session_factory
    from bot.domains.staff.config import StaffSettings

    engine = create_engine(database_url)
    staff = Staff.build(session_factory(engine), redis_client, StaffSettings(totp_required=True), clock)
    await staff.accounts.create("boss", "管理员", PASSWORD, ["admin"])
    await staff.accounts.create("reader", "只读", PASSWORD, ["viewer"])
    assert (await staff.accounts.sign_in("boss", PASSWORD, "10.0.0.1")).totp_enrollment_required
    assert not (await staff.accounts.sign_in("reader", PASSWORD, "10.0.0.1")).totp_enrollment_required
    await engine.dispose()


async def test_password_change_and_reset(staff: Staff) -> None:
    account = await staff.accounts.create("zhangsan", "张三", PASSWORD, ["viewer"])
    assert account.must_change_password
    with pytest.raises(AccountError, match="原密码"):
        await staff.accounts.change_password(account.id, "wrong", OTHER_PASSWORD)
    with pytest.raises(AccountError, match="至少 12"):
        await staff.accounts.change_password(account.id, PASSWORD, "short-1")
    changed = await staff.accounts.change_password(account.id, PASSWORD, OTHER_PASSWORD)
    assert not changed.must_change_password and changed.session_epoch == account.session_epoch + 1
    assert (await staff.accounts.sign_in("zhangsan", OTHER_PASSWORD, "10.0.0.1")).account is not None
    reset = await staff.accounts.reset_password(account.id, PASSWORD)
    assert reset.must_change_password and reset.session_epoch == changed.session_epoch + 1


async def test_a_disabled_account_cannot_sign_in(staff: Staff) -> None:
    account = await staff.accounts.create("zhangsan", "张三", PASSWORD, ["viewer"])
    disabled = await staff.accounts.update(account.id, active=False)
    assert disabled.session_epoch == account.session_epoch + 1
    assert (await staff.accounts.sign_in("zhangsan", PASSWORD, "10.0.0.1")).reason == "bad_credentials"


async def test_demo_accounts_cover_every_role_once(staff: Staff) -> None:
    assert await staff.ensure_demo_accounts() == [u for u, *_ in DEMO_ACCOUNTS]
    assert await staff.ensure_demo_accounts() == []
    assert await staff.accounts.has_active_admin()
    for username, *_ in DEMO_ACCOUNTS:
        assert (await staff.accounts.sign_in(username, DEMO_PASSWORD, "127.0.0.1")).account is not None
