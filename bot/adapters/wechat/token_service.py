"""The central access-token service, shared by every process through Redis.

WeChat allows one valid token family per AppID, so uncoordinated refreshers invalidate each other (the
classic 40001 storm, see the research note, pitfall 1).  This service:

* uses ``POST /cgi-bin/stable_token`` (normal mode returns the same token while it is valid; isolated from
  ``/cgi-bin/token``; 10k/min, 500k/day) and never calls ``/cgi-bin/token``;
* caches ``{"access_token", "expires_at", "refresh_at"}`` as JSON in ``wx:token:{appid}`` with
  TTL = ``expires_in``;
* refreshes ``refresh_margin`` seconds before expiry (at most half the lifetime, so a short ``expires_in``
  cannot cause a refresh on every call);
* makes the refresh single-flight across processes with a Redis lock ``wx:token:{appid}:lock`` (``SET NX
  PX`` with a random value, released by compare-and-delete).  Only the holder calls WeChat and writes the
  cache (the write is conditional on still holding the lock, so a slow holder whose lock expired cannot
  overwrite a newer token).  Other callers keep using the cached token while it is still valid, or poll the
  cache until a new token appears, for at most ``lock_wait`` seconds, then raise
  :class:`TokenUnavailableError`;
* ``invalidate(bad_token)`` (after 40001/42001) compare-and-deletes the cached token and fetches again.  If
  ``stable_token`` hands back the very token WeChat just rejected, it asks for ``force_refresh: true``, which
  WeChat allows 20 times a day, 30 s apart ("否则不会刷新").  That budget is tracked in Redis
  (``wx:token:{appid}:force:day:{YYYYMMDD}`` in Beijing time, ``wx:token:{appid}:force:last``) and a refresh
  beyond it raises :class:`ForceRefreshLimitError`.

Neither the token nor the secret is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from redis.asyncio import Redis

from bot.adapters.wechat.api_client import (
    ForceRefreshLimitError,
    TokenUnavailableError,
    WeChatAPIError,
    WeChatTransportError,
    request_json,
)

log = logging.getLogger(__name__)

_BEIJING = timedelta(hours=8)
#: While another process refreshes, a cached token with at least this many seconds left is used meanwhile.
_STILL_USABLE = 30.0

# KEYS[1] token key; ARGV[1] the rejected token.  Deletes the cached entry only if it holds that token.
_COMPARE_AND_DELETE_TOKEN = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, entry = pcall(cjson.decode, raw)
if ok and type(entry) == 'table' and entry['access_token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] lock key; ARGV[1] our lock value.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] lock key, KEYS[2] token key; ARGV[1] our lock value, ARGV[2] entry JSON, ARGV[3] TTL seconds.
_STORE_IF_LOCK_HELD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"""

# KEYS[1] daily counter, KEYS[2] "last force refresh" marker;
# ARGV[1] daily limit, ARGV[2] minimum interval in ms (0 = none), ARGV[3] counter TTL in seconds.
# Returns the count used today after taking one, -1 if too soon after the previous one, -2 if none left.
_TAKE_FORCE_REFRESH = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return -2 end
used = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
return used
"""


@dataclass(frozen=True)
class _Entry:
    token: str
    expires_at: float
    refresh_at: float


class TokenService:
    """Shared access token for one AppID; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        session: aiohttp.ClientSession,
        app_id: str,
        app_secret: str,
        api_base: str,
        *,
        timeout: float = 5.0,
        refresh_margin: float = 300,
        lock_wait: float | None = None,
        poll_interval: float = 0.05,
        force_refresh_daily_limit: int = 20,
        force_refresh_min_interval: float = 30.0,
    ) -> None:
        self._redis = redis
        self._session = session
        self._app_id = app_id
        self._app_secret = app_secret
        self._url = api_base.rstrip("/") + "/cgi-bin/stable_token"
        self._timeout = timeout
        self._margin = refresh_margin
        # The holder may need two stable_token calls (normal, then forced); the lock outlives both.
        self._lock_ttl_ms = int((2 * timeout + 5) * 1000)
        self._lock_wait = self._lock_ttl_ms / 1000 + 1 if lock_wait is None else lock_wait
        self._poll_interval = poll_interval
        self._force_limit = force_refresh_daily_limit
        self._force_interval_ms = int(force_refresh_min_interval * 1000)
        self.token_key = f"wx:token:{app_id}"
        self.lock_key = f"wx:token:{app_id}:lock"
        self.force_last_key = f"wx:token:{app_id}:force:last"
        self._local_lock = asyncio.Lock()
        self._cad_token = redis.register_script(_COMPARE_AND_DELETE_TOKEN)
        self._release_lock = redis.register_script(_RELEASE_LOCK)
        self._store_if_held = redis.register_script(_STORE_IF_LOCK_HELD)
        self._take_force = redis.register_script(_TAKE_FORCE_REFRESH)

    def force_day_key(self, now: float | None = None) -> str:
        """Redis key counting today's force refreshes (WeChat's day is Beijing time)."""
        day = datetime.fromtimestamp(time.time() if now is None else now, UTC) + _BEIJING
        return f"wx:token:{self._app_id}:force:day:{day:%Y%m%d}"

    async def get(self) -> str:
        """A valid access token, refreshed (once, across all processes) when it nears expiry."""
        entry = await self._read()
        if entry is not None and time.time() < entry.refresh_at:
            return entry.token
        return await self._refresh(bad_token=None)

    async def invalidate(self, bad_token: str) -> str:
        """WeChat rejected ``bad_token`` (40001/42001): drop it unless already replaced, return a new one."""
        dropped = await self._cad_token(keys=[self.token_key], args=[bad_token])
        log.warning(
            "access token for %s rejected by WeChat; %s",
            self._app_id,
            "dropped from the shared cache" if dropped else "the cache already holds another token",
        )
        return await self._refresh(bad_token=bad_token)

    async def _read(self) -> _Entry | None:
        raw = await self._redis.get(self.token_key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            token = str(data["access_token"])
            expires_at = float(data["expires_at"])
            refresh_at = float(data.get("refresh_at", expires_at - self._margin))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed cached access token entry for %s", self._app_id)
            return None
        return _Entry(token, expires_at, refresh_at)

    @staticmethod
    def _fresh(entry: _Entry, bad_token: str | None) -> bool:
        return entry.token != bad_token and time.time() < entry.refresh_at

    async def _refresh(self, bad_token: str | None) -> str:
        loop = asyncio.get_running_loop()
        async with self._local_lock:  # one refresher per process; the Redis lock handles the rest
            deadline = loop.time() + self._lock_wait
            while True:
                entry = await self._read()
                if entry is not None and self._fresh(entry, bad_token):
                    return entry.token
                lock_value = secrets.token_hex(16)
                if await self._redis.set(self.lock_key, lock_value, nx=True, px=self._lock_ttl_ms):
                    try:
                        return await self._refresh_locked(lock_value, bad_token)
                    finally:
                        await self._release_lock(keys=[self.lock_key], args=[lock_value])
                if (
                    entry is not None
                    and entry.token != bad_token
                    and entry.expires_at - time.time() > _STILL_USABLE
                ):
                    return entry.token  # still valid: let the lock holder refresh it
                if loop.time() >= deadline:
                    raise TokenUnavailableError(
                        f"no access token for {self._app_id} after waiting {self._lock_wait:g} s for "
                        "another process to refresh it"
                    )
                await asyncio.sleep(self._poll_interval)

    async def _refresh_locked(self, lock_value: str, bad_token: str | None) -> str:
        entry = await self._read()  # someone may have refreshed between our read and taking the lock
        if entry is not None and self._fresh(entry, bad_token):
            return entry.token
        token, expires_in = await self._stable_token(force=False)
        if bad_token is not None and token == bad_token:
            # WeChat still hands out the token it just rejected: only a force refresh gives a new one.
            # Cache it anyway, so callers don't hit stable_token on every get() if the budget is spent.
            await self._store(lock_value, token, expires_in)
            await self._take_force_refresh_budget()
            token, expires_in = await self._stable_token(force=True)
            if token == bad_token:
                raise WeChatAPIError(40001, "force_refresh returned the rejected access token again")
        await self._store(lock_value, token, expires_in)
        return token

    async def _take_force_refresh_budget(self) -> None:
        result = int(
            await self._take_force(
                keys=[self.force_day_key(), self.force_last_key],
                args=[self._force_limit, self._force_interval_ms, 2 * 86400],
            )
        )
        if result == -1:
            raise ForceRefreshLimitError(
                f"access token for {self._app_id} needs a force refresh, but the previous one was less than "
                f"{self._force_interval_ms / 1000:g} s ago (WeChat ignores closer ones)"
            )
        if result == -2:
            raise ForceRefreshLimitError(
                f"access token for {self._app_id} needs a force refresh, but today's {self._force_limit} "
                "force refreshes are used up; check who else uses this AppID and its secret"
            )
        log.warning("force-refreshing the access token for %s (%d today)", self._app_id, result)

    async def _stable_token(self, *, force: bool) -> tuple[str, int]:
        body: dict[str, Any] = {
            "grant_type": "client_credential",
            "appid": self._app_id,
            "secret": self._app_secret,
            "force_refresh": force,
        }
        try:
            payload = await request_json(self._session, "POST", self._url, timeout_s=self._timeout, body=body)
        except WeChatAPIError as exc:
            log.error("stable_token for %s failed: errcode %s", self._app_id, exc.errcode)
            raise
        token = payload.get("access_token")
        expires_in = payload.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int) or expires_in <= 0:
            raise WeChatTransportError("stable_token returned no access_token/expires_in")
        log.info("fetched access token for %s (force=%s, expires_in=%d s)", self._app_id, force, expires_in)
        return token, expires_in

    async def _store(self, lock_value: str, token: str, expires_in: int) -> None:
        now = time.time()
        entry = {
            "access_token": token,
            "expires_at": now + expires_in,
            "refresh_at": now + expires_in - min(self._margin, expires_in / 2),
        }
        stored = await self._store_if_held(
            keys=[self.lock_key, self.token_key], args=[lock_value, json.dumps(entry), expires_in]
        )
        if not stored:
            log.warning(
                "refresh lock for %s expired before the new token was cached; not caching it", self._app_id
            )
