"""clients/pipecat: a real pipecat pipeline (a TTS service speaking espeak-ng audio, the
viseme processor, pipecat's WebSocket server transport) and a raw WebSocket client
reading the protobuf frames the transport sends, as a browser client would."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
import websockets
from pipecat.frames.frames import (
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.frames.protobufs import frames_pb2
from pipecat.pipeline.worker import PipelineWorker
from viseme_pipecat import VISEMES_TYPE, example

from tests.sources import Recorder, replay
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import LoadedModels
from viseme_engine.live import shared_engine
from viseme_engine.stream import VisemeStream
from viseme_engine.text_align import TextAligner, timed_visemes

RATE = 16_000
SENTENCE = "Bob may pay my mom."
LONG = "Bob may pay my mom, and then we will all go home and sleep for a very long time."


@dataclass
class Received:
    """What the client got, in order: audio (its bytes) and viseme messages."""

    items: list[tuple[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, kind: str, value: Any) -> None:
        self.items.append((kind, value))
        self.changed.set()

    def audio_ms(self, upto: int | None = None) -> float:
        size = sum(len(v) for kind, v in self.items[:upto] if kind == "audio")
        return size / 2 / RATE * 1000

    def visemes(self) -> list[tuple[int, dict[str, Any]]]:
        return [(i, v) for i, (kind, v) in enumerate(self.items) if kind == "visemes"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Bot(Protocol):
    def __call__(
        self, greeting: str, **visemes: Any
    ) -> Awaitable[tuple[PipelineWorker, Received]]: ...


@pytest.fixture(params=[0.0, 0.8], ids=["burst", "live"])
async def bot(request: pytest.FixtureRequest) -> AsyncIterator[Bot]:
    """The README's example bot (audio all at once, or live), and a raw client of it."""
    running: list[asyncio.Task[Any]] = []

    async def start(greeting: str, **visemes: Any) -> tuple[PipelineWorker, Received]:
        visemes.setdefault("deadline_ms", 10_000)
        port = free_port()
        # a deadline this machine's load cannot miss: the visemes are compared exactly
        task = example.bot(port=port, pace=request.param, greeting=greeting, **visemes)
        running.append(asyncio.create_task(example.run(task, handle_sigint=False)))
        received, connected = Received(), asyncio.Event()
        running.append(asyncio.create_task(listen(f"ws://127.0.0.1:{port}", received, connected)))
        await connected.wait()
        return task, received

    yield start
    for job in running:
        job.cancel()
    await asyncio.gather(*running, return_exceptions=True)


async def listen(url: str, received: Received, until: asyncio.Event) -> None:
    for _ in range(100):  # the server starts with the pipeline
        try:
            client = await websockets.connect(url)
            break
        except OSError:
            await asyncio.sleep(0.05)
    async with client:
        until.set()
        async for data in client:
            frame = frames_pb2.Frame.FromString(data)  # type: ignore[attr-defined]
            which = frame.WhichOneof("frame")
            if which == "audio":
                received.add("audio", frame.audio.audio)
            elif which == "interruption":
                received.add("interruption", None)
            elif which == "message":
                message = json.loads(frame.message.data)
                if message.get("type") == "server-message":
                    data_ = message["data"]
                    if data_.get("type") == VISEMES_TYPE:
                        received.add("visemes", data_)


async def wait_for(received: Received, check: Any, within: float = 20) -> None:
    async with asyncio.timeout(within):
        while not check():
            await received.changed.wait()
            received.changed.clear()


def engine_visemes(models: LoadedModels, pcm: bytes, text: str | None) -> list[tuple[int, float]]:
    """(viseme, offset ms) of an engine stream over `pcm`, given `text` before its
    audio (as the processor gives what the TTS announces: whole words, the turn's
    end left to the flush) or no text."""
    aligner = None
    if text is not None:
        aligner = TextAligner("en")
        done, times = aligner.take_timed(f"{text} ")  # as EngineStream.add_text does
        words, onsets = timed_visemes(done, times, "en")
        aligner.add_visemes(words, onsets=onsets)
    stream = VisemeStream(models.models["default"], AudioFormat("pcm_s16le", RATE), text=aligner)
    return [(e.viseme_id, e.offset_ms) for e in [*stream.feed(pcm), *stream.flush()]]


async def heard(received: Received) -> tuple[bytes, list[tuple[int, float]]]:
    """The audio the client heard, and the visemes it was sent on one timeline."""
    await wait_for(received, lambda: any(v.get("final") for _, v in received.visemes()))
    said_ms = sum(v.get("audio_duration_ms", 0) for _, v in received.visemes())
    await wait_for(received, lambda: received.audio_ms() >= said_ms - 2)  # all audio passed
    pcm = b"".join(v for kind, v in received.items if kind == "audio")[: round(said_ms) * 32]
    got = [(v["visemeId"], a["audio_offset_ms"] + v["offset"]) for _, a in received.visemes()
           for v in a["visemes"]]  # fmt: skip
    return pcm, got


def same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """The same visemes, each within a ms (the answers' offsets are rounded)."""
    return len(got) == len(want) and all(
        g[0] == w[0] and abs(g[1] - w[1]) <= 1 for g, w in zip(got, want, strict=True)
    )


async def test_the_announced_text_pins_the_visemes(bot: Bot, loaded_models: LoadedModels) -> None:
    _, received = await bot(LONG)
    pcm, got = await heard(received)
    assert same(got, engine_visemes(loaded_models, pcm, LONG))
    assert not same(got, engine_visemes(loaded_models, pcm, None))  # the words changed them


async def test_without_text_the_visemes_are_the_audios_alone(
    bot: Bot, loaded_models: LoadedModels
) -> None:
    _, received = await bot(LONG, text=False)
    pcm, got = await heard(received)
    assert same(got, engine_visemes(loaded_models, pcm, None))


async def test_audio_and_visemes_arrive_in_order_and_the_lips_close(
    bot: Bot, loaded_models: LoadedModels
) -> None:
    _, received = await bot(SENTENCE)  # said to the client as it connects
    await wait_for(received, lambda: any(v.get("final") for _, v in received.visemes()))
    said_ms = sum(v.get("audio_duration_ms", 0) for _, v in received.visemes())
    await wait_for(received, lambda: received.audio_ms() >= said_ms - 2)  # all audio passed

    answers = received.visemes()
    assert len(answers) > 10
    spoken_ms = 0.0
    for index, answer in answers:
        if answer.get("final"):
            continue
        assert abs(answer["audio_offset_ms"] - spoken_ms) <= 1  # one timeline, no gap
        spoken_ms = answer["audio_offset_ms"]
        # sent just ahead of its audio: what came before is the audio before it
        # (less what the transport holds back to fill its next 40 ms chunk)
        heard = received.audio_ms(index)
        assert answer["audio_offset_ms"] - 40 <= heard <= answer["audio_offset_ms"]
        spoken_ms += answer["audio_duration_ms"]

    # the visemes are the engine's for exactly the audio the client heard, and its words
    pcm = b"".join(v for kind, v in received.items if kind == "audio")[: round(spoken_ms) * 32]
    got = [(v["visemeId"], a["audio_offset_ms"] + v["offset"]) for _, a in answers
           for v in a["visemes"]]  # fmt: skip
    assert same(got, engine_visemes(loaded_models, pcm, SENTENCE))
    # "Bob may pay my mom": the lips close for b, m, p
    assert [v for v, _ in got].count(21) >= 5


async def test_an_interruption_clears_the_visemes_of_the_cut_speech(
    bot: Bot,
) -> None:
    task, received = await bot(LONG)
    await wait_for(received, lambda: received.audio_ms() > 600)
    await task.queue_frame(InterruptionFrame())
    await wait_for(received, lambda: ("interruption", None) in received.items)
    cut = received.items.index(("interruption", None))
    before = [a for i, a in received.visemes() if i < cut]
    await task.queue_frames([TTSSpeakFrame(SENTENCE)])
    await wait_for(received, lambda: any(v.get("final") for i, v in received.visemes() if i > cut))

    after = [a for i, a in received.visemes() if i > cut]
    # nothing computed for the cut speech arrives after the interruption: the new
    # utterance's messages start where the old one's delivered audio stopped and run on
    last = before[-1]
    assert all(v["offset"] >= 0 for v in after[0]["visemes"])  # a fresh stream: no cut audio
    assert after[0]["audio_offset_ms"] >= last["audio_offset_ms"] + last["audio_duration_ms"]
    heard_after = sum(len(v) for kind, v in received.items[cut:] if kind == "audio") / 32
    sent_after = sum(a.get("audio_duration_ms", 0) for a in after)
    assert sent_after <= heard_after + 40  # only the new sentence's audio
    assert [v["visemeId"] for a in after for v in a["visemes"]].count(21) >= 5


async def test_a_viseme_source_that_never_answers_never_holds_the_audio(bot: Bot) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the connection, never answers the upgrade

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"ws://127.0.0.1:{port}/v1/visemes/stream"
        _, received = await bot(SENTENCE, gateway_url=url, api_key="k" * 20, deadline_ms=20)
        spoken_ms = 1300  # espeak-ng's "Bob may pay my mom."
        # well within the 10 s the source would wait for its gateway on the first frame
        await wait_for(received, lambda: received.audio_ms() >= spoken_ms, within=6)
        assert received.visemes() == []  # none in time, and the audio went on
    finally:
        server.close()


async def test_a_turns_sentences_each_reach_the_engine_before_their_audio(bot: Bot) -> None:
    """An LLM turn of two sentences, one TTS context: each sentence is announced
    ahead of its audio, as whole words; the turn ends with its audio."""
    recorder = Recorder(await shared_engine())
    task, received = await bot("Hello.", source=recorder)
    await wait_for(received, lambda: any(v.get("final") for _, v in received.visemes()))
    await task.queue_frames([LLMFullResponseStartFrame(), LLMTextFrame("Bob may pay. "),
                             LLMTextFrame("My mom will sleep for a long time."),
                             LLMFullResponseEndFrame()])  # fmt: skip
    await wait_for(received, lambda: sum(bool(v.get("final")) for _, v in received.visemes()) == 2)

    kinds = [kind for kind, _ in recorder.calls]
    turn = recorder.calls[kinds.index("flush") + 1 :]
    texts = [args for kind, args in turn if kind == "text"]
    assert texts == [("Bob may pay. ", False), ("My mom will sleep for a long time. ", False)]
    order = [kind for kind, _ in turn]
    assert order[0] == "text"  # the first sentence before any of the turn's audio
    assert order[-1] == "flush"  # the turn's end is its audio's
    got = [v["visemeId"] for _, a in received.visemes() for v in a["visemes"]]
    engine = await shared_engine()
    assert got == await replay(recorder.calls, engine, text=True)
    assert got != await replay(recorder.calls, engine, text=False)
