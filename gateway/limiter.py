"""The counters behind each key's policy, shared by replicas through Redis.

- Signed URLs per second with a burst: a moving window from the `limits`
  library (atomic Lua scripts in Redis, or its in-memory storage).
- Things held open (relay and stream sessions, POST /v1/visemes and TTS
  requests at once): leases in a Redis sorted set, taken and counted by one Lua
  script. `limits` counts events in windows, not things held, so this part is
  our own. A lease is renewed while held and expires LEASE_SECONDS after a
  replica that held it died, so a crash never leaks a slot for good.
- Sessions per signed URL: an atomic INCR per token `jti`, living as long as
  the token could still be used.

Without Redis the same counters live in this process's memory. A Redis that
cannot be reached refuses the request with 503 (StoreUnavailable), as the
revocation check does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from .errors import RateLimited, Refused, StoreUnavailable, TokenUsed

LEASE_SECONDS = 60.0
RENEW_SECONDS = 20.0

# KEYS[1]: the sorted set of leases (member: holder, score: expiry in ms).
# ARGV: holder, limit, lease ms. Time is Redis's own, so replicas' clocks do not matter.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
"""
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[#ARGV])
for i = 1, #ARGV - 1 do redis.call('ZADD', KEYS[1], now + lease, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], lease)
return 1
"""
_USE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


def limits_uri(redis_url: str) -> str:
    """The `limits` storage URI of a redis-py URL."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


def signed_url_item(per_second: float, burst: int) -> RateLimitItemPerSecond:
    """`burst` signed URLs in a moving window of burst/rate seconds (whole seconds, at
    least one): never more than `burst` at once, `rate` a second over the window."""
    window = max(1, math.ceil(burst / per_second))
    return RateLimitItemPerSecond(burst, window)


@dataclass
class Lease:
    """One slot held (a session, a request); give it back with `Limiter.release`."""

    key: str
    holder: str


class Limiter:
    def __init__(self, redis: aioredis.Redis | None, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        storage: Storage
        if redis is None:
            storage = MemoryStorage()
        else:
            storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                key_prefix=f"{prefix}limits",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # typed as scalars
            )
        self._window = MovingWindowRateLimiter(storage)
        self._held: dict[str, set[str]] = {}  # this process's leases, by set
        self._uses: dict[str, tuple[int, float]] = {}  # memory: jti -> (uses, until)

    async def rate(self, name: str, key_id: str, per_second: float, burst: int) -> None:
        """Count one event; RateLimited (429, Retry-After) past the key's rate."""
        item = signed_url_item(per_second, burst)
        try:
            if await self._window.hit(item, name, key_id):
                return
            stats = await self._window.get_window_stats(item, name, key_id)
        except RedisError as exc:
            raise StoreUnavailable("Limit store unavailable") from exc
        raise RateLimited(
            f"Rate limit: {burst} per {item.get_expiry()} s for this key",
            stats.reset_time - time.time(),
        )

    async def acquire(self, kind: str, key_id: str, limit: int, refusal: type[Refused]) -> Lease:
        """Take one of `limit` slots of this kind; `refusal` (429) when none is free."""
        key, holder = f"{self._prefix}held:{kind}:{key_id}", uuid.uuid4().hex
        held = self._held.setdefault(key, set())
        if self._redis is None:
            ok = len(held) < limit
        else:
            try:
                ms = int(LEASE_SECONDS * 1000)
                ok = bool(await self._redis.eval(_ACQUIRE, 1, key, holder, limit, ms))
            except RedisError as exc:
                raise StoreUnavailable("Limit store unavailable") from exc
        if not ok:
            raise refusal(f"This key already has {limit} {kind.replace('_', ' ')} open")
        held.add(holder)
        return Lease(key, holder)

    async def release(self, lease: Lease) -> None:
        self._held.get(lease.key, set()).discard(lease.holder)
        if self._redis is not None:
            with contextlib.suppress(RedisError):  # else the lease expires on its own
                await self._redis.zrem(lease.key, lease.holder)

    @contextlib.asynccontextmanager
    async def holding(
        self, kind: str, key_id: str, limit: int, refusal: type[Refused]
    ) -> AsyncIterator[Lease]:
        lease = await self.acquire(kind, key_id, limit, refusal)
        try:
            yield lease
        finally:
            await self.release(lease)

    async def use_token(self, jti: str, allowed: int, ttl: float) -> None:
        """Count one session opened with this token; TokenUsed past `allowed`."""
        if self._redis is None:
            now = time.monotonic()
            self._uses = {k: v for k, v in self._uses.items() if v[1] > now}
            uses = self._uses.get(jti, (0, now + ttl))
            count = uses[0] + 1
            self._uses[jti] = (count, uses[1])
        else:
            try:
                key = f"{self._prefix}token-uses:{jti}"
                count = int(await self._redis.eval(_USE, 1, key, max(1, int(ttl * 1000))))
            except RedisError as exc:
                raise StoreUnavailable("Limit store unavailable") from exc
        if count > allowed:
            raise TokenUsed(
                f"This signed URL was already used for {allowed} session(s); get a new one"
            )

    async def renew(self) -> None:
        """Extend this process's leases (a crashed replica's lapse after LEASE_SECONDS)."""
        if self._redis is None:
            return
        ms = int(LEASE_SECONDS * 1000)
        for key, holders in list(self._held.items()):
            if not holders:
                self._held.pop(key, None)
                continue
            with contextlib.suppress(RedisError):
                await self._redis.eval(_RENEW, 1, key, *holders, ms)

    async def run_renewals(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            await self.renew()
