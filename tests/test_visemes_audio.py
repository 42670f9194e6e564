"""POST /v1/visemes-audio: the real app on loopback, espeak-ng for real, fake TTS upstreams."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.settings import Settings
from gateway.state import ENGINE
from providers.tts import split_sentences
from tests.conftest import API_KEY
from tests.tts_fakes import ELEVENLABS_KEY, OPENAI_KEY, FakeTts
from viseme_engine.engine import LoadedModels

Client = TestClient[web.Request, web.Application]
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MakeClient = Callable[..., Awaitable[Client]]
Event = tuple[str, dict[str, Any]]
THREE = "Bob may pay my mom a penny. The quick brown fox jumps! Is it raining on the moon?"


@pytest.fixture
def fake() -> FakeTts:
    return FakeTts()


@pytest.fixture
def make_client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    settings: Settings,
    loaded_models: LoadedModels,
    fake: FakeTts,
) -> MakeClient:
    async def make(**changes: Any) -> Client:
        upstream = await aiohttp_server(fake.app())
        base = str(upstream.make_url("")).rstrip("/")
        urls = {"elevenlabs_api_url": base, "openai_api_url": base}
        changes = {"urls": urls, **changes}
        app = create_app(dataclasses.replace(settings, **changes), models=loaded_models)
        return await aiohttp_client(app)

    return make


def parse_event(block: bytes) -> Event:
    fields = dict(line.split(": ", 1) for line in block.decode().strip().splitlines())
    return fields.get("event", "message"), json.loads(fields["data"])


async def read_events(response: Any) -> list[Event]:
    text = await response.read()
    return [parse_event(block) for block in text.split(b"\n\n") if block.strip()]


def check_stream(events: list[Event], sample_rate: int) -> list[dict[str, int]]:
    """The shape every successful stream has; returns all visemes in order."""
    assert events, "no events"
    audio = [data for kind, data in events if data.get("type") == "audio"]
    visemes = [data for kind, data in events if data.get("type") == "visemes"]
    assert all(kind == "message" for kind, _ in events)
    assert len(audio) == len(visemes)
    total_ms = 0.0
    everything = []
    for index, (sound, marks) in enumerate(zip(audio, visemes, strict=True)):
        assert events[2 * index][1] is sound  # audio i, then its visemes
        assert set(sound) == {"type", "data", "sample_rate", "sequence", "chunk_duration_ms"}
        assert (sound["sequence"], sound["sample_rate"]) == (index, sample_rate)
        pcm = base64.b64decode(sound["data"])
        assert len(pcm) % 2 == 0
        duration = len(pcm) / 2 / sample_rate * 1000
        assert sound["chunk_duration_ms"] == round(duration)
        total_ms += duration
        assert set(marks) == {
            "type", "visemes", "chunk_duration_ms", "audio_sequence", "viseme_sequence"
        }  # fmt: skip
        assert (marks["audio_sequence"], marks["viseme_sequence"]) == (index, "1/1")
        for viseme in marks["visemes"]:
            assert set(viseme) == {"visemeId", "offset"}
            assert 0 <= viseme["visemeId"] <= 21
            assert viseme["offset"] <= total_ms + 1  # never ahead of the audio sent so far
        everything += marks["visemes"]
    offsets = [v["offset"] for v in everything]
    assert offsets == sorted(offsets)
    assert any(v["visemeId"] != 0 for v in everything), "speech gave no visemes"
    return everything


async def test_espeak_speaks_every_sentence_with_cumulative_offsets(
    make_client: MakeClient,
) -> None:
    client = await make_client(sse_chunk_ms=250)
    response = await client.post("/v1/visemes-audio", json={"text": THREE}, headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    events = await read_events(response)
    visemes = check_stream(events, 22_050)
    total = sum(d["chunk_duration_ms"] for _, d in events if d["type"] == "audio")
    # Offsets run on across sentences: the last visemes sit in the third sentence.
    one = await read_events(
        await client.post("/v1/visemes-audio", json={"text": THREE.split(".")[0]}, headers=AUTH)
    )
    first_sentence = sum(d["chunk_duration_ms"] for _, d in one if d["type"] == "audio")
    assert total > 2.5 * first_sentence
    assert max(v["offset"] for v in visemes) > 2 * first_sentence
    # Chunks never span sentences: some are short, cut at a sentence's end.
    durations = [d["chunk_duration_ms"] for _, d in events if d["type"] == "audio"]
    assert sum(1 for d in durations if d < 249) >= 3


async def test_espeak_voice_speed_and_indonesian(make_client: MakeClient) -> None:
    client = await make_client()
    lengths = {}
    for speed in (0.5, 2.0):
        body = {"text": "Selamat pagi, apa kabar?", "model": "indonesian", "voice": "f2"}
        response = await client.post(
            "/v1/visemes-audio", json={**body, "speed": speed}, headers=AUTH
        )
        events = await read_events(response)
        check_stream(events, 22_050)
        lengths[speed] = sum(d["chunk_duration_ms"] for _, d in events if d["type"] == "audio")
    assert lengths[0.5] > 2 * lengths[2.0]


async def test_first_audio_leaves_before_the_last_sentence_is_synthesized(
    make_client: MakeClient, fake: FakeTts
) -> None:
    client = await make_client()
    fake.hold_text = "raining"  # the fake holds the third sentence until released
    body = {"text": THREE, "tts_engine": "elevenlabs", "tts_api_key": ELEVENLABS_KEY}
    response = await client.post("/v1/visemes-audio", json=body, headers=AUTH)
    assert response.status == 200
    first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
    assert parse_event(first)[1]["type"] == "audio"
    assert not fake.release.is_set()  # the last sentence is still being "synthesized"
    fake.release.set()
    events = [parse_event(first), *await read_events(response)]
    check_stream(events, 16_000)
    assert [r["text"] for r in fake.requests] == split_sentences(THREE)


async def test_elevenlabs_request_shape(make_client: MakeClient, fake: FakeTts) -> None:
    client = await make_client()
    body = {
        "text": "Hello there. Goodbye now.",
        "tts_engine": "elevenlabs",
        "tts_api_key": ELEVENLABS_KEY,
        "voice": "N2lVS1w4EtoT3dr4eOWO",
        "speed": 2.0,
    }
    events = await read_events(await client.post("/v1/visemes-audio", json=body, headers=AUTH))
    check_stream(events, 16_000)
    first, second = fake.requests
    assert first["voice"] == "N2lVS1w4EtoT3dr4eOWO"
    assert first["voice_settings"] == {"speed": 1.2}  # clamped into ElevenLabs' range
    assert (first["text"], first["next_text"]) == ("Hello there.", "Goodbye now.")
    assert (second["text"], second["previous_text"]) == ("Goodbye now.", "Hello there.")


async def test_openai_request_shape(make_client: MakeClient, fake: FakeTts) -> None:
    client = await make_client()
    body = {
        "text": "Hello from the other side.",
        "tts_engine": "openai",
        "tts_api_key": OPENAI_KEY,
        "voice": "coral",
        "speed": 1.5,
    }
    events = await read_events(await client.post("/v1/visemes-audio", json=body, headers=AUTH))
    check_stream(events, 24_000)
    assert fake.requests == [
        {
            "engine": "openai",
            "model": "gpt-4o-mini-tts",
            "input": "Hello from the other side.",
            "voice": "coral",
            "response_format": "pcm",
            "speed": 1.5,
        }
    ]


@pytest.mark.parametrize(
    ("engine", "key", "status", "needle"),
    [
        ("elevenlabs", "sk_wrong", None, "HTTP 401: Invalid API key"),
        ("openai", "sk-wrong", None, "HTTP 401: Incorrect API key"),
        ("elevenlabs", ELEVENLABS_KEY, 500, "HTTP 500: upstream broke"),
        ("openai", OPENAI_KEY, 500, "HTTP 500: upstream broke"),
    ],
)
async def test_upstream_failure_is_an_error_event(
    make_client: MakeClient, fake: FakeTts, engine: str, key: str, status: int, needle: str
) -> None:
    client = await make_client()
    fake.fail_status = status
    body = {"text": THREE, "tts_engine": engine, "tts_api_key": key}
    response = await client.post("/v1/visemes-audio", json=body, headers=AUTH)
    assert response.status == 200
    events = await asyncio.wait_for(read_events(response), 10)
    assert events[-1][0] == "error"
    assert needle in events[-1][1]["message"]
    assert events[-1][1]["audio_sequence"] == 0
    assert len(events) == 1
    assert len(fake.requests) == 1  # no more sentences after a failure


async def test_upstream_hang_fails_within_the_timeout(
    make_client: MakeClient, fake: FakeTts
) -> None:
    client = await make_client(tts_timeout_seconds=0.5)
    fake.hang = True
    body = {"text": THREE, "tts_engine": "openai", "tts_api_key": OPENAI_KEY}
    started = time.monotonic()
    response = await client.post("/v1/visemes-audio", json=body, headers=AUTH)
    events = await asyncio.wait_for(read_events(response), 10)
    elapsed = time.monotonic() - started
    assert events == [
        ("error", {"message": "OpenAI TTS failed: no answer within 0.5 s", "audio_sequence": 0})
    ]
    assert 0.4 < elapsed < 3


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 5001}, "text"),
        ({"text": "hi", "tts_engine": "festival"}, "tts_engine"),
        ({"text": "hi", "voice": "alloy"}, "not an espeak voice"),
        ({"text": "hi", "tts_engine": "openai", "tts_api_key": "k", "voice": "m1"}, "OpenAI"),
        ({"text": "hi", "tts_engine": "elevenlabs", "tts_api_key": "k", "voice": "a/b"}, "voice"),
        ({"text": "hi", "model": "klingon"}, "model"),
        ({"text": "hi", "speed": 0.4}, "speed"),
        ({"text": "hi", "speed": 2.5}, "speed"),
        ({"text": "hi", "tts_engine": "elevenlabs"}, "tts_api_key is required"),
        ({"text": "hi", "tts_engine": "openai"}, "tts_api_key is required"),
        ({"text": "hi", "surprise": 1}, "surprise"),
    ],
)
async def test_bad_requests_are_400_naming_the_problem(
    make_client: MakeClient, body: dict[str, Any], needle: str
) -> None:
    client = await make_client()
    response = await client.post("/v1/visemes-audio", json=body, headers=AUTH)
    assert response.status == 400
    error = (await response.json())["error"]
    assert needle in error, error


async def test_bad_key_is_403(make_client: MakeClient) -> None:
    client = await make_client()
    for headers in ({}, {"Authorization": "Bearer not-a-key-at-all"}):
        response = await client.post("/v1/visemes-audio", json={"text": "hi"}, headers=headers)
        assert (response.status, await response.json()) == (
            403,
            {"error": "Invalid API key", "code": "INVALID_API_KEY"},
        )


def test_sentences_split_at_ends_and_long_runs_at_commas() -> None:
    assert split_sentences("One. Two!  Three?\nFour") == ["One.", "Two!", "Three?", "Four"]
    assert split_sentences("Wait... what?! ...") == ["Wait...", "what?! ..."]
    long = ", ".join(["a few words here"] * 40) + "."
    pieces = split_sentences(long)
    assert len(pieces) > 1
    assert all(len(p) <= 300 for p in pieces)
    assert " ".join(pieces) == long


async def test_client_leaving_mid_sentence_frees_everything(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    settings: Settings,
    loaded_models: LoadedModels,
    fake: FakeTts,
) -> None:
    upstream = await aiohttp_server(fake.app())
    base = str(upstream.make_url("")).rstrip("/")
    # One chunk per sentence: once the first is written, nothing is left to write
    # while the upstream stalls, so only watching the connection notices the client.
    changed = dataclasses.replace(settings, urls={"openai_api_url": base}, sse_chunk_ms=5000)
    app = create_app(changed, models=loaded_models)
    # Served like `viseme-gateway serve` does: aiohttp's test server would cancel the
    # handler when its client leaves; production handlers are not cancelled.
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    engine = app[ENGINE].engine
    assert engine is not None
    fake.hold_text = "raining"  # the upstream stalls on the second sentence
    body = {"text": "Hello. Is it raining?", "tts_engine": "openai", "tts_api_key": OPENAI_KEY}
    try:
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"http://127.0.0.1:{port}/v1/visemes-audio", json=body, headers=AUTH
            )
            await response.content.readuntil(b"\n\n")
            await response.content.readuntil(b"\n\n")  # the first sentence, all of it
            assert engine.open_streams == 1
            response.close()
            deadline = time.monotonic() + 2.0
            while engine.open_streams or not fake.upstream_closed:
                assert time.monotonic() < deadline, (engine.open_streams, fake.upstream_closed)
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()


async def test_the_input_text_pins_the_visemes_unless_use_text_is_false(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    text = "Bob may pay my mom."

    async def visemes(**extra: Any) -> list[dict[str, int]]:
        body = {"text": text, "voice": "m3", **extra}
        events = await read_events(await client.post("/v1/visemes-audio", json=body, headers=AUTH))
        return check_stream(events, 22_050)

    informed, acoustic = await visemes(), await visemes(use_text=False)
    off = await make_client(text_informed=False)
    body = {"text": text, "voice": "m3"}
    events = await read_events(await off.post("/v1/visemes-audio", json=body, headers=AUTH))
    assert check_stream(events, 22_050) == acoustic  # the gateway-wide switch
    assert informed != acoustic  # same speech, the text changed the visemes
    assert sum(v["visemeId"] == 21 for v in informed) >= 5  # b, m, p, m, m
