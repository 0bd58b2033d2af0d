"""Budget of customer-service (客服) messages per user, kept in Redis and shared by every process.

Platform rule (research note §4 "Customer-service quota", from the official doc
https://developers.weixin.qq.com/doc/offiaccount/Customer_Service/Customer_Service_Messages.html and
https://developers.weixin.qq.com/doc/subscription/guide/product/kf/intro.md; the 2021 rule was 20 per
48 h):

* after the user **sends a message**, the account may send up to **5** customer-service messages to that
  user within **48 hours**;
* after a **menu click** (click/scancode types), a **follow** (subscribe) or a **QR-code scan**, up to
  **3** within **1 minute**;
* over the quota WeChat answers 45047 "out of response count limit"; outside every window (or after the
  user unfollowed) 45015 "response out of time limit or subscription is canceled".

The documentation does not say how overlapping windows combine.  Model used here (and by ``fake_api``):
each kind keeps one grant, and a newer interaction of the same kind replaces it with a full budget (the
window counts from the latest interaction).  The message grant and the event grant are independent;
a send takes from the active grant that ends first, so the short event window is used before the 48-hour
budget.  :meth:`CsQuota.mark_exhausted` records a 45015/45047 from WeChat, so the model never stays more
optimistic than the platform.

Redis: one hash per user, ``wx:csq:{appid}:{openid}`` with fields ``m_at``/``m_used`` (message grant) and
``e_at``/``e_used`` (event grant), expiring when the last window closes.  All updates are Lua scripts, so
concurrent consumers in any number of processes never exceed the budget.  Times are Unix seconds; every
method takes an optional ``now`` (tests pass it explicitly).
"""

from __future__ import annotations

import time
from typing import Literal

from redis.asyncio import Redis

MESSAGE_WINDOW = 48 * 3600
MESSAGE_LIMIT = 5
EVENT_WINDOW = 60
EVENT_LIMIT = 3

InteractionKind = Literal["message", "click", "scan", "subscribe"]

_GRANT_PREFIX: dict[str, str] = {"message": "m", "click": "e", "scan": "e", "subscribe": "e"}

# Shared Lua helpers.  ARGV[1] now, ARGV[2] message window, ARGV[3] message limit, ARGV[4] event window,
# ARGV[5] event limit.
_LUA_COMMON = """
local now = tonumber(ARGV[1])
local windows = {m = tonumber(ARGV[2]), e = tonumber(ARGV[4])}
local limits = {m = tonumber(ARGV[3]), e = tonumber(ARGV[5])}
local function field(name)
  local v = redis.call('HGET', KEYS[1], name)
  if v then return tonumber(v) end
  return nil
end
-- seconds left and sends left of grant p ('m' or 'e'), or nil when it is not active
local function grant(p)
  local at = field(p .. '_at')
  if not at or now >= at + windows[p] then return nil end
  local left = limits[p] - (field(p .. '_used') or 0)
  if left <= 0 then return nil end
  return at + windows[p], left
end
"""

# ARGV[6] grant prefix.  A grant is only replaced by a newer (or same-time) interaction.
_RECORD = (
    _LUA_COMMON
    + """
local p = ARGV[6]
local at = field(p .. '_at')
if not at or now >= at then
  redis.call('HSET', KEYS[1], p .. '_at', ARGV[1], p .. '_used', 0)
end
local last_end = now
for _, q in ipairs({'m', 'e'}) do
  local qat = field(q .. '_at')
  if qat and qat + windows[q] > last_end then last_end = qat + windows[q] end
end
local ttl = math.ceil(last_end - now) + 60
redis.call('EXPIRE', KEYS[1], ttl)
return ttl
"""
)

_TRY_CONSUME = (
    _LUA_COMMON
    + """
local m_end = grant('m')
local e_end = grant('e')
local p = nil
if m_end and (not e_end or m_end <= e_end) then p = 'm' elseif e_end then p = 'e' end
if not p then return 0 end
redis.call('HINCRBY', KEYS[1], p .. '_used', 1)
return 1
"""
)

_REMAINING = (
    _LUA_COMMON
    + """
local total = 0
for _, p in ipairs({'m', 'e'}) do
  local _, left = grant(p)
  if left then total = total + left end
end
return total
"""
)

_EXHAUST = (
    _LUA_COMMON
    + """
for _, p in ipairs({'m', 'e'}) do
  if field(p .. '_at') then redis.call('HSET', KEYS[1], p .. '_used', limits[p]) end
end
return 1
"""
)


class CsQuota:
    """Per-user customer-service message budget; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        app_id: str,
        *,
        message_window: float = MESSAGE_WINDOW,
        message_limit: int = MESSAGE_LIMIT,
        event_window: float = EVENT_WINDOW,
        event_limit: int = EVENT_LIMIT,
    ) -> None:
        self._redis = redis
        self._app_id = app_id
        self._rules = [message_window, message_limit, event_window, event_limit]
        self._record = redis.register_script(_RECORD)
        self._try_consume = redis.register_script(_TRY_CONSUME)
        self._remaining = redis.register_script(_REMAINING)
        self._exhaust = redis.register_script(_EXHAUST)

    def key(self, openid: str) -> str:
        return f"wx:csq:{self._app_id}:{openid}"

    def _args(self, now: float | None) -> list[float | int]:
        return [time.time() if now is None else now, *self._rules]

    async def record_interaction(self, openid: str, kind: InteractionKind, now: float | None = None) -> None:
        """The user sent a message, clicked a menu item, scanned a QR code or followed the account."""
        prefix = _GRANT_PREFIX.get(kind)
        if prefix is None:
            raise ValueError(f"unknown interaction kind {kind!r}")
        await self._record(keys=[self.key(openid)], args=[*self._args(now), prefix])

    async def try_consume(self, openid: str, now: float | None = None) -> bool:
        """Take one send from the budget; False when WeChat would refuse (45015/45047)."""
        return bool(await self._try_consume(keys=[self.key(openid)], args=self._args(now)))

    async def remaining(self, openid: str, now: float | None = None) -> int:
        """How many more customer-service messages may be sent to the user right now."""
        return int(await self._remaining(keys=[self.key(openid)], args=self._args(now)))

    async def mark_exhausted(self, openid: str, now: float | None = None) -> None:
        """WeChat answered 45015/45047: nothing more until the user interacts again."""
        await self._exhaust(keys=[self.key(openid)], args=self._args(now))
