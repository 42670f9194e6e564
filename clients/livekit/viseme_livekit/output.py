"""`VisemeAudioOutput`: an `AudioOutput` wrapper that taps an agent's voice and
publishes its visemes to the room as the audio plays.

LiveKit Agents chains audio outputs (`next_in_chain`), as its recorder and
transcript synchroniser do; this one sits above the room's audio output. Each
frame the agent speaks goes on to the next output first, untouched, then through
the viseme engine. The answers (the streaming endpoint's shape, docs/protocols.md)
wait until their audio plays: the sink's `playback_started` (and, where the sink
reports them, `playback_progressed`) say when a segment's audio reached the
listener, and each message is published when its own audio starts, as a reliable
data packet on the topic `visemes`:

    {"type": "visemes", "segment": 3, "segment_offset_ms": 1240, "audio_offset_ms": ...,
     "audio_duration_ms": 20, "visemes": [{"visemeId": 21, "offset": 4}, ...]}

The agent's own words, where `attach` finds the session's transcription output
(or `text=True` makes one), reach the engine too: `VisemeTextOutput` sits in that
chain, passes each piece on untouched, and hands it to the segment about to be
heard, so its visemes follow the transcript (text_align.py; the text comes as
the LLM writes it, ahead of its audio, which the aligner takes best).

`clear_buffer()` (an interruption) drops what has not played yet and resets the
engine stream; `flush()` (end of a segment) sends the lookahead's last visemes;
when the sink reports `playback_finished`, a `{"type": "playback_finished",
"segment": 3, "interrupted": ..., "playback_position_ms": ...}` message follows the
segment's last visemes, so an avatar can close its mouth.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice import io

from viseme_engine.audio import AudioFormat
from viseme_engine.lipsync import LipsyncConfig
from viseme_engine.live import Answer, LiveVisemes, VisemeSource, mono_s16, shared_engine
from viseme_engine.remote import RemoteVisemes

log = logging.getLogger("viseme_livekit")
TOPIC = "visemes"
LATE_S = 0.25  # a message whose audio began longer ago than this is not sent
Publish = Callable[[dict[str, Any]], Awaitable[None]]


def room_publisher(room: rtc.Room, topic: str = TOPIC) -> Publish:
    """Publish each message to everyone in `room` as a reliable data packet on `topic`."""

    async def publish(message: dict[str, Any]) -> None:
        payload = json.dumps(message, separators=(",", ":"))
        await room.local_participant.publish_data(payload, reliable=True, topic=topic)

    return publish


def attach(
    session: AgentSession[Any],
    room: rtc.Room | None = None,
    *,
    text: bool | None = None,
    **options: Any,
) -> VisemeAudioOutput:
    """Tap `session`'s audio output (call it after `session.start`): visemes published
    to `room`, or through `publish=`; `options` as `VisemeAudioOutput`'s. `text`:
    also read the agent's transcript from its transcription output (default: where
    the session has one; True adds one where it has none; False: audio alone)."""
    if session.output.audio is None:
        raise ValueError("the session has no audio output to tap (start it first)")
    output = VisemeAudioOutput(next_in_chain=session.output.audio, room=room, **options)
    session.output.audio = output
    if text or (text is None and session.output.transcription is not None):
        session.output.transcription = VisemeTextOutput(
            output, next_in_chain=session.output.transcription
        )
    return output


class VisemeTextOutput(io.TextOutput):
    """The agent's transcript, passed on untouched and given to `visemes`'s engine
    stream for the segment being heard or about to be."""

    def __init__(self, visemes: VisemeAudioOutput, *, next_in_chain: io.TextOutput | None) -> None:
        super().__init__(label="VisemesText", next_in_chain=next_in_chain)
        self._visemes = visemes
        self._captured = False  # text since the last flush

    async def capture_text(self, text: str) -> None:
        self._visemes.add_text(text)  # only queued: the transcript is not held up
        self._captured = True
        if self.next_in_chain is not None:
            await self.next_in_chain.capture_text(text)

    def flush(self) -> None:
        if self.next_in_chain is not None:
            self.next_in_chain.flush()
        if self._captured:  # the end of text there was
            self._visemes.add_text("", final=True)
        self._captured = False


class VisemeAudioOutput(io.AudioOutput):
    def __init__(
        self,
        *,
        next_in_chain: io.AudioOutput,
        publish: Publish | None = None,
        room: rtc.Room | None = None,
        model: str = "default",
        lipsync: LipsyncConfig | None = None,
        gateway_url: str | None = None,
        api_key: str | None = None,
        source: VisemeSource | None = None,
    ) -> None:
        """Publish to `room` (or through any `publish`); the visemes come from this
        process's engine, or with `gateway_url` (`ws[s]://host/v1/visemes/stream`)
        and `api_key` from a gateway, or from any `source`."""
        super().__init__(
            label="Visemes",
            next_in_chain=next_in_chain,
            capabilities=io.AudioOutputCapabilities(pause=True),
        )
        if publish is None:
            if room is None:
                raise ValueError("give the room to publish to, or a publish callable")
            publish = room_publisher(room)
        if source is None and gateway_url is not None:
            source = RemoteVisemes(gateway_url, api_key, model=model, lipsync=lipsync)
        self._publish = publish
        self._source = source
        self._model, self._lipsync = model, lipsync
        self._segment = 0  # the segment being captured (0: none yet)
        self._capturing = False
        # Whether text now belongs to speech still to be heard: not between a
        # segment's last frame and the end of its playback (LiveKit starts the next
        # speech only then: later pieces of that text would open the next
        # utterance), nor while the session's audio is off.
        self._text_open = True
        self._detached = False
        self._position_ms = 0.0  # where the next captured frame starts in its segment
        self._last_ms = 0.0  # where the last one started
        self._generation = 0  # bumped by each interruption: older work is dropped
        self._open: deque[int] = deque()  # segments captured and not finished, in order
        self._anchors: dict[int, float] = {}  # segment -> wall time of its position 0
        self._paused_at: float | None = None
        self._due: list[tuple[int, float, int, dict[str, Any]]] = []  # (segment, ms, n, msg)
        self._sequence = 0
        self._wake = asyncio.Event()
        # The source's work, in capture order, off the audio's path: (kind, generation,
        # segment, position ms, a frame, a piece of text, or None).
        self._work: asyncio.Queue[tuple[str, int, int, float, rtc.AudioFrame | str | None]] = (
            asyncio.Queue()
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def sample_rate(self) -> int | None:
        return self.next_in_chain.sample_rate if self.next_in_chain else None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        assert self.next_in_chain is not None
        if not self._capturing:  # a new segment, open before its playback can start
            self._capturing = True
            self._segment += 1
            self._position_ms = 0.0
            self._open.append(self._segment)
        at_ms = self._last_ms = self._position_ms
        self._position_ms += frame.duration * 1000
        await self.next_in_chain.capture_frame(frame)  # the audio first, never held up
        await super().capture_frame(frame)
        self._submit("feed", at_ms, frame)

    def flush(self) -> None:
        super().flush()
        assert self.next_in_chain is not None
        self.next_in_chain.flush()
        if self._capturing:
            self._capturing = False
            self._text_open = False
            # its answer's offsets count from the last frame's start, as the source's do
            self._submit("flush", self._last_ms, None)

    def clear_buffer(self) -> None:
        assert self.next_in_chain is not None
        self._capturing = False
        self._text_open = True  # the reset below forgets the cut speech's text
        self._generation += 1  # what is queued or being computed now belongs to nothing
        self._due.clear()  # an interruption: what has not played never will
        self._submit("reset", 0.0, None)
        self.next_in_chain.clear_buffer()  # its playback_finished may come at once

    def add_text(self, text: str, final: bool = False) -> None:
        """A piece of the agent's transcript for the segment being captured, or the
        next one (`final`: its last piece); `VisemeTextOutput` calls it. Ignored
        after the segment's audio ended (until it has played) and while the
        session's audio is off."""
        if self._text_open and not self._detached:
            self._submit("final" if final else "text", self._position_ms, text)

    def on_attached(self) -> None:
        super().on_attached()
        self._detached = False

    def on_detached(self) -> None:
        super().on_detached()
        self._detached = True

    def pause(self) -> None:
        super().pause()
        if self._paused_at is None:
            self._paused_at = time.time()

    def resume(self) -> None:
        super().resume()
        if self._paused_at is not None:  # what plays resumes later by the pause
            paused = time.time() - self._paused_at
            self._paused_at = None
            self._anchors = {segment: at + paused for segment, at in self._anchors.items()}
            self._wake.set()

    def on_playback_started(self, *, created_at: float) -> None:
        super().on_playback_started(created_at=created_at)
        waiting = [segment for segment in self._open if segment not in self._anchors]
        if waiting:  # segments play in the order they were captured
            self._anchors[waiting[0]] = created_at
            self._wake.set()

    def on_playback_progressed(self, *, started_at: float, offset: float, duration: float) -> None:
        super().on_playback_progressed(started_at=started_at, offset=offset, duration=duration)
        if self._open and self._open[0] in self._anchors:  # re-anchor on what was played
            self._anchors[self._open[0]] = started_at - offset
            self._wake.set()

    def on_playback_finished(
        self,
        *,
        playback_position: float,
        interrupted: bool,
        synchronized_transcript: str | None = None,
    ) -> None:
        super().on_playback_finished(
            playback_position=playback_position,
            interrupted=interrupted,
            synchronized_transcript=synchronized_transcript,
        )
        self._text_open = True  # the next speech's text may come now
        if not self._open:
            return
        segment = self._open.popleft()  # the oldest segment is the one that finished
        self._anchors.setdefault(segment, time.time() - playback_position)
        end = {
            "type": "playback_finished",
            "segment": segment,
            "interrupted": interrupted,
            "playback_position_ms": round(playback_position * 1000),
        }
        if interrupted:
            self._due = [item for item in self._due if item[0] != segment]
        self._schedule(segment, -1e9 if interrupted else playback_position * 1000, end)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._source is not None:
            await self._source.aclose()

    def _submit(self, kind: str, at_ms: float, item: rtc.AudioFrame | str | None) -> None:
        self._work.put_nowait((kind, self._generation, self._segment, at_ms, item))
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._compute(), name="visemes-compute"),
                asyncio.create_task(self._publish_when_due(), name="visemes-publish"),
            ]

    async def _compute(self) -> None:
        """The source's calls, one at a time in capture order; a failure costs visemes."""
        while True:
            kind, generation, segment, at_ms, item = await self._work.get()
            if generation != self._generation and kind != "reset":
                continue  # interrupted since: nothing of it goes out
            answer = await self._call(kind, item)
            if answer is not None and generation == self._generation:
                message = {**answer, "segment": segment, "segment_offset_ms": round(at_ms)}
                self._schedule(segment, at_ms, message)

    async def _call(self, kind: str, item: rtc.AudioFrame | str | None) -> Answer | None:
        if self._source is None and kind in ("flush", "reset"):
            return None
        try:
            if self._source is None:
                self._source = LiveVisemes(await shared_engine(), self._model, self._lipsync)
            if isinstance(item, rtc.AudioFrame):
                pcm = mono_s16(bytes(item.data), item.num_channels)
                return await self._source.feed(pcm, AudioFormat("pcm_s16le", item.sample_rate))
            if isinstance(item, str):
                await self._source.add_text(item, final=kind == "final")
            elif kind == "flush":
                return await self._source.flush()
            else:
                await self._source.reset()
        except Exception:
            log.exception("visemes: %s failed; the audio goes on without them", kind)
        return None

    def _schedule(self, segment: int, at_ms: float, message: dict[str, Any]) -> None:
        """In playback order: by segment, then position (a segment's end after its visemes)."""
        self._sequence += 1
        bisect.insort(self._due, (segment, at_ms, self._sequence, message), key=lambda i: i[:3])
        self._wake.set()

    async def _publish_when_due(self) -> None:
        """Each message when its audio plays; one far later than that (its answer came
        late) is dropped, since a mouth shape after its sound misleads."""
        while True:
            self._wake.clear()
            if self._due and self._paused_at is None:
                segment, at_ms, _, message = self._due[0]
                anchor = self._anchors.get(segment)
                if anchor is not None:
                    wait = anchor + at_ms / 1000 - time.time()
                    if wait <= 0:
                        self._due.pop(0)
                        if message["type"] == "playback_finished":
                            self._anchors.pop(segment, None)
                            await self._send(message)
                        elif wait > -LATE_S:
                            await self._send(message)
                        continue
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                    continue
            await self._wake.wait()

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._publish(message)
        except Exception:
            log.exception("visemes: publishing failed; the audio goes on without them")
