"""clients/livekit: a real LiveKit Agents `AgentSession` speaking through our TTS (espeak-ng)
into `VisemeAudioOutput`, above a sink that plays on the wall clock.

No LiveKit server runs here, so the room's own audio output cannot: `Speaker` stands
in for it at the framework's audio-output boundary (an `io.AudioOutput` leaf that
reports `playback_started` and `playback_finished` as a room output does), and the
room's data channel is the `publish` callable. Everything above the sink (the
session, the speech handle, the TTS pipeline, interruption) is the framework's own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.voice import io
from viseme_livekit import VisemeAudioOutput, VisemeTextOutput, attach
from viseme_livekit.example import ESPEAK_RATE as RATE
from viseme_livekit.example import EspeakTTS

from tests.sources import Recorder, replay
from tests.speech import espeak_pcm
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import LoadedModels
from viseme_engine.live import shared_engine
from viseme_engine.stream import VisemeStream

SENTENCE = "Bob may pay my mom."
LONG = "Bob may pay my mom, and then we will all go home and sleep for a very long time."


class Speaker(io.AudioOutput):
    """Plays what it is given on the wall clock, as a room's audio output would."""

    def __init__(self) -> None:
        super().__init__(label="Speaker", capabilities=io.AudioOutputCapabilities(pause=False))
        self.audio = bytearray()
        self.started_at: list[float] = []
        self._queued_s = 0.0
        self._done: asyncio.Task[None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._queued_s:
            self.started_at.append(time.time())
            self.on_playback_started(created_at=self.started_at[-1])
        self.audio += bytes(frame.data)
        self._queued_s += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._queued_s:
            self._done = asyncio.create_task(self._play_out(self.started_at[-1], self._queued_s))

    def clear_buffer(self) -> None:
        if self._done is not None:
            self._done.cancel()
        if self._queued_s:
            played = min(time.time() - self.started_at[-1], self._queued_s)
            self._queued_s = 0.0
            self.on_playback_finished(playback_position=played, interrupted=True)

    async def _play_out(self, started: float, length: float) -> None:
        await asyncio.sleep(started + length - time.time())
        self._queued_s = 0.0
        self.on_playback_finished(playback_position=length, interrupted=False)


class Room:
    """The messages the room would carry, with the time each was published."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, dict[str, Any]]] = []

    async def publish(self, message: dict[str, Any]) -> None:
        self.messages.append((time.time(), message))

    def of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, m) for at, m in self.messages if m["type"] == kind]


@pytest.fixture
async def agent() -> AsyncIterator[tuple[AgentSession[Any], Speaker, Room, VisemeAudioOutput]]:
    await shared_engine()  # loaded before the call, as an agent's prewarm would
    speaker, room = Speaker(), Room()
    session: AgentSession[Any] = AgentSession(tts=EspeakTTS())
    session.output.audio = speaker  # where a room's audio output would be
    await session.start(agent=Agent(instructions="Speak."))
    output = attach(session, publish=room.publish)  # as the example does, with its room
    yield session, speaker, room, output
    await session.aclose()
    await output.aclose()


async def test_visemes_are_published_as_their_audio_plays(
    agent: tuple[AgentSession[Any], Speaker, Room, VisemeAudioOutput], loaded_models: LoadedModels
) -> None:
    session, speaker, room, _ = agent
    await session.say(SENTENCE)
    await asyncio.sleep(0.1)  # the last message goes out with playback's end

    visemes = room.of("visemes")
    assert len(visemes) > 10
    assert visemes[-1][1]["final"] is True
    started = speaker.started_at[0]
    for published, message in visemes:
        due = started + message["segment_offset_ms"] / 1000
        assert due - 0.005 <= published <= due + 0.15  # as its audio starts to play
    finished = room.of("playback_finished")
    assert [m["interrupted"] for _, m in finished] == [False]
    assert room.messages[-1][1]["type"] == "playback_finished"  # after the last visemes

    # the engine's visemes for exactly the audio that played
    stream = VisemeStream(loaded_models.models["default"], AudioFormat("pcm_s16le", RATE))
    want = [e.viseme_id for e in [*stream.feed(bytes(speaker.audio)), *stream.flush()]]
    got = [v["visemeId"] for _, m in visemes for v in m["visemes"]]
    assert got == want
    assert got.count(21) >= 5  # "Bob may pay my mom": the lips close


async def test_an_interruption_drops_what_has_not_played(
    agent: tuple[AgentSession[Any], Speaker, Room, VisemeAudioOutput],
) -> None:
    session, _, room, _ = agent
    handle = session.say(LONG)
    await asyncio.sleep(1.0)
    await session.interrupt()
    await handle
    await asyncio.sleep(0.1)
    cut = room.of("playback_finished")
    assert [m["interrupted"] for _, m in cut] == [True]
    cut_at, end = cut[0]
    played_ms = end["playback_position_ms"]
    assert 700 < played_ms < 1500
    first = [m for at, m in room.of("visemes") if m["segment"] == end["segment"]]
    assert first
    assert all(m["segment_offset_ms"] <= played_ms + 20 for m in first)
    assert all(at <= cut_at for at, m in room.of("visemes") if m["segment"] == end["segment"])

    await session.say(SENTENCE)  # the next speech starts a fresh stream and segment
    await asyncio.sleep(0.1)
    after = [m for _, m in room.of("visemes") if m["segment"] > end["segment"]]
    assert after[0]["segment_offset_ms"] == 0
    assert all(v["offset"] >= 0 for v in after[0]["visemes"])  # nothing of the cut speech
    assert [v["visemeId"] for m in after for v in m["visemes"]].count(21) >= 5
    assert [m["interrupted"] for _, m in room.of("playback_finished")] == [True, False]


async def test_a_paused_speech_holds_its_visemes_and_resumes_them_later() -> None:
    """At the audio-output boundary: LiveKit pauses speech on a possible false
    interruption (the room output says nothing then); the visemes must wait too."""
    await shared_engine()
    speaker, room = Speaker(), Room()
    output = VisemeAudioOutput(next_in_chain=speaker, publish=room.publish)
    pcm = espeak_pcm(SENTENCE)[0]
    step = RATE // 50 * 2  # 20 ms frames, as the room output takes them
    try:
        for at in range(0, len(pcm) - step, step):
            data = pcm[at : at + step]
            await output.capture_frame(rtc.AudioFrame(data, RATE, 1, len(data) // 2))
        output.flush()
        await asyncio.sleep(0.5)
        output.pause()
        paused_at, count = time.time(), len(room.of("visemes"))
        await asyncio.sleep(0.6)
        assert len(room.of("visemes")) == count  # nothing while the audio is paused
        output.resume()
        await asyncio.sleep(0.3)
        after = [(at, m) for at, m in room.of("visemes") if at > paused_at]
        assert after  # it goes on, 0.6 s later than it would have
        started = speaker.started_at[0]
        for published, message in after:
            due = started + 0.6 + message["segment_offset_ms"] / 1000
            assert due - 0.005 <= published <= due + 0.15
    finally:
        await output.aclose()


async def test_the_agents_transcript_pins_its_visemes() -> None:
    engine = await shared_engine()
    speaker, room, recorder = Speaker(), Room(), Recorder(engine)
    session: AgentSession[Any] = AgentSession(tts=EspeakTTS())
    session.output.audio = speaker
    await session.start(agent=Agent(instructions="Speak."))
    attach(session, publish=room.publish, source=recorder, text=True)
    try:
        await session.say(LONG)
        await asyncio.sleep(0.1)
    finally:
        await session.aclose()
    said = "".join(args[0] for kind, args in recorder.calls if kind == "text")
    assert said.split() == LONG.split()  # the transcript, whole, once
    assert ("text", ("", True)) in recorder.calls  # its end
    kinds = [kind for kind, _ in recorder.calls]
    assert kinds.index("text") < kinds.index("feed")  # before its audio
    got = [v["visemeId"] for _, m in room.of("visemes") for v in m["visemes"]]
    assert got == await replay(recorder.calls, engine, text=True)
    assert got != await replay(recorder.calls, engine, text=False)  # the words changed them


async def test_a_session_without_a_transcription_output_keeps_none() -> None:
    session: AgentSession[Any] = AgentSession(tts=EspeakTTS())
    session.output.audio = Speaker()
    await session.start(agent=Agent(instructions="Speak."))
    try:
        output = attach(session, publish=Room().publish)
        assert session.output.transcription is None  # nothing added unasked
        transcript = session.output.transcription = Transcript()
        second = attach(session, publish=Room().publish)
        assert isinstance(session.output.transcription, VisemeTextOutput)
        assert session.output.transcription.next_in_chain is transcript
        await session.output.transcription.capture_text("Bob")
        session.output.transcription.flush()
        assert transcript.pieces == ["Bob", "<flush>"]  # passed on untouched
        await output.aclose()
        await second.aclose()
    finally:
        await session.aclose()


class Transcript(io.TextOutput):
    """A room's transcription output, as far as the chain above it can tell."""

    def __init__(self) -> None:
        super().__init__(label="Transcript", next_in_chain=None)
        self.pieces: list[str] = []

    async def capture_text(self, text: str) -> None:
        self.pieces.append(text)

    def flush(self) -> None:
        self.pieces.append("<flush>")


async def test_text_after_a_speechs_audio_waits_for_its_playback_to_end() -> None:
    """A transcript's last pieces may come after its audio (separate tasks forward
    them): until that speech has played they are its own, not the next one's."""
    engine = await shared_engine()
    speaker, room, recorder = Speaker(), Room(), Recorder(engine)
    output = VisemeAudioOutput(next_in_chain=speaker, publish=room.publish, source=recorder)
    pcm = espeak_pcm(SENTENCE)[0]
    step = RATE // 50 * 2
    try:
        for at in range(0, len(pcm) - step, step):
            data = pcm[at : at + step]
            await output.capture_frame(rtc.AudioFrame(data, RATE, 1, len(data) // 2))
        output.flush()
        output.add_text("mom.", final=True)  # the speech's own, after its audio: dropped
        await asyncio.sleep(len(pcm) / 2 / RATE + 0.2)  # it plays out
        assert room.of("playback_finished")
        output.add_text("Next ")  # the next speech's
        output.on_detached()  # the session's audio off: nothing is taken
        output.add_text("unheard ")
        output.on_attached()
        await asyncio.sleep(0.1)
        assert [args for kind, args in recorder.calls if kind == "text"] == [("Next ", False)]
    finally:
        await output.aclose()
