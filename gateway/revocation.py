"""Revocation state: which tokens are dead before their expiry.

Two kinds of entry, each with a TTL so nothing grows without bound:
- a revoked `jti`, scoped by the revoking key's id: a key can only ever revoke
  its own tokens, because a check looks up the *token's* `sub`;
- a per-key cut-off: every token of that key issued at or before it is revoked.
Entries live as long as the longest token they could still affect.

`MemoryStore` (one process) and `RedisStore` (shared by replicas) have the
same interface and semantics; the store is chosen by `VISEME_GATEWAY_REDIS_URL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .errors import StoreUnavailable

log = logging.getLogger("gateway")


@dataclass(frozen=True)
class Revoked:
    """A revocation as broadcast to every replica, to close open sessions."""

    sub: str
    jti: str | None = None  # one token
    cutoff: float | None = None  # every token of `sub` issued at or before

    def covers(self, sub: str, jti: str, iat: float) -> bool:
        if sub != self.sub:
            return False
        return jti == self.jti or (self.cutoff is not None and iat <= self.cutoff)


class RevocationStore(Protocol):
    kind: str

    async def revoke_jti(self, sub: str, jti: str, ttl: float) -> None: ...

    async def revoke_all(self, sub: str, cutoff: float, ttl: float) -> None: ...

    async def is_revoked(self, sub: str, jti: str, iat: float) -> bool: ...

    async def ping(self) -> bool: ...

    def subscribe(self) -> AsyncIterator[Revoked | None]:
        """Revocations made anywhere (this process or, with Redis, any replica).

        None: the channel was joined again after a loss. Pub/sub delivers at most
        once, so revocations made meanwhile are gone: check open sessions anew.
        """
        ...

    async def close(self) -> None: ...


class MemoryStore:
    kind = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._jtis: dict[tuple[str, str], float] = {}
        self._cutoffs: dict[str, tuple[float, float]] = {}
        self._listeners: set[asyncio.Queue[Revoked]] = set()

    def _sweep(self) -> None:
        now = self._clock()
        self._jtis = {k: exp for k, exp in self._jtis.items() if exp > now}
        self._cutoffs = {k: v for k, v in self._cutoffs.items() if v[1] > now}

    def _publish(self, event: Revoked) -> None:
        for queue in self._listeners:
            queue.put_nowait(event)

    async def revoke_jti(self, sub: str, jti: str, ttl: float) -> None:
        self._sweep()
        self._jtis[(sub, jti)] = self._clock() + ttl
        self._publish(Revoked(sub, jti=jti))

    async def revoke_all(self, sub: str, cutoff: float, ttl: float) -> None:
        self._sweep()
        previous = self._cutoffs.get(sub, (0.0, 0.0))[0]
        self._cutoffs[sub] = (max(previous, cutoff), self._clock() + ttl)
        self._publish(Revoked(sub, cutoff=cutoff))

    async def is_revoked(self, sub: str, jti: str, iat: float) -> bool:
        now = self._clock()
        if self._jtis.get((sub, jti), 0.0) > now:
            return True
        cutoff, until = self._cutoffs.get(sub, (0.0, 0.0))
        return until > now and iat <= cutoff

    async def ping(self) -> bool:
        return True

    async def subscribe(self) -> AsyncIterator[Revoked | None]:
        queue: asyncio.Queue[Revoked] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)

    async def close(self) -> None:
        return None


_RETRY_FIRST_S, _RETRY_MAX_S = 0.25, 2.0  # rejoining the channel: back off to 2 s

# Keep the later of the stored and the new cut-off: replicas may race.
_MAX_CUTOFF = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = tonumber(ARGV[1])
if new > current then current = new end
redis.call('SET', KEYS[1], tostring(current), 'PX', ARGV[2])
return tostring(current)
"""


POOL_CONNECTIONS = 32  # per process; Redis answers each command in microseconds


def redis_client(url: str) -> aioredis.Redis:
    """A client for the gateway's shared state (revocations, limits, usage).

    Short timeouts: a dead Redis must fail a check fast (503), not hang it. One
    retry on a fresh connection: after a Redis restart every pooled connection is
    dead, and the first request must not fail for that (503). Only connection
    errors are retried, never a timeout: a reply later than the timeout is a
    command Redis ran, and running an INCR or HINCRBY again would count it twice.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        # A burst of handshakes waits for one of these connections (up to 2 s) rather
        # than opening hundreds at once, which timed out connecting under load.
        max_connections=POOL_CONNECTIONS,
        timeout=2.0,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        retry_on_error=[RedisConnectionError],
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose closes both


class RedisStore:
    kind = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisStore:
        return cls(redis_client(url), prefix)

    @property
    def _channel(self) -> str:
        return f"{self._prefix}revocations"

    async def _publish(self, event: Revoked) -> None:
        payload = {"sub": event.sub, "jti": event.jti, "cutoff": event.cutoff}
        await self._redis.publish(self._channel, json.dumps(payload))

    def _jti_key(self, sub: str, jti: str) -> str:
        return f"{self._prefix}revoked:jti:{sub}:{jti}"

    def _cutoff_key(self, sub: str) -> str:
        return f"{self._prefix}revoked:all:{sub}"

    async def revoke_jti(self, sub: str, jti: str, ttl: float) -> None:
        try:
            await self._redis.set(self._jti_key(sub, jti), b"1", px=_ms(ttl))
            await self._publish(Revoked(sub, jti=jti))
        except RedisError as exc:
            raise StoreUnavailable() from exc

    async def revoke_all(self, sub: str, cutoff: float, ttl: float) -> None:
        try:
            await self._redis.eval(_MAX_CUTOFF, 1, self._cutoff_key(sub), repr(cutoff), _ms(ttl))
            await self._publish(Revoked(sub, cutoff=cutoff))  # open sessions close too
        except RedisError as exc:
            raise StoreUnavailable() from exc

    async def is_revoked(self, sub: str, jti: str, iat: float) -> bool:
        try:
            flag, cutoff = await self._redis.mget(self._jti_key(sub, jti), self._cutoff_key(sub))
        except RedisError as exc:
            raise StoreUnavailable() from exc
        return flag is not None or (cutoff is not None and iat <= float(cutoff))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def subscribe(self) -> AsyncIterator[Revoked | None]:
        """Follow the revocation channel, reconnecting (with back-off) while Redis is away.

        Every join of the channel is confirmed by a `subscribe` message, also when
        redis-py reconnects on its own: each one after the first yields None.
        """
        delay, lost, joined = _RETRY_FIRST_S, False, False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message.get("type") == "subscribe":
                        if lost:
                            log.info("revocation channel back")
                        if joined:
                            yield None  # what was published meanwhile is lost: recheck
                        joined, lost, delay = True, False, _RETRY_FIRST_S
                        continue
                    event = _decode(message.get("data"))
                    if event is not None:
                        yield event
            except RedisError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # redis-py can turn a cancel into its own TimeoutError: stop anyway.
                    raise asyncio.CancelledError from exc
                if not lost:
                    log.warning("revocation channel lost (%s); retrying", type(exc).__name__)
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
            finally:
                with contextlib.suppress(RedisError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    async def close(self) -> None:
        await self._redis.aclose()


def _decode(data: object) -> Revoked | None:
    try:
        payload = json.loads(data) if isinstance(data, (bytes, str)) else None
        if not isinstance(payload, dict) or not isinstance(payload.get("sub"), str):
            return None
        jti, cutoff = payload.get("jti"), payload.get("cutoff")
        return Revoked(
            payload["sub"],
            jti=jti if isinstance(jti, str) else None,
            cutoff=float(cutoff) if isinstance(cutoff, (int, float)) else None,
        )
    except (ValueError, TypeError):
        return None


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
