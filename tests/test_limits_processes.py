"""Every per-key limit, held across two real gateway processes sharing one real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.settings import TokenKey
from tests.fakes.base import until
from tests.fakes.openai import FakeOpenAI
from tests.policy_env import (
    AUTH,
    OPENAI,
    connect,
    env_with,
    error_of,
    next_close,
    on,
    refused_upgrade,
    sign,
    two_gateways,
    wav_b64,
)
from tests.tts_fakes import OPENAI_KEY, FakeTts


@asynccontextmanager
async def openai_replicas(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str, policy: dict[str, Any]
) -> AsyncIterator[tuple[FakeOpenAI, str, str, aiohttp.ClientSession]]:
    """Two gateways with `policy`, relaying to one fake OpenAI that holds its sessions."""
    async with FakeOpenAI(scenario="hold") as fake:
        url = f"{fake.url()}/v1/realtime"
        env = env_with(tmp_path, token_key, redis_prefix, policy, VISEME_GATEWAY_OPENAI_WS_URL=url)
        async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:
            yield fake, a, b, http


async def test_signed_urls_per_second_with_a_burst_count_on_both_replicas(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    # 4 at once, then one per 100 s: the window is far longer than the test.
    policy = {"signed_urls_per_second": 0.01, "signed_url_burst": 4}
    env = env_with(tmp_path, token_key, redis_prefix, policy)
    async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:
        answers = []
        for n in range(8):
            base = (a, b)[n % 2]
            async with http.post(
                f"{base}/v1/get-signed-url", json=OPENAI, headers=AUTH
            ) as response:
                retry = response.headers.get("Retry-After")
                answers.append((response.status, (await response.json()).get("code"), retry))
    assert [status for status, _, _ in answers] == [200] * 4 + [429] * 4
    for _, code, retry in answers[4:]:
        assert code == "RATE_LIMITED"
        assert retry is not None
        assert 1 <= int(retry) <= 400


async def test_limits_hold_exactly_under_concurrent_requests_to_both_replicas(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    policy = {
        "signed_urls_per_second": 0.01,
        "signed_url_burst": 7,
        "concurrent_sessions": 3,
        "sessions_per_token": 20,
    }
    async with openai_replicas(tmp_path, token_key, redis_prefix, policy) as (_, a, b, http):

        async def post(base: str) -> int:
            async with http.post(f"{base}/v1/get-signed-url", json=OPENAI, headers=AUTH) as r:
                return r.status

        url = await sign(http, a)  # 1 of the 7
        statuses = await asyncio.gather(*(post((a, b)[n % 2]) for n in range(23)))
        assert sorted(statuses) == [200] * 6 + [429] * 17
        # Sessions: 10 connects at once, over both replicas, for 3 slots.
        tries = await asyncio.gather(*(connect(http, on(url, (a, b)[n % 2])) for n in range(10)))
        opened = [t for t in tries if not isinstance(t, int)]
        assert len(opened) == 3
        assert sorted(t for t in tries if isinstance(t, int)) == [429] * 7
        for ws in opened:
            await ws.close()


async def test_a_signed_url_opens_one_session_by_default_on_any_replica(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    async with openai_replicas(tmp_path, token_key, redis_prefix, {}) as (_, a, b, http):
        url = await sign(http, a)
        async with http.ws_connect(url) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
        for again in (url, on(url, b)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(again)
            assert refused.value.status == 403
        assert await refused_upgrade(http, on(url, b)) == (403, "TOKEN_USED")


async def test_sessions_per_token_and_concurrent_sessions_across_replicas(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    policy = {"sessions_per_token": 3, "concurrent_sessions": 2}
    async with openai_replicas(tmp_path, token_key, redis_prefix, policy) as (_, a, b, http):
        url = await sign(http, a)
        first = await http.ws_connect(url)
        second = await http.ws_connect(on(url, b))
        for ws in (first, second):
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
        for base in (a, b):  # a third at once: on neither replica
            other = await sign(http, base)
            assert await refused_upgrade(http, other) == (429, "SESSION_LIMIT")
        await first.close()
        # Its slot comes back once the session has ended on its replica.
        async with asyncio.timeout(10):
            while isinstance(third := await connect(http, on(url, b)), int):
                assert third == 429
                await asyncio.sleep(0.05)
        assert (await third.receive_json(timeout=5))["type"] == "session.created"
        await second.close()
        await third.close()
        # The token has now opened its 3 sessions (once a slot is free to tell).
        async with asyncio.timeout(10):
            while True:
                refusal = await refused_upgrade(http, url)
                if refusal != (429, "SESSION_LIMIT"):
                    break
                await asyncio.sleep(0.05)
        assert refusal == (403, "TOKEN_USED")


async def test_a_session_is_closed_at_its_keys_max_length(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    policy = {"max_session_seconds": 1}
    async with openai_replicas(tmp_path, token_key, redis_prefix, policy) as (fake, a, b, http):
        async with http.ws_connect(on(await sign(http, a), b)) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            async with asyncio.timeout(15):
                assert await next_close(ws) == (4408, "session time limit reached")
        await asyncio.wait_for(fake.last.closed.wait(), 5)


async def test_providers_models_and_origins_outside_the_policy_are_refused(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    policy = {
        "providers": ["openai", "stream"],
        "viseme_models": ["default"],
        "allowed_origins": ["https://app.example"],
        "sessions_per_token": 10,
    }
    async with openai_replicas(tmp_path, token_key, redis_prefix, policy) as (_, a, b, http):
        gemini = {"config": {"provider": "gemini", "provider_config": {"api_key": "AIzaX"}}}
        indonesian = {
            "config": {
                "provider": "openai",
                "provider_config": {"ephemeral_token": "ek_1", "viseme_model": "indonesian"},
            }
        }
        for body, code in ((gemini, "PROVIDER_NOT_ALLOWED"), (indonesian, "MODEL_NOT_ALLOWED")):
            async with http.post(f"{b}/v1/get-signed-url", json=body, headers=AUTH) as r:
                assert await error_of(r) == (403, code)
        visemes = {"audio": wav_b64(100), "model": "indonesian"}
        async with http.post(f"{a}/v1/visemes", json=visemes, headers=AUTH) as r:
            assert await error_of(r) == (403, "MODEL_NOT_ALLOWED")
        url = await sign(http, a)
        evil = {"Origin": "https://evil.example"}
        assert await refused_upgrade(http, on(url, b), evil) == (403, "ORIGIN_NOT_ALLOWED")
        async with http.post(f"{a}/v1/get-signed-url", json=OPENAI, headers={**AUTH, **evil}) as r:
            assert await error_of(r) == (403, "ORIGIN_NOT_ALLOWED")
            assert "Access-Control-Allow-Origin" not in r.headers
        for headers in ({"Origin": "https://app.example"}, {}):  # allowed; a server
            async with http.ws_connect(on(url, b), headers=headers) as ws:
                assert (await ws.receive_json(timeout=5))["type"] == "session.created"


async def test_visemes_requests_at_once_are_bounded_across_replicas(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    # One request held open: ten minutes of audio as ARKit frames (about 10 MB of
    # events) that the client does not read, so the gateway's writes wait on it.
    env = env_with(tmp_path, token_key, redis_prefix, {"visemes_concurrency": 1})
    long = {"audio": wav_b64(600_000, 8000), "sample_rate": 8000, "lipsync": {"format": "arkit"}}
    async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:
        held = await http.post(f"{a}/v1/visemes", json=long, headers=AUTH)
        assert held.status == 200
        short = {"audio": wav_b64(200)}
        async with http.post(f"{b}/v1/visemes", json=short, headers=AUTH) as r:
            assert await error_of(r) == (429, "CONCURRENCY_LIMIT")
            assert r.headers["Retry-After"] == "1"
        held.close()  # the client leaves: the gateway's next write fails, the slot frees
        async with asyncio.timeout(20):
            while True:
                async with http.post(f"{b}/v1/visemes", json=short, headers=AUTH) as r:
                    if r.status == 200:
                        break
                    assert await error_of(r) == (429, "CONCURRENCY_LIMIT")
                await asyncio.sleep(0.1)


async def test_tts_requests_at_once_are_bounded_across_replicas(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    fake = FakeTts(hold_text="Hold")
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        env = env_with(
            tmp_path,
            token_key,
            redis_prefix,
            {"tts_concurrency": 1},
            VISEME_GATEWAY_OPENAI_API_URL=f"http://127.0.0.1:{server.port}",
        )
        body = {"text": "Hold on.", "tts_engine": "openai", "tts_api_key": OPENAI_KEY}
        async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:
            held = await http.post(f"{a}/v1/visemes-audio", json=body, headers=AUTH)
            assert held.status == 200
            await until(lambda: len(fake.requests) == 1)
            other = {"text": "Hi.", "tts_engine": "espeak"}
            async with http.post(f"{b}/v1/visemes-audio", json=other, headers=AUTH) as r:
                assert await error_of(r) == (429, "CONCURRENCY_LIMIT")
            fake.release.set()
            assert b'"type":"visemes"' in await held.read()
            async with asyncio.timeout(10):  # the slot frees as the handler ends
                while True:
                    async with http.post(f"{b}/v1/visemes-audio", json=other, headers=AUTH) as r:
                        if r.status == 200:
                            assert b'"type":"visemes"' in await r.read()
                            break
                        assert await error_of(r) == (429, "CONCURRENCY_LIMIT")
                    await asyncio.sleep(0.05)
    finally:
        await server.close()


@pytest.mark.parametrize("period", ["day", "month"])
async def test_audio_minutes_per_day_and_month_are_shared_by_replicas(
    period: str, tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    policy = {f"audio_minutes_per_{period}": 0.05}  # 3 s
    env = env_with(tmp_path, token_key, redis_prefix, policy)
    async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:
        two_seconds = {"audio": wav_b64(2000)}
        async with http.post(f"{a}/v1/visemes", json=two_seconds, headers=AUTH) as r:
            assert r.status == 200
            await r.read()
        async with http.post(f"{b}/v1/visemes", json=two_seconds, headers=AUTH) as r:
            assert await error_of(r) == (429, "QUOTA_EXCEEDED")
            assert 1 <= int(r.headers["Retry-After"]) <= 31 * 86400
            assert f"per {period}" in (await r.json())["error"]
        one_second = {"audio": wav_b64(1000)}  # exactly the rest
        async with http.post(f"{b}/v1/visemes", json=one_second, headers=AUTH) as r:
            assert r.status == 200
            await r.read()
        url = await sign(http, a)  # signing is no audio; a session would be
        assert await refused_upgrade(http, on(url, b)) == (429, "QUOTA_EXCEEDED")


async def test_client_messages_past_the_burst_are_read_at_the_keys_rate(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    policy = {"client_messages_per_second": 20, "client_message_burst": 10}
    async with openai_replicas(tmp_path, token_key, redis_prefix, policy) as (fake, a, _, http):
        async with http.ws_connect(await sign(http, a)) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            started = time.monotonic()
            for n in range(100):
                await ws.send_str(f'{{"type":"input_audio_buffer.clear","n":{n}}}')
            # However slow this machine, no more than the burst plus the rate so far.
            elapsed = time.monotonic() - started
            assert len(fake.last.received) <= 10 + 20 * elapsed + 1
            await until(lambda: len(fake.last.received) == 100, within=30)
        assert [json.loads(m)["n"] for m in fake.last.received] == list(range(100))


async def test_an_open_session_closes_once_its_keys_quota_is_used_up(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    env = env_with(tmp_path, token_key, redis_prefix, {"audio_minutes_per_day": 0.05})  # 3 s
    async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:
        stream = "/v1/visemes/stream"
        async with http.ws_connect("ws" + a.removeprefix("http") + stream, headers=AUTH) as ws:
            await ws.send_json({"sample_rate": 16000})
            assert (await ws.receive_json(timeout=10))["type"] == "ready"
            for _ in range(8):  # 4 s of audio, each frame answered
                await ws.send_bytes(b"\x00\x01" * 8000)
                assert (await ws.receive_json(timeout=30))["type"] == "visemes"
            async with asyncio.timeout(30):  # at its next check (every 10 s)
                assert await next_close(ws) == (4429, "audio quota exceeded")
        url = "ws" + b.removeprefix("http") + stream
        assert await refused_upgrade(http, url, AUTH) == (429, "QUOTA_EXCEEDED")
        async with http.get(f"{b}/metrics") as r:
            metrics = await r.text()
        assert 'viseme_gateway_refusals_total{code="QUOTA_EXCEEDED",key_id="app"} 1.0' in metrics
