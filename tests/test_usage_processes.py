"""Usage metering: exact counts under concurrent load on two gateway processes sharing
Redis, surviving a restart; GET /v1/usage for a key and for an admin key."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiohttp

from gateway.settings import TokenKey
from tests.fakes.openai import FakeOpenAI
from tests.policy_env import (
    ADMIN,
    AUTH,
    error_of,
    keys_toml,
    on,
    policy_env,
    sign,
    two_gateways,
    usage,
    wav_b64,
)

ROOMY = {"visemes_concurrency": 50, "tts_concurrency": 50, "concurrent_sessions": 50}


async def visemes_request(http: aiohttp.ClientSession, base: str, ms: int) -> int:
    """POST /v1/visemes with `ms` of audio; the viseme entries it answered with."""
    async with http.post(f"{base}/v1/visemes", json={"audio": wav_b64(ms)}, headers=AUTH) as r:
        assert r.status == 200, await r.text()
        body = (await r.read()).decode()
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    return sum(len(e["visemes"]) for e in events)


async def relay_session(http: aiohttp.ClientSession, url: str) -> int:
    """One OpenAI session, one response: the viseme entries injected into it."""
    count = 0
    async with http.ws_connect(url) as ws:
        while True:
            event = await ws.receive_json(timeout=30)
            injected = event.get("mascotVisemes")
            if injected is not None:
                count += len(injected["visemes"])
            if event["type"] == "response.done":  # the fake's one response: hang up
                return count


async def stream_session(http: aiohttp.ClientSession, base: str, frames_ms: list[int]) -> int:
    """GET /v1/visemes/stream with an API key: these frames, then close; visemes answered."""
    url = "ws" + base.removeprefix("http") + "/v1/visemes/stream"
    count = 0
    async with http.ws_connect(url, headers=AUTH) as ws:
        await ws.send_json({"sample_rate": 16000})
        assert (await ws.receive_json(timeout=10))["type"] == "ready"
        for ms in frames_ms:
            await ws.send_bytes(b"\x00\x01" * (16 * ms))
            reply = await ws.receive_json(timeout=30)
            assert reply["audio_duration_ms"] == ms
            count += len(reply["visemes"])
        await ws.send_json({"type": "close"})
        await ws.receive(timeout=10)
    return count


async def wait_for(http: aiohttp.ClientSession, base: str, field: str, want: int) -> Any:
    """The key's usage once `field` reached `want` (sessions are written as they end)."""
    async with asyncio.timeout(20):
        while True:
            total = (await usage(http, base))["keys"][0]["total"]
            if total[field] >= want:
                return total
            await asyncio.sleep(0.1)


async def test_concurrent_use_on_two_replicas_is_counted_exactly(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml({**ROOMY, "sessions_per_token": 5}))
    async with FakeOpenAI(scenario="transcribed") as fake:
        env = policy_env(
            token_key, keys, redis_prefix, VISEME_GATEWAY_OPENAI_WS_URL=f"{fake.url()}/v1/realtime"
        )
        async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:
            lengths = [500 + 37 * n for n in range(16)]  # whole milliseconds, all different
            visemes = await asyncio.gather(
                *(visemes_request(http, (a, b)[n % 2], ms) for n, ms in enumerate(lengths))
            )
            url = await sign(http, a)  # one signed URL for 5 sessions, 3 of their own
            urls = [on(url, (a, b)[n % 2]) for n in range(5)]
            urls += [on(await sign(http, b), a) for _ in range(3)]
            frames = [200, 300, 250]
            injected = await asyncio.gather(
                *(relay_session(http, u) for u in urls),
                *(stream_session(http, (a, b)[n % 2], frames) for n in range(4)),
            )
            texts = ["Hello there.", "One two three.", "Bob may."] * 2
            tts = [
                http.post(f"{(a, b)[n % 2]}/v1/visemes-audio", json={"text": t}, headers=AUTH)
                for n, t in enumerate(texts)
            ]
            for response in await asyncio.gather(*tts):
                assert response.status == 200
                await response.read()
            total = await wait_for(http, b, "sessions", 12)
            per_session = sum(len(pcm) for pcm in fake.sent_audio[: len(fake.chunks())])
            assert len(fake.sent_audio) == 8 * len(fake.chunks())
            assert total["visemes_audio_ms"] == sum(lengths)
            assert total["sessions"] == 8 + 4
            assert total["provider_audio_ms"] == 8 * int(per_session / 2 / fake.rate * 1000)
            assert total["stream_audio_ms"] == 4 * sum(frames)
            assert total["visemes"] == sum(visemes) + sum(injected)
            assert total["tts_characters"] == sum(len(t) for t in texts)
            assert total["tts_audio_ms"] > 0
            assert total["session_ms"] > 0
            # Prometheus, by key id: each replica counts its own share.
            shares = 0
            for base in (a, b):
                async with http.get(f"{base}/metrics") as r:
                    text = await r.text()
                for line in text.splitlines():
                    if line.startswith(
                        'viseme_gateway_key_usage_total{field="sessions",key_id="app"}'
                    ):
                        shares += int(float(line.split()[-1]))
            assert shares == 12
            assert "test-key" not in text  # never a secret
        # A restart forgets nothing: the counts are Redis's.
        async with two_gateways(env) as (c, _), aiohttp.ClientSession() as http:
            assert (await usage(http, c))["keys"][0]["total"] == total


async def test_a_key_sees_its_own_usage_and_an_admin_sees_every_key(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml(ROOMY, ROOMY))
    env = policy_env(token_key, keys, redis_prefix)
    async with two_gateways(env) as (a, b), aiohttp.ClientSession() as http:
        assert await visemes_request(http, a, 1000) >= 0
        today = dt.datetime.now(dt.UTC).date().isoformat()
        own = await usage(http, b)
        assert (own["from"], own["to"]) == (today, today)
        assert [k["key_id"] for k in own["keys"]] == ["app"]
        assert own["keys"][0]["days"][today]["visemes_audio_ms"] == 1000
        async with http.get(f"{b}/v1/usage?key_id=admin", headers=AUTH) as r:
            assert await error_of(r) == (403, "FORBIDDEN")
        every = await usage(http, a, ADMIN)
        assert {k["key_id"] for k in every["keys"]} == {"app", "admin"}
        by_id = {k["key_id"]: k for k in every["keys"]}
        assert by_id["app"]["total"]["visemes_audio_ms"] == 1000
        assert by_id["admin"]["days"] == {}
        yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
        async with http.get(f"{a}/v1/usage?from={yesterday}&to={yesterday}", headers=AUTH) as r:
            assert (await r.json())["keys"][0]["days"] == {}
        async with http.get(f"{a}/v1/usage?from=2026-13-01", headers=AUTH) as r:
            assert await error_of(r) == (400, "BAD_REQUEST")
        async with http.get(f"{a}/v1/usage?from={today}&to={yesterday}", headers=AUTH) as r:
            assert (await r.json())["keys"][0]["days"] == {}  # an empty range
        async with http.get(f"{a}/v1/usage?from=2000-01-01&to={today}", headers=AUTH) as r:
            answer = await r.json()
        first = dt.date.fromisoformat(today) - dt.timedelta(days=365)
        assert answer["from"] == first.isoformat()  # 366 days at most
        assert answer["keys"][0]["total"]["visemes_audio_ms"] == 1000
