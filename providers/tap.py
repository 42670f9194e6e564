"""One relay session's rules, Sans-I/O: frames in, frames out, audio to analyse.

No sockets, no asyncio (as python-websockets' `Protocol` is to its connection):
the relay (gateway/relay.py) is a thin I/O loop that hands each frame to the
tap, runs the engine work the tap asks for, and sends what the tap returns.

- Client frame -> the frame to send upstream (`from_client`).
- Upstream frame -> a `Step`: frames to forward at once, or audio to analyse
  (`Feed`) or a stream to drain (`Flush`), whose frames come from `analysed`
  once the engine has answered (or failed: the audio then goes without visemes).

The rules live here once for every provider: the gate (no visemes before the
handshake an SDK must see first), resets on turn ends and interruptions, a new
engine stream on a format change, offsets, the transcript of the turn, the
final flush. docs/architecture.md, "One provider audio message", walks a frame
through them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from viseme_engine.audio import AudioFormat
from viseme_engine.lipsync import LipsyncConfig
from viseme_engine.output import LipsyncOutput
from viseme_engine.smoothing import VisemeEvent

from .base import Audio, Message, Provider, Transcript

Frame = str | bytes
# What an adapter raises on a known event with fields of the wrong shape
# ("rate": "abc", a string where an object belongs); pydantic's ValidationError
# is a ValueError. The event is relayed as it came.
MALFORMED = (TypeError, ValueError, KeyError, AttributeError, IndexError)


class FrameTooDeep(ValueError):
    """A JSON frame nested deeper than the parser goes (a JSON bomb)."""


def parse(frame: Frame) -> Message | None:
    """The frame as a JSON object; None for anything else (relayed untouched)."""
    try:
        value = json.loads(frame)
    except RecursionError:
        raise FrameTooDeep("JSON message nested too deeply") from None
    except ValueError:  # not JSON, not UTF-8, or an integer of over 4,300 digits
        return None
    return value if isinstance(value, dict) else None


def encode(message: Message, like: Frame) -> Frame:
    """Serialise as the original frame came: text stays text, binary stays binary."""
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    return text.encode() if isinstance(like, bytes) else text


def splice(frame: Frame, message: Message, field: str, value: Message) -> Frame:
    """`frame` (the JSON text of `message`) with one more top-level field.

    The field goes in before the closing brace: an audio message is mostly its
    base64, and serialising it again cost more than the visemes themselves.
    Re-encoded instead where splicing could be wrong: an empty object, a field
    already there (it must be replaced, not repeated), bytes not in UTF-8."""
    addition = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    tail = f',"{field}":{addition}}}'
    if not message or field in message or not _plain_field(field):
        return encode({**message, field: value}, frame)
    if isinstance(frame, bytes):
        if json.detect_encoding(frame) != "utf-8":  # UTF-16 or -32, which json.loads reads too
            return encode({**message, field: value}, frame)
        return frame.rstrip()[:-1] + tail.encode()
    return frame.rstrip()[:-1] + tail


def _plain_field(name: str) -> bool:
    return json.dumps(name) == f'"{name}"'  # nothing to escape


@dataclass(frozen=True)
class Feed:
    """One audio message to run through the session's engine stream."""

    pcm: bytes
    format: AudioFormat
    restart: bool  # open a new engine stream first (first audio, new format, after a reset)
    texts: tuple[Transcript, ...]  # the turn's text so far, for a new stream
    chunk_id: int
    start_ms: float  # where this audio starts in the stream
    message: Message
    frame: Frame

    @property
    def duration_ms(self) -> float:
        return self.format.duration_ms(len(self.pcm))


@dataclass(frozen=True)
class Flush:
    """The end of a response's audio: drain the stream (the model's lookahead)."""

    chunk_id: int  # the last audio message, whose time the offsets count from
    start_ms: float
    message: Message
    frame: Frame


Work = Feed | Flush


@dataclass(frozen=True)
class Analysis:
    """What the engine made of a Feed or Flush: its events and their probabilities."""

    events: list[VisemeEvent]
    probs: npt.NDArray[np.float32]


@dataclass(frozen=True)
class Step:
    """What to do with one upstream frame, in this order."""

    reset: bool = False  # drop the engine stream
    text: Transcript | None = None  # give it to the live engine stream
    frames: tuple[Frame, ...] = ()  # send these (when there is no work)
    work: Work | None = None  # run it, then send `Tap.analysed(work, ...)`
    skipped: str | None = None  # a reason the message went without visemes
    error: str | None = None  # what the adapter found malformed, for the log


class Tap:
    def __init__(
        self,
        provider: Provider[Any],
        inject: bool = True,
        use_text: bool = False,
        lipsync: LipsyncConfig | None = None,
    ):
        self.provider = provider
        self.lipsync = lipsync or LipsyncConfig()  # the shape of the visemes sent
        self._output = LipsyncOutput(self.lipsync)  # one per engine stream
        self._inject = inject  # off: a plain relay (same parsing, no audio decoding)
        self.use_text = use_text and inject  # the transcript pins the visemes
        self._gate_open = not provider.gated
        self._live = False  # the engine stream is open and aligned with `_stream_ms`
        self._format: AudioFormat | None = None
        self._stream_ms = 0.0  # audio fed to the current stream
        self._last: tuple[int, float] | None = None  # its last audio: chunk id, start ms
        self._text: list[Transcript] = []  # the turn's transcript before its first audio
        # Some audio of this turn reached a stream: a stream opened again mid-turn
        # (after a shed or a format change) gets no replay of text already spoken,
        # which would pin visemes to words long past; later pieces still come.
        self._turn_fed = False

    def opening(self) -> list[str]:
        """Frames to send upstream right after connecting."""
        return [json.dumps(m) for m in self.provider.opening_messages()]

    def from_client(self, frame: Frame) -> Frame:
        """The frame to send upstream. Raises FrameTooDeep for a JSON bomb."""
        message = parse(frame)
        if message is None:
            return frame
        rewritten = self.provider.rewrite_client(message)
        return frame if rewritten is None else encode(rewritten, frame)

    def from_upstream(self, frame: Frame) -> Step:
        try:
            message = parse(frame)
        except FrameTooDeep:
            message = None  # the provider's own business: relayed as it came
        if message is None:
            return Step(frames=(frame,))
        try:
            return self._read(message, frame)
        except MALFORMED as exc:
            # Raised before any state of this message changed hands: relay it as it came.
            return Step(frames=(frame,), skipped="adapter_error", error=repr(exc))

    def _read(self, message: Message, frame: Frame) -> Step:
        reading = self.provider.read(message)
        reset = reading.resets
        if reset:
            self._live, self._text, self._turn_fed = False, [], False
        text = None
        if self.use_text and reading.transcript is not None:
            transcript = self._anchored(reading.transcript, reading.audio)
            if not self._turn_fed:
                self._text.append(transcript)
            text = transcript if self._live else None
        gate_was_open = self._gate_open
        self._gate_open = self._gate_open or reading.opens_gate
        if reading.hidden:
            return Step(reset=reset, text=text)
        if reading.shown is not None:
            message, frame = reading.shown, encode(reading.shown, frame)
        work: Work | None = None
        if reading.audio is not None and gate_was_open and self._inject:
            audio = reading.audio
            try:
                pcm = base64.b64decode(audio.b64, validate=True)
            except (binascii.Error, ValueError):
                return Step(reset=reset, text=text, frames=(frame,), skipped="bad_audio")
            restart = self._restarts(audio)
            if restart:
                self._format, self._stream_ms, self._live = audio.format, 0.0, True
                self._output = LipsyncOutput(self.lipsync)
            texts = tuple(self._text) if restart else ()  # empty once the turn was fed
            work = Feed(pcm, audio.format, restart, texts, audio.chunk_id, self._stream_ms,
                        message, frame)  # fmt: skip
        elif reading.completes and self._inject and self._live and self._last is not None:
            work = Flush(*self._last, message, frame)
            self._live = False  # a flushed stream takes no more audio
        if work is None:
            return Step(reset=reset, text=text, frames=(frame,))
        return Step(reset=reset, text=text, work=work)

    def _anchored(self, transcript: Transcript, audio: Audio | None) -> Transcript:
        """Character times from the start of the message's audio onto the clock of
        the stream that audio goes to (none for a message without audio)."""
        if transcript.char_ms is None:
            return transcript
        if audio is None or not self._inject:
            return replace(transcript, char_ms=None)
        start = 0.0 if self._restarts(audio) else self._stream_ms  # a restart opens with it
        return replace(transcript, char_ms=tuple(start + t for t in transcript.char_ms))

    def _restarts(self, audio: Audio) -> bool:
        """Whether this audio opens a new engine stream (none live, or a new format)."""
        return not self._live or self._format != audio.format

    def analysed(self, work: Work, result: Analysis | None) -> list[Frame]:
        """Frames for a message once its engine work ended; None: it failed (skipped)."""
        if result is None:
            self._live = False  # the stream is out of step: the next audio restarts it
            return [work.frame]
        # An event can date from an earlier chunk (model lookahead, anti-flicker
        # minimum): its offset is then negative, its true time before this one's
        # start (docs/protocols.md, "The viseme object").
        final = isinstance(work, Flush)
        shape = self._output.push(result.events, result.probs, work.start_ms, final=final)
        if isinstance(work, Feed):
            self._turn_fed, self._text = True, []
            self._stream_ms += work.duration_ms
            self._last = (work.chunk_id, work.start_ms)
            visemes: Message = {
                **shape,
                "audio_event_id": work.chunk_id,
                "subchunk_id": 1,
                "total_chunks": 1,
                "audio_duration": round(work.duration_ms),
            }
        else:
            visemes = {
                **shape,
                "audio_event_id": work.chunk_id,
                "final": True,  # offsets are into that audio message, already sent
            }
        injection = self.provider.inject(work.message, visemes)
        frame = work.frame
        if injection.field is not None:
            frame = splice(frame, work.message, injection.field, visemes)
        frames = [frame]
        if injection.extra is not None:
            frames.append(json.dumps(injection.extra, separators=(",", ":")))
        return frames
