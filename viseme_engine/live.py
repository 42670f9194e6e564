"""Visemes for live audio: one answer per audio frame, on one timeline.

What the streaming endpoint keeps for a connection (gateway/routes_stream.py) and
what the pipecat and LiveKit plugins keep for an agent's voice (clients/pipecat,
clients/livekit): frames of audio go in as they are heard, each gets its answer as
soon as its compute ends, never waiting for later audio. The answer's shape is the
streaming endpoint's server message (docs/protocols.md, "The streaming endpoint"):

    {"type": "visemes", "audio_offset_ms": 1200, "audio_duration_ms": 40,
     "visemes": [{"visemeId": 21, "offset": 12}, ...]}   (or the lipsync format's shape)

`audio_offset_ms` is where the frame's audio starts on the timeline (all audio
given since the `LiveVisemes` was made); viseme offsets count from the frame's start.
`flush()` ends an utterance (its answer carries the lookahead's last visemes and
`"final": true`), `reset()` is an interruption (nothing computed is kept).
`add_text()` gives the current utterance's transcript, in pieces, before or
with its audio: the visemes then follow its words (text_align.py); character
times, where the caller has them, count on the same timeline.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from .audio import AudioFormat
from .batcher import EngineOverloaded
from .engine import MODEL_LANGUAGES, EngineConfig, EngineStream, VisemeEngine, load_models
from .lipsync import LipsyncConfig
from .output import LipsyncOutput
from .text_align import known_words, phonemize

Answer = dict[str, Any]


def mono_s16(audio: bytes, channels: int) -> bytes:
    """Interleaved 16-bit PCM of `channels` channels as one (their mean)."""
    if channels == 1:
        return audio
    samples = np.frombuffer(audio, np.int16).reshape(-1, channels).astype(np.int32)
    mixed: bytes = samples.mean(axis=1).astype(np.int16).tobytes()
    return mixed


class VisemeSource(Protocol):
    """A live source of visemes: in this process (`LiveVisemes`) or a gateway's
    streaming endpoint (`viseme_engine.remote.RemoteVisemes`)."""

    async def feed(self, pcm: bytes, fmt: AudioFormat) -> Answer: ...

    async def flush(self) -> Answer: ...

    async def add_text(
        self, text: str, final: bool = False, char_ms: Sequence[float] | None = None
    ) -> None: ...

    async def reset(self) -> None: ...

    async def aclose(self) -> None: ...


class LiveVisemes:
    """One live timeline over an engine: a fresh engine stream per utterance (after a
    flush, a reset, an overload or a change of audio format)."""

    def __init__(
        self,
        engine: VisemeEngine,
        model: str = "default",
        lipsync: LipsyncConfig | None = None,
        use_text: bool = True,
    ) -> None:
        if model not in engine.model_names:
            raise KeyError(model)
        self._engine = engine
        self.model = model
        self.lipsync = lipsync or LipsyncConfig()
        self.use_text = use_text  # off: `add_text` is ignored (acoustic-only visemes)
        # Text not yet given to a stream: (text, final, char_ms on the timeline). The
        # next frame gives it to its stream, opened for it if need be, before that
        # frame's audio; meanwhile espeak-ng phonemizes it in the background
        # (`_warming`), so that frame's deadline need not cover a subprocess.
        self._text: list[tuple[str, bool, Sequence[float] | None]] = []
        self._warming: set[asyncio.Task[object]] = set()
        self._stream: EngineStream | None = None
        self._output: LipsyncOutput | None = None
        self._format: AudioFormat | None = None
        self.at_ms = 0.0  # where the next frame's audio starts on the timeline
        self._stream_at = 0.0  # where the current engine stream began
        self._last_ms = 0.0  # the last frame's start: the flush's offsets count from it
        self.events = 0  # viseme events behind the last answer (for metering)

    async def feed(self, pcm: bytes, fmt: AudioFormat) -> Answer:
        """The answer for one frame of audio (`"skipped": "overloaded"` and no visemes
        when the engine sheds it; the next frame starts a fresh stream)."""
        if self._stream is None or self._output is None or fmt != self._format:
            self._stream = self._engine.open_stream(self.model, fmt, self.use_text, self.lipsync)
            self._output = LipsyncOutput(self.lipsync)
            self._format, self._stream_at = fmt, self.at_ms
        stream, output = self._stream, self._output
        duration_ms = fmt.duration_ms(len(pcm))
        answer: Answer = {
            "type": "visemes",
            "audio_offset_ms": round(self.at_ms),
            "audio_duration_ms": round(duration_ms),
        }
        self.events = 0
        try:
            await self._give_text(stream)
            events = await stream.feed(pcm)
        except EngineOverloaded:
            self._forget()
            answer |= {"visemes": [], "skipped": "overloaded"}
        else:
            self.events = len(events)
            answer |= output.push(events, stream.take_probs(), self.at_ms - self._stream_at)
        finally:  # a frame that failed (or was given up on) still took its time
            self._last_ms = self.at_ms
            self.at_ms += duration_ms
        return answer

    async def flush(self) -> Answer:
        """End of an utterance: the lookahead's last visemes; the next audio starts afresh."""
        stream, output = self._stream, self._output
        self._forget()
        if stream is not None:  # text that came after the last frame: its lookahead's
            await self._give_text(stream)
        self._text = []  # an utterance that had text but no audio: its text goes with it
        answer: Answer = {"type": "visemes", "audio_offset_ms": round(self._last_ms), "final": True}
        self.events = 0
        if stream is None or output is None:  # nothing to drain: still an answer
            return answer | {"visemes": []}
        try:
            events = await stream.flush()
        except EngineOverloaded:
            return answer | {"visemes": [], "skipped": "overloaded"}
        self.events = len(events)
        start_ms = self._last_ms - self._stream_at
        return answer | output.push(events, stream.take_probs(), start_ms, final=True)

    async def add_text(
        self, text: str, final: bool = False, char_ms: Sequence[float] | None = None
    ) -> None:
        """Transcript of the current utterance (the next one's after a flush), in
        pieces; `final`: its last piece. `char_ms`: per character, its start on this
        timeline (like `audio_offset_ms`), where known: a prior, not the truth."""
        if not self.use_text:
            return
        self._text.append((text, final, char_ms))
        lang = MODEL_LANGUAGES[self.model]
        if text.strip() and not known_words(text, lang):
            warm = asyncio.create_task(asyncio.to_thread(phonemize, text, lang))
            self._warming.add(warm)
            warm.add_done_callback(self._warmed)

    def _warmed(self, task: asyncio.Task[object]) -> None:
        self._warming.discard(task)
        if not task.cancelled():
            task.exception()  # taken: the stream phonemizes again and logs a failure

    async def _give_text(self, stream: EngineStream) -> None:
        """The text waiting for a stream, to `stream`, in order. A piece whose
        phonemizing is cut short (the caller's deadline) is lost, not repeated:
        the stream has taken its words."""
        while self._text:
            text, final, char_ms = self._text.pop(0)
            await stream.add_text(text, final, self._on_stream(char_ms))

    def _on_stream(self, char_ms: Sequence[float] | None) -> list[float] | None:
        return None if char_ms is None else [t - self._stream_at for t in char_ms]

    async def reset(self) -> None:
        """An interruption: nothing computed for the current stream goes out."""
        self._forget()
        self._text = []

    async def aclose(self) -> None:
        self._forget()

    def _forget(self) -> None:
        self._stream = self._output = self._format = None


_ENGINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[VisemeEngine]] = (
    weakref.WeakKeyDictionary()
)


async def _start_engine(config: EngineConfig) -> VisemeEngine:
    loaded = await asyncio.to_thread(load_models, config)
    engine = VisemeEngine(loaded, config)
    await engine.start()
    return engine


async def shared_engine() -> VisemeEngine:
    """This process's engine, loaded once on first use (CUDA when onnxruntime has it,
    else the CPU), so every plugin session in the process batches together. It lives
    one per event loop (its batchers run there)."""
    loop = asyncio.get_running_loop()
    task = _ENGINES.get(loop)
    failed = task is not None and task.done() and (task.cancelled() or task.exception() is not None)
    if task is None or failed:  # a failed load is tried again
        task = _ENGINES[loop] = loop.create_task(_start_engine(EngineConfig()))
    return await asyncio.shield(task)
