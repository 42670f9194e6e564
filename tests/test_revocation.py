"""Both revocation stores, one contract: the in-memory one and the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.errors import StoreUnavailable
from gateway.revocation import MemoryStore, RedisStore, RevocationStore
from tests.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[RevocationStore]:
    made: RevocationStore = (
        MemoryStore() if request.param == "memory" else RedisStore.from_url(REDIS_URL, redis_prefix)
    )
    yield made
    await made.close()


async def test_revoked_jti_only_for_its_key(store: RevocationStore) -> None:
    await store.revoke_jti("key_a", "j1", ttl=60)
    assert await store.is_revoked("key_a", "j1", iat=100.0)
    assert not await store.is_revoked("key_a", "j2", iat=100.0)
    # Another key revoking the same jti cannot touch key_a's token, and vice versa.
    assert not await store.is_revoked("key_b", "j1", iat=100.0)


async def test_revoke_all_is_a_cutoff(store: RevocationStore) -> None:
    await store.revoke_all("key_a", cutoff=1000.5, ttl=60)
    assert await store.is_revoked("key_a", "old", iat=1000.5)
    assert await store.is_revoked("key_a", "older", iat=10.0)
    assert not await store.is_revoked("key_a", "new", iat=1000.501)
    assert not await store.is_revoked("key_b", "old", iat=10.0)
    # An earlier cut-off arriving late (a racing replica) never moves it back.
    await store.revoke_all("key_a", cutoff=500.0, ttl=60)
    assert await store.is_revoked("key_a", "mid", iat=800.0)


async def test_entries_expire_with_their_ttl(store: RevocationStore) -> None:
    await store.revoke_jti("key_a", "j1", ttl=0.3)
    await store.revoke_all("key_a", cutoff=1000.0, ttl=0.3)
    assert await store.is_revoked("key_a", "j1", iat=2000.0)
    await asyncio.sleep(0.45)
    assert not await store.is_revoked("key_a", "j1", iat=2000.0)
    assert not await store.is_revoked("key_a", "j9", iat=10.0)


async def test_redis_keys_carry_ttl(redis_prefix: str, redis_client: aioredis.Redis) -> None:
    store = RedisStore.from_url(REDIS_URL, redis_prefix)
    await store.revoke_jti("key_a", "j1", ttl=42)
    await store.revoke_all("key_a", cutoff=1.0, ttl=630)
    keys = [k async for k in redis_client.scan_iter(match=redis_prefix + "*")]
    assert len(keys) == 2
    for key in keys:
        assert 0 < await redis_client.pttl(key) <= 630_000
    await store.close()


async def test_memory_store_sweeps_expired_entries() -> None:
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    for i in range(100):
        await store.revoke_jti("key_a", f"j{i}", ttl=1)
    now[0] = 5.0
    await store.revoke_jti("key_a", "fresh", ttl=1)
    assert len(store._jtis) == 1


async def test_unreachable_redis_fails_closed() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    store = RedisStore.from_url("redis://127.0.0.1:1/0", "vg-test:")
    with pytest.raises(StoreUnavailable):
        await store.is_revoked("key_a", "j1", iat=1.0)
    with pytest.raises(StoreUnavailable):
        await store.revoke_jti("key_a", "j1", ttl=1)
    assert not await store.ping()
    await store.close()
