"""How the relay fails: refused tokens, refusing or dying upstreams, revocation, Redis away."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from gateway.revocation import RedisStore
from gateway.settings import Settings
from tests.fakes.base import CUSTOM_CLOSE
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.gateway import AUTH, Gateway, point_at, running_gateway
from tests.fakes.openai import FakeOpenAI
from tests.test_processes import free_port, start_redis
from viseme_engine.engine import LoadedModels

OPENAI = {"ephemeral_token": "ek_edge_1", "model": "gpt-realtime"}


@pytest.fixture
async def world(
    settings: Settings, loaded_models: LoadedModels, redis_prefix: str
) -> AsyncIterator[tuple[FakeOpenAI, Gateway]]:
    async with (
        FakeOpenAI(scenario="hold") as fake,
        running_gateway(point_at(settings, fake), loaded_models, redis_prefix) as gw,
    ):
        yield fake, gw


async def handshake_status(gw: Gateway, url: str) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gw.http.ws_connect(url)
    return refused.value.status


async def closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> tuple[int, str]:
    """The close code and reason, which must come within `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.CLOSE:
                return int(message.data), str(message.extra)
            assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


async def test_bad_and_revoked_tokens_are_refused_before_the_upgrade(
    world: tuple[FakeOpenAI, Gateway],
) -> None:
    fake, gw = world
    assert await handshake_status(gw, f"{gw.ws_base}/v1/conversation?token=garbage") == 401
    assert await handshake_status(gw, f"{gw.ws_base}/v1/conversation") == 401
    signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
    await gw.revoke(signed_url.split("token=")[1])
    assert await handshake_status(gw, signed_url) == 403
    # A Gemini token is no key to the conversation endpoint, nor the reverse.
    gemini = (await gw.sign("gemini", {"api_key": "AIza-x"}))["api_key"]
    assert await handshake_status(gw, f"{gw.ws_base}/v1/conversation?token={gemini}") == 401
    assert fake.connections == []


async def test_upstream_refusal_closes_the_client_with_1011(
    world: tuple[FakeOpenAI, Gateway],
) -> None:
    fake, gw = world
    fake.scenario = "refuse"
    signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
    async with gw.http.ws_connect(signed_url) as ws:
        assert await closed_within(ws, 1.0) == (1011, "upstream refused: HTTP 403")


async def test_private_agent_with_a_wrong_key_closes_with_1011(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    async with (
        FakeElevenLabs() as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        config = {"agent_id": "agent_private", "api_key": "xi-wrong"}
        signed_url = (await gw.sign("elevenlabs", config))["signed_url"]
        async with gw.http.ws_connect(signed_url) as ws:
            assert await closed_within(ws, 1.0) == (1011, "upstream refused: HTTP 401")
        assert fake.connections == []


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [("drop", (1011, "upstream closed")), ("custom_close", CUSTOM_CLOSE)],
)
async def test_upstream_ending_is_relayed_to_the_client(
    world: tuple[FakeOpenAI, Gateway], scenario: str, expected: tuple[int, str]
) -> None:
    fake, gw = world
    fake.scenario = scenario  # type: ignore[assignment]
    signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
    async with gw.http.ws_connect(signed_url) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "session.created"
        assert await closed_within(ws, 1.0) == expected


@pytest.mark.parametrize("revoke", [{"all": True}, {"jti": None}])
async def test_revocation_closes_open_sessions_with_4001(
    world: tuple[FakeOpenAI, Gateway], revoke: dict[str, object]
) -> None:
    fake, gw = world
    signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
    async with gw.http.ws_connect(signed_url) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "session.created"
        if "jti" in revoke:
            introspect = {"token": signed_url.split("token=")[1]}
            async with gw.http.post(
                f"{gw.base}/v1/tokens/introspect", json=introspect, headers=AUTH
            ) as r:
                revoke = {"jti": (await r.json())["jti"]}
        async with gw.http.post(f"{gw.base}/v1/tokens/revoke", json=revoke, headers=AUTH) as r:
            assert r.status == 200
        assert await closed_within(ws, 1.0) == (4001, "token revoked")
    await asyncio.wait_for(fake.last.closed.wait(), 1.0)


class OwnRedis:
    """A Redis of this test's own on a free port, to stop and start again at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = start_redis(self.port)

    def store(self, prefix: str) -> RedisStore:
        return RedisStore.from_url(f"redis://127.0.0.1:{self.port}/0", prefix)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()

    def start(self) -> None:
        self.proc = start_redis(self.port)  # the same port: back, every old connection dead


@contextlib.contextmanager
def own_redis() -> Iterator[OwnRedis]:
    redis = OwnRedis()
    try:
        yield redis
    finally:
        redis.proc.kill()
        redis.proc.wait()


async def test_redis_down_refuses_with_503(settings: Settings, loaded_models: LoadedModels) -> None:
    with own_redis() as redis:
        async with (
            FakeOpenAI(scenario="hold") as fake,
            running_gateway(
                point_at(settings, fake), loaded_models, store=redis.store("vg-edge:")
            ) as gw,
        ):
            signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
            redis.stop()
            assert await handshake_status(gw, signed_url) == 503  # fails closed
            assert fake.connections == []


async def test_unreachable_upstream_closes_the_client_with_1011(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    async with FakeOpenAI() as fake:
        dead = point_at(settings, fake)
    # The fake is gone: its port refuses connections now.
    async with running_gateway(dead, loaded_models) as gw:
        signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
        async with gw.http.ws_connect(signed_url) as ws:
            assert await closed_within(ws, 1.0) == (1011, "upstream unreachable")


async def test_nothing_is_injected_before_the_metadata(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    async with (
        FakeElevenLabs(scenario="hold") as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        fake.early_audio = True
        signed_url = (await gw.sign("elevenlabs", {"agent_id": "agent_public"}))["signed_url"]
        async with gw.http.ws_connect(signed_url) as ws:
            await ws.send_json({"type": "conversation_initiation_client_data"})
            first = await ws.receive_json(timeout=5)
            second = await ws.receive_json(timeout=5)
            assert (first["type"], second["type"]) == ("audio", "conversation_initiation_metadata")


async def test_visemes_off_relays_audio_untouched(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    async with FakeOpenAI() as fake:
        plain = dataclasses.replace(point_at(settings, fake), visemes=False)
        async with running_gateway(plain, loaded_models) as gw:
            signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
            async with gw.http.ws_connect(signed_url) as ws:
                deltas: list[dict[str, Any]] = []
                while len(deltas) < len(fake.chunks()):
                    message = await ws.receive_json(timeout=5)
                    if message["type"] == "response.output_audio.delta":
                        deltas.append(message)
            assert all("mascotVisemes" not in d for d in deltas)
            sent = b"".join(fake.sent_audio)
            assert b"".join(base64.b64decode(d["delta"]) for d in deltas) == sent


@pytest.mark.parametrize(
    "malformed",
    [
        {"type": "session.updated",
         "session": {"audio": {"output": {"format": {"type": "audio/pcm", "rate": "abc"}}}}},
        {"type": "session.updated", "session": {"audio": "pcm16"}},
        {"type": "session.updated", "session": {"audio": {"output": ["not", "an", "object"]}}},
        {"type": "response.output_audio_transcript.delta", "delta": {"nested": 1}},
    ],
)  # fmt: skip
async def test_a_malformed_known_event_is_relayed_and_the_session_lives(
    settings: Settings, loaded_models: LoadedModels, malformed: dict[str, Any]
) -> None:
    # The fake echoes what the client sends, so the client plays the upstream's part.
    async with (
        FakeOpenAI(scenario="echo") as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
        async with gw.http.ws_connect(signed_url) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            await ws.send_json(malformed)
            assert await ws.receive_json(timeout=5) == malformed  # verbatim, not a close
            pcm = b"\0\0" * 2400
            audio = {"type": "response.output_audio.delta", "delta": base64.b64encode(pcm).decode()}
            await ws.send_json(audio)
            answer = await ws.receive_json(timeout=5)
            assert answer["delta"] == audio["delta"]
            assert "mascotVisemes" in answer  # the stream goes on with visemes
        async with gw.http.get(f"{gw.base}/metrics") as response:
            metrics = await response.text()
    if malformed["type"] == "session.updated":
        counter = "viseme_gateway_viseme_chunks_skipped_total"
        assert f'{counter}{{provider="openai",reason="adapter_error"}} 1.0' in metrics


async def test_a_session_opened_while_the_models_load_gets_visemes_once_they_are_in(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    from gateway.state import ENGINE

    async with (
        FakeOpenAI(scenario="echo") as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        slot = gw.server.app[ENGINE]
        engine, slot.engine = slot.engine, None  # as while the models still load
        signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
        pcm = base64.b64encode(b"\0\0" * 2400).decode()
        audio = {"type": "response.output_audio.delta", "delta": pcm}
        async with gw.http.ws_connect(signed_url) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            await ws.send_json(audio)
            assert "mascotVisemes" not in await ws.receive_json(timeout=5)
            slot.engine = engine  # loaded now
            await ws.send_json(audio)
            assert "mascotVisemes" in await ws.receive_json(timeout=5)


async def test_provider_secrets_never_reach_the_log_even_at_debug(
    settings: Settings, loaded_models: LoadedModels, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    secret = "ek_edge_SECRET_1234567890"
    with caplog.at_level(logging.DEBUG):  # every logger, websockets' included
        async with (
            FakeOpenAI(scenario="hold") as fake,
            running_gateway(point_at(settings, fake), loaded_models) as gw,
        ):
            signed_url = (await gw.sign("openai", {**OPENAI, "ephemeral_token": secret}))[
                "signed_url"
            ]
            async with gw.http.ws_connect(signed_url) as ws:
                assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            assert fake.last.headers["Authorization"] == f"Bearer {secret}"  # it did go upstream
            assert logging.getLogger("websockets.client").isEnabledFor(logging.DEBUG)
    # websockets.server is the fake provider's side: it may log what it was sent
    ours = [r for r in caplog.records if not r.name.startswith("websockets.server")]
    assert [r.getMessage() for r in ours if secret in r.getMessage()] == []


async def test_a_huge_audio_message_gets_the_visemes_of_its_pieces(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    from gateway.state import ENGINE
    from viseme_engine.audio import AudioFormat
    from viseme_engine.stream import VisemeStream

    rng = np.random.default_rng(7)
    pcm = (rng.standard_normal(24000 * 45) * 3000).astype("<i2").tobytes()  # 45 s, 2 MiB
    async with (
        FakeOpenAI(scenario="echo") as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
        async with gw.http.ws_connect(signed_url, max_msg_size=0) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            delta = base64.b64encode(pcm).decode()
            await ws.send_json({"type": "response.output_audio.delta", "delta": delta})
            answer = await ws.receive_json(timeout=30)
        stats = gw.server.app[ENGINE].engine.batch_stats()["default"]  # type: ignore[union-attr]
    assert stats.longest_samples <= 16000 + 320  # a second (and a frame) at a time, never 45 s
    stream = VisemeStream(loaded_models.models["default"], AudioFormat("pcm_s16le", 24000))
    want = [{"visemeId": e.viseme_id, "offset": e.offset_ms} for e in stream.feed(pcm)]
    assert answer["mascotVisemes"]["visemes"] == want
    assert answer["mascotVisemes"]["audio_duration"] == 45_000


async def test_a_revocation_lost_with_the_channel_is_caught_on_rejoining(
    settings: Settings, loaded_models: LoadedModels, redis_prefix: str
) -> None:
    import redis.asyncio as aioredis

    from gateway.apikeys import ApiKey
    from tests.conftest import API_KEY, REDIS_URL

    async with (
        FakeOpenAI(scenario="hold") as fake,
        running_gateway(point_at(settings, fake), loaded_models, redis_prefix) as gw,
    ):
        signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
        introspect = {"token": signed_url.split("token=")[1]}
        async with gw.http.post(
            f"{gw.base}/v1/tokens/introspect", json=introspect, headers=AUTH
        ) as r:
            claims = await r.json()
        async with gw.http.ws_connect(signed_url) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            # Another replica revoked the token while this one's channel was down:
            # the key is in Redis (as routes_tokens writes it), the message never came.
            redis = aioredis.Redis.from_url(REDIS_URL)
            owner = ApiKey.parse(API_KEY).key_id
            await redis.set(f"{redis_prefix}revoked:jti:{owner}:{claims['jti']}", b"1", px=60_000)
            await asyncio.sleep(0.3)
            assert not ws.closed  # pub/sub said nothing
            await redis.client_kill_filter(_type="pubsub")  # the link drops
            assert await closed_within(ws, 3.0) == (4001, "token revoked")
            await redis.aclose()


async def test_the_first_check_after_a_redis_restart_does_not_fail(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    with own_redis() as redis:
        async with (
            FakeOpenAI(scenario="hold") as fake,
            running_gateway(
                point_at(settings, fake), loaded_models, store=redis.store("vg-restart:")
            ) as gw,
        ):
            first = (await gw.sign("openai", OPENAI))["signed_url"]
            async with gw.http.ws_connect(first) as ws:  # a pooled connection now exists
                assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            redis.stop()
            redis.start()
            second = (await gw.sign("openai", OPENAI))["signed_url"]
            async with gw.http.ws_connect(second) as ws:
                assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            assert len(fake.connections) == 2


async def test_a_json_bomb_from_the_client_closes_its_session_with_1009(
    world: tuple[FakeOpenAI, Gateway],
) -> None:
    fake, gw = world
    signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
    async with gw.http.ws_connect(signed_url) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "session.created"
        await ws.send_str("[" * 100_000)
        assert await closed_within(ws, 2.0) == (1009, "JSON message nested too deeply")
    seen = fake.last
    await asyncio.wait_for(seen.closed.wait(), 2.0)
    assert all(not str(f).startswith("[[[") for f in seen.received)  # never forwarded


async def test_a_token_whose_config_lacks_a_field_is_refused_before_the_upgrade(
    world: tuple[FakeOpenAI, Gateway], settings: Settings
) -> None:
    from tests.test_tokens import _forge

    fake, gw = world
    # Sealed with the gateway's own key (as only a key holder could): no ephemeral_token.
    token = _forge(settings.token_keys[0], provider="openai", provider_config={"model": "m"})
    url = f"{gw.base.replace('http', 'ws')}/v1/conversation?token={token}"
    assert await handshake_status(gw, url) == 401
    assert fake.connections == []


async def test_a_frame_over_the_limit_closes_with_a_reason_that_says_so(
    world: tuple[FakeOpenAI, Gateway],
) -> None:
    fake, gw = world
    signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
    async with gw.http.ws_connect(signed_url, max_msg_size=0) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "session.created"
        with contextlib.suppress(ConnectionError):  # the gateway may close mid-send
            await ws.send_str("x" * (16 * 1024 * 1024 + 1))
        code, reason = await closed_within(ws, 10.0)
    assert (code, reason) == (1009, "message over the 16 MiB limit")
    assert all(len(f) <= 16 * 1024 * 1024 for f in fake.last.received)  # never forwarded


async def test_visemes_keep_their_true_time_across_chunk_starts(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    from tests.fakes.base import speech_chunks
    from viseme_engine.audio import AudioFormat
    from viseme_engine.stream import VisemeStream

    chunks = speech_chunks(24000, chunk_ms=40)  # shorter than lookahead plus hold
    async with (
        FakeOpenAI(scenario="echo") as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
        times: list[tuple[int, int]] = []
        negative = False
        async with gw.http.ws_connect(signed_url) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            for index, pcm in enumerate(chunks):
                delta = base64.b64encode(pcm).decode()
                await ws.send_json({"type": "response.output_audio.delta", "delta": delta})
                visemes = (await ws.receive_json(timeout=5))["mascotVisemes"]["visemes"]
                times += [(v["visemeId"], index * 40 + v["offset"]) for v in visemes]
                negative = negative or any(v["offset"] < 0 for v in visemes)
    assert negative  # some visemes began in audio already sent
    stream = VisemeStream(loaded_models.models["default"], AudioFormat("pcm_s16le", 24000))
    want = [(e.viseme_id, e.offset_ms) for c in chunks for e in stream.feed(c)]
    assert times == want  # stream time = chunk start + offset, never clamped to the chunk


async def test_a_lost_revocation_channel_is_logged_once_and_its_return_once(
    settings: Settings, loaded_models: LoadedModels, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with own_redis() as redis:
        async with (
            FakeOpenAI(scenario="hold") as fake,
            running_gateway(
                point_at(settings, fake), loaded_models, store=redis.store("vg-backoff:")
            ) as gw,
        ):
            await gw.sign("openai", OPENAI)
            await asyncio.sleep(0.3)  # the channel is joined
            caplog.set_level(logging.INFO, logger="gateway")
            caplog.clear()
            redis.stop()
            await asyncio.sleep(3.0)  # retrying, backing off
            redis.start()
            await asyncio.sleep(3.0)  # at most 2 s between tries: back by now
    said = [r.getMessage() for r in caplog.records if r.name == "gateway"]
    lost = [m for m in said if m.startswith("revocation channel lost")]
    assert len(lost) == 1, said  # not two warnings a second
    assert said.count("revocation channel back") == 1, said
