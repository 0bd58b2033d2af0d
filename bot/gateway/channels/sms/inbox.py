"""Pushed messages we have accepted but not yet answered, kept in Redis until their reply is in the ledger.

Providers that push batches (Alibaba Cloud's SmsUp) want ``{"code": 0}`` within about 700 ms and never
send a message again once they have it, so a message is recorded here *before* the push is answered:
one Lua call claims its dedup key and stores it, atomically (a repeat finds the key and is not stored).
A gateway worker that dies mid-turn leaves its messages here; any worker's sweep takes those older than
``RECOVER_AFTER`` (under a lease, so one worker does each) and answers them.  A turn that had already run
before the crash runs again, but its reply is written to the ledger under the message's key, so it is sent
once.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import redis.asyncio as aioredis

from sms_gateway.provider import InboundSms

RECOVER_AFTER = 120.0  # seconds before an unanswered message is taken over by the sweep
LEASE = 300  # seconds one worker holds a message it is answering

_ACCEPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0
"""


class PushInbox:
    def __init__(self, redis: aioredis.Redis, provider: str, ack_state: bytes, ttl: int) -> None:
        self._redis = redis
        self._key = f"sms:inbox:{provider}"
        self._ack_state = ack_state
        self._ttl = ttl
        self._accept = redis.register_script(_ACCEPT)

    async def accept(self, dedup_key: str, message: InboundSms) -> bool:
        """Store ``message`` unless its dedup key was seen before; False for a repeat."""
        record = json.dumps({**asdict(message), "accepted": time.time()}, ensure_ascii=False)
        stored = await self._accept(
            keys=[dedup_key, self._key], args=[self._ack_state, self._ttl, message.message_id, record]
        )
        return bool(stored)

    async def lease(self, message_id: str) -> bool:
        """Whether this worker may answer the message now (no other worker is answering it)."""
        return bool(await self._redis.set(f"{self._key}:lease:{message_id}", 1, nx=True, ex=LEASE))

    async def done(self, message_id: str) -> None:
        await self._redis.hdel(self._key, message_id)

    async def unanswered(self, older_than: float = RECOVER_AFTER) -> list[InboundSms]:
        """Messages accepted more than ``older_than`` seconds ago and still not answered, oldest first."""
        now = time.time()
        found: list[tuple[float, InboundSms]] = []
        for raw in (await self._redis.hgetall(self._key)).values():
            data = json.loads(raw)
            accepted = float(data.pop("accepted", 0.0))
            if now - accepted >= older_than:
                found.append((accepted, InboundSms(**data)))
        return [m for _, m in sorted(found, key=lambda pair: pair[0])]

    async def pending(self) -> int:
        return int(await self._redis.hlen(self._key))
