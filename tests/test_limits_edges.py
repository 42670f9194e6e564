"""Where limits were found leaky: quotas under concurrent requests, a slot held by a slow
upload, renewals after Redis lost the leases, Retry-After of two used-up quotas, the
burst, reloads of an empty or ambiguous keys file, and timeouts never retried."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis
import redis.exceptions

from gateway.errors import QuotaExceeded, error_codes
from gateway.guard import _refuse_quota
from gateway.keys import Key, Keyring, parse_keys_file
from gateway.limiter import Limiter, signed_url_item
from gateway.policy import Policy
from gateway.revocation import redis_client
from gateway.settings import TokenKey
from tests.conftest import API_KEY, REDIS_URL
from tests.fakes.base import until
from tests.policy_env import AUTH, env_with, error_of, two_gateways, wav_b64


async def test_requests_at_once_cannot_go_past_the_audio_quota_together(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    env = env_with(
        tmp_path, token_key, redis_prefix, {"audio_minutes_per_day": 1, "visemes_concurrency": 4}
    )
    body = {"audio": wav_b64(45_000)}
    async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:

        async def one(base: str) -> int:
            async with http.post(f"{base}/v1/visemes", json=body, headers=AUTH) as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(one(base) for base in (a, b, a, b)))
        assert sorted(statuses) == [200, 429, 429, 429]  # 45 s of a minute: one fits
        async with http.get(f"{a}/v1/usage", headers=AUTH) as r:
            total = (await r.json())["keys"][0]["total"]
        assert total["visemes_audio_ms"] == 45_000
        async with http.post(f"{b}/v1/visemes", json={"audio": wav_b64(15_000)}, headers=AUTH) as r:
            assert r.status == 200  # the reservations were given back: the rest fits
            await r.read()


async def test_a_slow_upload_holds_its_keys_slot(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    env = env_with(tmp_path, token_key, redis_prefix, {"visemes_concurrency": 1})
    async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:
        host, port = a.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as slow:
            head = (
                f"POST /v1/visemes HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_KEY}"
                "\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
            )
            slow.sendall(head.encode() + b'{"audio": "')  # and then nothing, for now
            held = redis.Redis.from_url(REDIS_URL)
            # the slow request's handler takes the slot
            await until(lambda: bool(held.zcard(f"{redis_prefix}held:visemes_requests:app")))
            async with http.post(
                f"{b}/v1/visemes", json={"audio": wav_b64(100)}, headers=AUTH
            ) as r:  # while A has read 11 bytes of its body
                assert await error_of(r) == (429, "CONCURRENCY_LIMIT")
        async with asyncio.timeout(10):  # the upload gone, the slot is free again
            while True:
                async with http.post(f"{b}/v1/visemes", json={"audio": wav_b64(100)},
                                     headers=AUTH) as r:  # fmt: skip
                    if r.status == 200:
                        break
                await asyncio.sleep(0.05)


async def test_renewal_puts_back_leases_redis_lost(redis_prefix: str) -> None:
    client = redis_client(REDIS_URL)
    try:
        limiter = Limiter(client, redis_prefix)
        lease = await limiter.acquire("sessions", "app", 2, QuotaExceeded)
        await client.delete(lease.key)  # a Redis restart without persistence, say
        await limiter.renew()
        assert await client.zcard(lease.key) == 1  # the open session counts again
        await limiter.release(lease)
        assert await client.zcard(lease.key) == 0
    finally:
        await client.aclose()


def test_retry_after_is_the_end_of_the_latest_used_up_period() -> None:
    key = Key("app", b"x" * 32, policy=Policy(audio_minutes_per_day=1, audio_minutes_per_month=1))
    now = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
    with pytest.raises(QuotaExceeded) as both:
        _refuse_quota(key, [True, True], now)
    assert "per month" in str(both.value)
    assert both.value.headers["Retry-After"] == str(31 * 86400 - 15 * 3600)  # 1 January
    with pytest.raises(QuotaExceeded) as day:
        _refuse_quota(key, [True, False], now)
    assert day.value.headers["Retry-After"] == str(9 * 3600)
    _refuse_quota(key, [False, False], now)  # nothing used up: no refusal


@pytest.mark.parametrize(
    ("rate", "burst", "amount", "window"), [(2, 10, 10, 5), (2, 3, 3, 2), (100, 1, 1, 1)]
)
def test_never_more_than_the_burst_at_once(rate: int, burst: int, amount: int, window: int) -> None:
    item = signed_url_item(rate, burst)
    assert (item.amount, item.get_expiry()) == (amount, window)


def test_an_empty_or_ambiguous_keys_file_is_refused() -> None:
    with pytest.raises(ValueError, match="without keys"):
        parse_keys_file("")  # what a file being rewritten reads for a moment
    digest = b"d" * 32
    with pytest.raises(ValueError, match="same secret"):
        Keyring([Key("web-app", digest), Key("web-app-old", digest, enabled=False)])


def test_every_refusal_code_is_in_the_openapi_enum() -> None:
    assert {"FRAME_SIZE_EXCEEDED", "QUOTA_EXCEEDED", "SATURATED"} <= set(error_codes())


@pytest.fixture
def stalling_redis(tmp_path: Path) -> Iterator[int]:
    """A Redis of this test's own, to stall with DEBUG SLEEP without stalling the others."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--enable-debug-command", "yes", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                redis.Redis(port=port).ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(10)


async def test_a_slow_reply_is_not_a_command_run_twice(stalling_redis: int) -> None:
    client = redis_client(f"redis://127.0.0.1:{stalling_redis}/0")
    key = f"count:{uuid.uuid4().hex}"
    try:
        await client.ping()
        stall = asyncio.create_task(
            asyncio.to_thread(
                redis.Redis(port=stalling_redis).execute_command, "DEBUG", "SLEEP", "1.5"
            )
        )
        await asyncio.sleep(0.2)
        with pytest.raises(redis.exceptions.TimeoutError):
            await client.incr(key)  # Redis runs it after its sleep, once
        await stall
        assert await client.get(key) == b"1"
    finally:
        await client.aclose()
