"""Staff accounts: creation, sign-in with lockout and a second factor, passwords, roles, disabling.

Sign-in failures lock the account after ``STAFF_LOCKOUT_FAILURES`` wrong passwords in a row, for
``STAFF_LOCKOUT_SECONDS``, doubling with each further lock (up to a day); a correct password resets the
count.  Failures from one client address are counted in Redis over 15 minutes; past
``STAFF_IP_MAX_FAILURES`` that address is refused before any password is checked.  Unknown usernames
cost the same argon2 time as known ones, and every failure answers the same way.

Usernames are canonical (NFKC, lower case, ``[a-z0-9._-]``), so one person cannot appear under two
spellings; everything that compares people compares account ids.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import redis.asyncio as aioredis
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.actor import Actor
from bot.core.clock import as_utc, utcnow
from bot.domains.staff.config import StaffSettings
from bot.domains.staff.models import StaffAccount
from bot.domains.staff.passwords import check_password, hash_password, needs_rehash, verify_password
from bot.domains.staff.roles import TOTP_ROLES, check_roles, permissions_of

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
TOTP_ISSUER = "政务服务助手"


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message is for staff, in Chinese."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def canonical_username(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw or "").strip().casefold()


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: ``account`` when it succeeded, else ``reason`` (and ``retry_after``)."""

    account: StaffAccount | None
    reason: str = ""  # bad_credentials | locked | address_limited | totp_required | totp_invalid
    retry_after: int = 0
    totp_enrollment_required: bool = False


def roles_of(account: StaffAccount) -> frozenset[str]:
    return frozenset(r for r in account.roles.split(",") if r)


def actor_for(account: StaffAccount, via: str = "session", scopes: Iterable[str] | None = None,
              token_id: int | None = None) -> Actor:  # fmt: skip
    roles = roles_of(account)
    permissions = permissions_of(roles)
    if scopes is not None:
        permissions = permissions & frozenset(scopes)
    return Actor(
        account_id=account.id,
        username=account.username,
        display_name=account.display_name,
        department=account.department,
        roles=roles,
        permissions=permissions,
        via=via,
        token_id=token_id,
    )


class Accounts:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        settings: StaffSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._redis = redis
        self.settings = settings or StaffSettings()
        self._clock = clock

    # ------------------------------------------------------------------------------------------ read

    async def get(self, account_id: int) -> StaffAccount | None:
        async with self._sessions() as session:
            return await session.get(StaffAccount, account_id)

    async def by_username(self, username: str) -> StaffAccount | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(StaffAccount).where(StaffAccount.username == canonical_username(username))
            )

    async def all(self) -> list[StaffAccount]:
        async with self._sessions() as session:
            return list(await session.scalars(select(StaffAccount).order_by(StaffAccount.username)))

    async def has_active_admin(self) -> bool:
        async with self._sessions() as session:
            rows = await session.scalars(select(StaffAccount.roles).where(StaffAccount.active.is_(True)))
            return any("admin" in r.split(",") for r in rows)

    # ------------------------------------------------------------------------------------------ write

    async def create(
        self,
        username: str,
        display_name: str,
        password: str,
        roles: Iterable[str],
        department: str = "",
        must_change_password: bool = True,
    ) -> StaffAccount:
        name = canonical_username(username)
        if not USERNAME.fullmatch(name):
            raise AccountError("用户名须为 2-64 位小写字母、数字、点、下划线或连字符，以字母或数字开头")
        if not display_name.strip():
            raise AccountError("请填写姓名")
        chosen = self._roles(roles)
        text = self._password(password, name, display_name)
        now = self._clock()
        account = StaffAccount(
            username=name,
            display_name=display_name.strip()[:64],
            department=department.strip()[:100],
            roles=",".join(sorted(chosen)),
            active=True,
            password_hash=await hash_password(text),
            must_change_password=must_change_password,
            password_changed_at=now,
            failed_logins=0,
            session_epoch=0,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._sessions() as session, session.begin():
                if await session.scalar(select(func.count()).where(StaffAccount.username == name)):
                    raise AccountError(f"用户名 {name} 已存在", 409)
                session.add(account)
        except IntegrityError:  # created at the same moment by another process
            raise AccountError(f"用户名 {name} 已存在", 409) from None
        return account

    async def _change(self, account_id: int, **values: object) -> StaffAccount:
        async with self._sessions() as session, session.begin():
            account = await session.get(StaffAccount, account_id, with_for_update=True)
            if account is None:
                raise AccountError("账号不存在", 404)
            for key, value in values.items():
                setattr(account, key, value)
            account.updated_at = self._clock()
            return account

    async def change_password(self, account_id: int, old: str, new: str) -> StaffAccount:
        account = await self.get(account_id)
        if account is None or not await verify_password(account.password_hash, old):
            raise AccountError("原密码不正确", 403)
        if old == new:
            raise AccountError("新密码不能与原密码相同")
        text = self._password(new, account.username, account.display_name)
        return await self._change(
            account_id,
            password_hash=await hash_password(text),
            must_change_password=False,
            password_changed_at=self._clock(),
            session_epoch=account.session_epoch + 1,
        )

    async def reset_password(self, account_id: int, temporary: str) -> StaffAccount:
        """By an administrator: a temporary password the person must change at next sign-in."""
        account = await self.get(account_id)
        if account is None:
            raise AccountError("账号不存在", 404)
        text = self._password(temporary, account.username, account.display_name)
        return await self._change(
            account_id,
            password_hash=await hash_password(text),
            must_change_password=True,
            failed_logins=0,
            locked_until=None,
            session_epoch=account.session_epoch + 1,
        )

    async def update(
        self,
        account_id: int,
        *,
        roles: Iterable[str] | None = None,
        department: str | None = None,
        display_name: str | None = None,
        active: bool | None = None,
    ) -> StaffAccount:
        account = await self.get(account_id)
        if account is None:
            raise AccountError("账号不存在", 404)
        values: dict[str, object] = {}
        if roles is not None:
            values["roles"] = ",".join(sorted(self._roles(roles)))
        if department is not None:
            values["department"] = department.strip()[:100]
        if display_name is not None and display_name.strip():
            values["display_name"] = display_name.strip()[:64]
        if active is not None:
            values["active"] = active
        if roles is not None or active is False:
            values["session_epoch"] = account.session_epoch + 1  # new rights take effect at once
        return await self._change(account_id, **values)

    async def sign_out_everywhere(self, account_id: int) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(StaffAccount)
                .where(StaffAccount.id == account_id)
                .values(session_epoch=StaffAccount.session_epoch + 1, updated_at=self._clock())
            )

    def _roles(self, roles: Iterable[str]) -> frozenset[str]:
        try:
            chosen = check_roles(roles)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        if not chosen:
            raise AccountError("至少选择一个角色")
        return chosen

    @staticmethod
    def _password(password: str, username: str, display_name: str) -> str:
        try:
            return check_password(password, username, display_name)
        except ValueError as exc:
            raise AccountError(str(exc)) from None

    # ------------------------------------------------------------------------------------------ sign-in

    def _address_key(self, client_ip: str) -> str:
        return f"staff:signin-failures:{client_ip or '-'}"

    async def sign_in(self, username: str, password: str, client_ip: str, totp_code: str = "") -> SignIn:
        failures = int(await self._redis.get(self._address_key(client_ip)) or 0)
        if failures >= self.settings.ip_max_failures:
            ttl = await self._redis.ttl(self._address_key(client_ip))
            return SignIn(None, "address_limited", max(1, ttl))
        account = await self.by_username(username)
        now = self._clock()
        locked_until = as_utc(account.locked_until) if account is not None else None
        if account is not None and locked_until is not None and locked_until > now:
            await self._count_address_failure(client_ip)
            return SignIn(None, "locked", int((locked_until - now).total_seconds()) + 1)
        ok = await verify_password(account.password_hash if account else None, password)
        if account is None or not ok or not account.active:
            await self._count_address_failure(client_ip)
            if account is not None and not ok:
                return await self._wrong_password(account)
            return SignIn(None, "bad_credentials")
        second = self._second_factor(account, totp_code)
        if second is not None:
            if second.reason == "totp_invalid":
                await self._count_address_failure(client_ip)
            return second
        await self._succeeded(account, password)
        return SignIn(account, totp_enrollment_required=self._must_enroll(account))

    async def _count_address_failure(self, client_ip: str) -> None:
        key = self._address_key(client_ip)
        count = await self._redis.incr(key)
        if count == 1:
            await self._redis.expire(key, self.settings.ip_window)

    async def _wrong_password(self, account: StaffAccount) -> SignIn:
        failures = account.failed_logins + 1
        values: dict[str, object] = {"failed_logins": failures}
        s = self.settings
        if failures >= s.lockout_failures and failures % s.lockout_failures == 0:
            times = failures // s.lockout_failures
            seconds = min(s.lockout_seconds * 2 ** (times - 1), s.lockout_max_seconds)
            values["locked_until"] = self._clock() + timedelta(seconds=seconds)
        await self._change(account.id, **values)
        return SignIn(None, "bad_credentials")

    def _must_enroll(self, account: StaffAccount) -> bool:
        return (
            self.settings.totp_required and bool(roles_of(account) & TOTP_ROLES) and not account.totp_secret
        )

    def _second_factor(self, account: StaffAccount, code: str) -> SignIn | None:
        if not account.totp_secret:
            return None
        if not code.strip():
            return SignIn(None, "totp_required")
        step = _totp_step(account.totp_secret, code.strip(), self._clock())
        if step is None or (account.totp_last_step is not None and step <= account.totp_last_step):
            return SignIn(None, "totp_invalid")  # wrong, or a code already used (ASVS 2.8.4)
        account.totp_last_step = step
        return None

    async def _succeeded(self, account: StaffAccount, password: str) -> None:
        values: dict[str, object] = {
            "failed_logins": 0,
            "locked_until": None,
            "last_login_at": self._clock(),
            "totp_last_step": account.totp_last_step,
        }
        if needs_rehash(account.password_hash):
            values["password_hash"] = await hash_password(password)
        await self._change(account.id, **values)

    # ------------------------------------------------------------------------------------------ TOTP

    async def start_totp(self, account_id: int) -> tuple[str, str]:
        """A new secret and its ``otpauth://`` URI; it takes effect once confirmed with a code."""
        account = await self.get(account_id)
        if account is None:
            raise AccountError("账号不存在", 404)
        secret = pyotp.random_base32()
        key = f"staff:totp-pending:{account_id}"
        await self._redis.set(key, secret, ex=600)
        uri = pyotp.TOTP(secret).provisioning_uri(name=account.username, issuer_name=TOTP_ISSUER)
        return secret, uri

    async def confirm_totp(self, account_id: int, code: str) -> StaffAccount:
        raw = await self._redis.get(f"staff:totp-pending:{account_id}")
        secret = raw.decode() if isinstance(raw, bytes) else raw
        step = _totp_step(secret, code.strip(), self._clock()) if secret else None
        if secret is None or step is None:
            raise AccountError("验证码不正确或已过期，请重新开始绑定")
        await self._redis.delete(f"staff:totp-pending:{account_id}")
        return await self._change(account_id, totp_secret=secret, totp_last_step=step)


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step ``code`` belongs to (now ±1 step), or None."""
    totp = pyotp.TOTP(secret)
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=offset * totp.interval)
        if totp.verify(code, for_time=moment, valid_window=0):
            return totp.timecode(moment)
    return None
