"""Text-informed visemes through the relay: each provider's transcript events pin them.

Each fake sends one response whose transcript comes, in the provider's own
event shape, before its audio. The official SDKs hold the conversation. The
visemes they receive must be exactly those of a local stream given the same
audio chunks and the same transcript pieces, and must differ from acoustic-only
visemes: proof that the relay read the transcript and used it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from google import genai
from openai import AsyncOpenAI

from gateway.settings import Settings
from tests.fakes.base import TRANSCRIPT, Message, until
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.gateway import Gateway, point_at, running_gateway
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.test_processes import self_signed
from tests.test_relay_elevenlabs import AGENT, Speaker, conversation, customer_backend
from tests.test_relay_gemini import API_KEY_CONFIG, Tap
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import LoadedModels
from viseme_engine.stream import VisemeStream
from viseme_engine.text_align import TextAligner, timed_visemes

# Transcript pieces as the relay is given them: text, final, and where the provider
# times them, each character's start on the stream's clock (ms).
Pieces = Sequence[tuple[str, bool] | tuple[str, bool, Sequence[float]]]


def reference(
    models: LoadedModels,
    rate: int,
    chunks: Sequence[bytes],
    pieces: Pieces | None,
    with_audio: bool = False,
) -> list[list[Message]]:
    """Per audio chunk, the viseme entries a relay session must inject; then the
    final ones (the flush at the end of the audio, offsets into the last chunk).
    The pieces come before the audio, or, `with_audio`, one before each chunk."""
    aligner = TextAligner("en") if pieces is not None else None

    def add(text: str, final: bool, *timed: Sequence[float]) -> None:
        assert aligner is not None  # what EngineStream.add_text does, in line
        done, times = aligner.take_timed(text, final, timed[0] if timed else None)
        if done.strip():
            words, onsets = timed_visemes(done, times, "en")
            aligner.add_visemes(words, onsets=onsets)

    for piece in pieces if pieces is not None and not with_audio else ():
        add(*piece)
    stream = VisemeStream(models.models["default"], AudioFormat("pcm_s16le", rate), text=aligner)
    out, start_ms, last_ms = [], 0.0, 0.0
    for i, pcm in enumerate(chunks):
        if pieces is not None and with_audio:
            add(*pieces[i])
        events = stream.feed(pcm)
        out.append([{"visemeId": e.viseme_id, "offset": round(e.offset_ms - start_ms)}
                    for e in events])  # fmt: skip
        last_ms, start_ms = start_ms, start_ms + len(pcm) / 2 / rate * 1000
    out.append([{"visemeId": e.viseme_id, "offset": round(e.offset_ms - last_ms)}
                for e in stream.flush()])  # fmt: skip
    return out


def check(
    got: list[list[Message]], models: LoadedModels, rate: int, chunks: Sequence[bytes],
    pieces: Pieces, final: bool = True, with_audio: bool = False, changed: bool = True,
) -> None:  # fmt: skip
    informed = reference(models, rate, chunks, pieces, with_audio)
    if not final:
        informed[-1] = []
    assert got == informed
    if changed:
        assert informed != reference(models, rate, chunks, None)  # the text changed something


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
async def openai_world(
    settings: Settings, loaded_models: LoadedModels
) -> AsyncIterator[tuple[FakeOpenAI, Gateway]]:
    async with (
        FakeOpenAI("transcribed") as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        yield fake, gw


async def test_openai_transcript_deltas_pin_the_visemes(
    openai_world: tuple[FakeOpenAI, Gateway], loaded_models: LoadedModels
) -> None:
    fake, gw = openai_world
    signed_url = (await gw.sign("openai", {"ephemeral_token": "ek_test_1"}))["signed_url"]
    client = AsyncOpenAI(api_key="sk-unused", websocket_base_url=signed_url)
    events: list[Message] = []
    async with client.realtime.connect(model="gpt-realtime") as connection:
        async with asyncio.timeout(10):
            while not events or events[-1]["type"] != "response.done":
                events.append(json.loads(await connection.recv_bytes()))
    deltas = [e for e in events if e["type"] == "response.output_audio.delta"]
    words = TRANSCRIPT.split(" ")
    pieces = [(w if i == 0 else " " + w, False) for i, w in enumerate(words)]
    (done,) = [e for e in events if e["type"] == "response.output_audio.done"]
    got = [d["mascotVisemes"]["visemes"] for d in [*deltas, done]]
    check(got, loaded_models, fake.rate, fake.sent_audio, pieces)
    # the transcript events themselves reach the client as they came
    texts = [e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"]
    assert "".join(texts) == TRANSCRIPT


async def elevenlabs_visemes(gw: Gateway, fake: FakeElevenLabs) -> list[list[Message]]:
    """One conversation through the official SDK: the viseme entries of each
    visemes message it received, once every audio chunk has had its own."""
    backend = await customer_backend(gw, AGENT)
    conv = conversation(backend, Speaker())
    await conv.start_session()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
    n = len(fake.chunks())
    await until(lambda: sum(f["type"] == "visemes" for f in conv.frames) == n)
    await conv.end_session()  # type: ignore[no-untyped-call]
    await conv.wait_for_session_end()
    await backend.close()
    return [f["visemes"] for f in conv.frames if f["type"] == "visemes"]


async def test_elevenlabs_agent_response_pins_the_visemes(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    async with (
        FakeElevenLabs("transcribed") as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        got = await elevenlabs_visemes(gw, fake)
    # ElevenLabs sends no end-of-audio event: no final visemes (the reference's last list)
    check([*got, []], loaded_models, fake.rate, fake.sent_audio, [(TRANSCRIPT, True)], final=False)


async def test_elevenlabs_character_timings_are_priors_and_their_drift_is_measured(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    # Each audio event carries its characters, timed 300 ms later than spoken.
    async with (
        FakeElevenLabs("transcribed", aligned=True, chunk_ms=250, timing_lag_ms=300) as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        got = await elevenlabs_visemes(gw, fake)
        metrics = await gw.metrics()
    # each event's times, from its own start, moved by where its audio starts
    pieces, start = [], 0.0
    for (chars, starts), pcm in zip(fake.alignments, fake.sent_audio, strict=True):
        pieces.append((chars, False, [start + t for t in starts]))
        start += len(pcm) / 2 / fake.rate * 1000
    # Words that come with their audio, timed 300 ms late, leave this sentence's
    # events as the audio alone has them (the prior must not hurt); that the
    # aligner used them shows in the drift it measured, below.
    check([*got, []], loaded_models, fake.rate, fake.sent_audio, pieces, False, True, False)
    # how far the timings were from where the audio put the words: about 300 ms late
    late = 'viseme_gateway_text_timing_drift_seconds_{}{{provider="elevenlabs",timing="late"}}'
    count, total = metrics[late.format("count")], metrics[late.format("sum")]
    assert count >= 2
    assert 0.2 < total / count < 0.4


@pytest.mark.parametrize("client_asks", [False, True])
async def test_gemini_transcription_is_asked_for_and_hidden_unless_the_client_asked(
    settings: Settings, loaded_models: LoadedModels, tls: tuple[Path, Path], client_asks: bool
) -> None:
    async with (
        FakeGemini("transcribed") as fake,
        running_gateway(point_at(settings, fake), loaded_models, tls=tls) as gw,
    ):
        signed = await gw.sign("gemini", API_KEY_CONFIG)
        client = genai.Client(
            api_key=signed["api_key"],
            http_options={"base_url": signed["base_url"], "api_version": "v1beta",
                          "async_client_args": {"ssl": gw.client_ssl}},
        )  # fmt: skip
        config: Any = {"response_modalities": ["AUDIO"]}
        if client_asks:
            config["output_audio_transcription"] = {}
        async with client.aio.live.connect(model="gemini-live-2.5", config=config) as session:
            tap = Tap(session._ws)
            session._ws = tap  # type: ignore[assignment]
            messages = [m async for m in session.receive()]
        setup = fake.last.messages()[0]["setup"]
    # upstream always transcribes: the gateway asks when the client did not
    assert {"outputAudioTranscription", "output_audio_transcription"} & set(setup)
    heard = [
        m.server_content.output_transcription.text
        for m in messages
        if m.server_content and m.server_content.output_transcription
    ]
    # the client sees transcription exactly when it asked for it
    assert "".join(t or "" for t in heard) == (TRANSCRIPT if client_asks else "")
    raw = [json.loads(f) for f in tap.frames]
    got = [r["mascotVisemes"]["visemes"] for r in raw if "mascotVisemes" in r]
    words = TRANSCRIPT.split(" ")
    pieces = [(" ".join(words[:2]) + " ", False), (" ".join(words[2:]), False)]
    check(got, loaded_models, fake.rate, fake.sent_audio, pieces)
