"""Shared fixtures: real Redis with a private key prefix, keys and settings for tests."""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio as aioredis

from gateway.apikeys import ApiKey
from gateway.settings import Settings, TokenKey
from viseme_engine.engine import EngineConfig, LoadedModels, VisemeEngine, load_models

REDIS_URL = os.environ.get("VISEME_GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
API_KEY = "test-key-alpha-0123456789"
OTHER_API_KEY = "test-key-beta-0123456789"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def token_key() -> TokenKey:
    return TokenKey("k1", secrets.token_bytes(32))


@pytest.fixture
def settings(token_key: TokenKey) -> Settings:
    return Settings(
        api_keys=(ApiKey.parse(API_KEY), ApiKey.parse(OTHER_API_KEY)),
        token_keys=(token_key,),
        max_body_bytes=1024 * 1024,
        # Relay tests check every audio message's visemes; on a busy CI machine a
        # 20 ms deadline would shed some. tests/test_load.py tests the deadline.
        viseme_deadline_ms=0,
    )


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"vg-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def loaded_models() -> LoadedModels:
    """The shipped models, loaded once for every in-process app of the session."""
    return load_models(EngineConfig(device="cpu", threads=1))


@pytest.fixture
async def engine(loaded_models: LoadedModels) -> AsyncIterator[VisemeEngine]:
    """A started engine over the shipped models (stopped after the test)."""
    engine = VisemeEngine(loaded_models, EngineConfig())
    await engine.start()
    yield engine
    await engine.stop()
