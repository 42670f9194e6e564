"""viseme_engine.live and viseme_engine.remote: the plugins' two sources of visemes give
the same answers, frame by frame: in this process, and through the real gateway's
streaming endpoint."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import pytest

from gateway.sessions import SESSIONS
from gateway.settings import Settings
from tests.conftest import API_KEY
from tests.fakes.gateway import Gateway, running_gateway
from tests.speech import espeak_chunks
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import LoadedModels, VisemeEngine
from viseme_engine.lipsync import LipsyncConfig
from viseme_engine.live import Answer, LiveVisemes, VisemeSource, shared_engine
from viseme_engine.remote import RemoteError, RemoteVisemes
from viseme_engine.stream import VisemeStream

SENTENCE = "Bob may pay my mom."


@pytest.fixture
async def gw(settings: Settings, loaded_models: LoadedModels) -> Any:
    async with running_gateway(settings, loaded_models) as gateway:
        yield gateway


def frames(ms: int = 40) -> tuple[list[bytes], AudioFormat]:
    chunks, rate = espeak_chunks(SENTENCE, ms)
    return chunks, AudioFormat("pcm_s16le", rate)


async def utterance(source: VisemeSource, chunks: list[bytes], fmt: AudioFormat) -> list[Answer]:
    answers = [await source.feed(chunk, fmt) for chunk in chunks]
    return [*answers, await source.flush()]


def timeline(answers: list[Answer]) -> list[tuple[int, int]]:
    return [
        (v["visemeId"], a["audio_offset_ms"] + v["offset"]) for a in answers for v in a["visemes"]
    ]


async def test_in_process_and_through_the_gateway_answer_alike(
    engine: VisemeEngine, gw: Gateway, loaded_models: LoadedModels
) -> None:
    chunks, fmt = frames()
    local = await utterance(LiveVisemes(engine), chunks, fmt)
    remote_source = RemoteVisemes(f"{gw.ws_base}/v1/visemes/stream", API_KEY)
    try:
        remote = await utterance(remote_source, chunks, fmt)
    finally:
        await remote_source.aclose()
    assert remote == local
    assert [a["audio_offset_ms"] for a in local[:3]] == [0, 40, 80]
    assert local[-1]["final"] is True
    # exactly the visemes of the whole audio at their true times, as one stream gives them
    core = VisemeStream(loaded_models.models["default"], fmt)
    want = [(e.viseme_id, e.offset_ms) for c in chunks for e in core.feed(c)]
    want += [(e.viseme_id, e.offset_ms) for e in core.flush()]
    assert timeline(local) == want
    assert [v for v, _ in want].count(21) >= 4  # the lips close on b, m, p


async def test_the_timeline_goes_on_over_resets_and_format_changes(
    engine: VisemeEngine, gw: Gateway
) -> None:
    chunks, fmt = frames()
    other = AudioFormat("pcm_s16le", 8000)
    remote = RemoteVisemes(f"{gw.ws_base}/v1/visemes/stream", API_KEY)
    try:
        for source in (LiveVisemes(engine), remote):
            first = await source.feed(chunks[0], fmt)
            await source.reset()  # an interruption: the next audio starts a fresh stream
            second = await source.feed(chunks[1], fmt)
            third = await source.feed(b"\0\0" * 320, other)  # 40 ms at another rate
            assert [first["audio_offset_ms"], second["audio_offset_ms"]] == [0, 40]
            assert third["audio_offset_ms"] == 80
            assert (await source.flush())["audio_offset_ms"] == 80
    finally:
        await remote.aclose()


async def test_the_gateway_refusing_a_stream_is_an_error_that_names_it(gw: Gateway) -> None:
    chunks, fmt = frames()
    bad = RemoteVisemes(f"{gw.ws_base}/v1/visemes/stream", API_KEY, model="klingon")
    try:
        with pytest.raises(RemoteError) as refused:
            await bad.feed(chunks[0], fmt)
        assert refused.value.code == "BAD_REQUEST"
    finally:
        await bad.aclose()
    keyless = RemoteVisemes(f"{gw.ws_base}/v1/visemes/stream", "not-a-key-of-this-gateway")
    try:
        with pytest.raises(Exception, match="401"):
            await keyless.feed(chunks[0], fmt)
    finally:
        await keyless.aclose()


async def test_arkit_answers_carry_blendshape_frames(engine: VisemeEngine) -> None:
    chunks, fmt = frames(100)
    arkit = LiveVisemes(engine, lipsync=LipsyncConfig(format="arkit"))
    answers = await utterance(arkit, chunks, fmt)
    shapes = [a["blendshapes"] for a in answers]
    assert all(len(frame) == 52 for s in shapes for frame in s["frames"])
    total = sum(len(s["frames"]) for s in shapes)
    assert abs(total - len(chunks) * 6) <= 6  # 60 fps over the utterance's audio


async def test_the_shared_engine_loads_once_per_loop() -> None:
    first, second = await shared_engine(), await shared_engine()
    assert first is second
    assert set(first.model_names) == {"default", "indonesian"}
    await first.stop()


async def test_a_dropped_connection_costs_a_frame_and_the_timeline_goes_on(gw: Gateway) -> None:
    chunks, fmt = frames()
    remote = RemoteVisemes(f"{gw.ws_base}/v1/visemes/stream", API_KEY, timeout_s=2)
    try:
        assert (await remote.feed(chunks[0], fmt))["audio_offset_ms"] == 0
        await gw.server.app[SESSIONS].close_all()  # the gateway drops every stream
        with contextlib.suppress(RemoteError, aiohttp.ClientError):
            await remote.feed(chunks[1], fmt)  # lost with the connection (or answered)
        third = await remote.feed(chunks[2], fmt)  # on a new connection
        assert third["audio_offset_ms"] == 80  # counted from the frames given, answered or not
        assert third["type"] == "visemes"
    finally:
        await remote.aclose()


async def test_transcripts_and_their_times_reach_both_sources_alike(
    engine: VisemeEngine, gw: Gateway
) -> None:
    chunks, fmt = frames()

    async def spoken(source: VisemeSource) -> list[Answer]:
        await source.add_text("Bob ")  # before any audio (the remote one: any connection)
        first = [await source.feed(chunks[0], fmt), await source.flush()]
        # the next utterance's words, timed on the timeline: it starts at 40 ms
        await source.add_text("Bob may ", char_ms=[40.0 + 10 * i for i in range(8)])
        answers = [await source.feed(chunk, fmt) for chunk in chunks[:10]]
        await source.add_text("pay my mom.", final=True)
        return first + answers + await utterance(source, chunks[10:], fmt)

    local = await spoken(LiveVisemes(engine))
    remote_source = RemoteVisemes(f"{gw.ws_base}/v1/visemes/stream", API_KEY)
    try:
        remote = await spoken(remote_source)
    finally:
        await remote_source.aclose()
    assert remote == local
    assert timeline(local) != timeline(await spoken(LiveVisemes(engine, use_text=False)))


async def test_a_frame_cut_short_while_its_text_is_given_still_takes_its_time(
    engine: VisemeEngine,
) -> None:
    chunks, fmt = frames()
    source = LiveVisemes(engine)
    # a word no other test has phonemized: espeak-ng runs (a wait) before the audio
    await source.add_text("Bob may pay Mom Quaxlebrund.", final=True)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):  # a plugin's deadline, past at the first wait
            await source.feed(chunks[0], fmt)
    answer = await source.feed(chunks[1], fmt)
    assert answer["audio_offset_ms"] == 40  # the cut frame's 40 ms passed all the same


async def test_text_for_a_stream_already_open_reaches_it_with_the_next_frame(
    engine: VisemeEngine,
) -> None:
    chunks, fmt = frames()

    async def spoken(text: bool) -> list[Answer]:
        source = LiveVisemes(engine)
        answers = [await source.feed(chunks[0], fmt)]  # the stream is open
        if text:
            await source.add_text(SENTENCE, final=True)
        answers += [await source.feed(chunk, fmt) for chunk in chunks[1:]]
        return [*answers, await source.flush()]

    assert timeline(await spoken(True)) != timeline(await spoken(False))
