"""A viseme stream: encoded audio bytes in, viseme events out. Sans-I/O.

The model call is split out of the stream (`prepare` -> model -> `complete`)
so one batcher can run many streams' audio in one inference; `feed`/`flush`
do all three in line for callers with a model at hand (tests, offline tools).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from .audio import AudioFormat, Float32Array, Resampler, decode
from .smoothing import Smoother, SmoothingConfig, VisemeEvent
from .text_align import TextAligner

HOP = 160
State = dict[str, npt.NDArray[np.float32]]


class FrameModel(Protocol):
    """What the stream needs of a model (OnnxVisemeModel fits)."""

    @property
    def lookahead_frames(self) -> int: ...

    def init_state(self, batch: int) -> State: ...

    def run(
        self, audio: npt.NDArray[np.float32], state: State
    ) -> tuple[npt.NDArray[np.float32], State]: ...


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    out: npt.NDArray[np.float32] = exp / exp.sum(axis=-1, keepdims=True)
    return out


class VisemeStream:
    def __init__(
        self,
        model: FrameModel,
        audio_format: AudioFormat,
        smoothing: SmoothingConfig | None = None,
        text: TextAligner | None = None,
    ) -> None:
        self.model = model
        # The transcript's aligner, if the caller has one: it reshapes the model's
        # probabilities before the smoother (text_align.py).
        self.text = text
        self.format = audio_format
        self.state: State = model.init_state(1)
        self._resample = Resampler(audio_format.sample_rate)
        self._smoother = Smoother(smoothing or SmoothingConfig())
        self._byte_tail = b""  # an odd byte of s16le split across chunks
        self._sample_tail = np.zeros(0, np.float32)  # < one frame of 16 kHz audio
        self._frames_real = 0  # frames of real audio handed to the model
        self._frames_done = 0  # model output frames consumed (warm-up included)
        self._flushed = False

    def prepare(self, data: bytes) -> Float32Array:
        """Decode and resample; return the whole frames now ready for the model."""
        if self._flushed:
            raise RuntimeError("stream already flushed")
        data = self._byte_tail + data
        cut = len(data) - len(data) % self.format.bytes_per_sample
        self._byte_tail = data[cut:]
        return self._frames(self._resample(decode(data[:cut], self.format.encoding)))

    def prepare_flush(self) -> Float32Array:
        """The last partial frame, zero-padded, plus lookahead zeros to drain the model."""
        if self._flushed:
            raise RuntimeError("stream already flushed")
        block = self._frames(self._resample(np.zeros(0, np.float32), last=True))
        self._flushed = True
        tail = self._sample_tail
        self._sample_tail = np.zeros(0, np.float32)
        if tail.size:
            self._frames_real += 1
        pad = np.zeros(-(-tail.size // HOP) * HOP + self.model.lookahead_frames * HOP, np.float32)
        pad[: tail.size] = tail
        return np.concatenate([block, pad])

    def _frames(self, samples: Float32Array) -> Float32Array:
        joined = np.concatenate([self._sample_tail, samples])
        whole = len(joined) - len(joined) % HOP
        self._sample_tail = joined[whole:]
        self._frames_real += whole // HOP
        return joined[:whole]

    def complete(self, logits: npt.NDArray[np.float32], state: State) -> list[VisemeEvent]:
        """Take the model's output for the last prepared block; return new events."""
        self.state = state
        start = self._frames_done
        self._frames_done += len(logits)
        # Output k of the stream predicts input frame k - lookahead: drop warm-up
        # outputs, and after a flush the ones past the real audio.
        first = max(0, self.model.lookahead_frames - start)
        last = min(len(logits), self._frames_real + self.model.lookahead_frames - start)
        events: list[VisemeEvent] = []
        if last > first:
            probs = softmax(logits[first:last])
            if self.text is not None:
                probs = self.text.step(probs)
            events = self._smoother.push(probs)
        if self._flushed and self._frames_done >= self._frames_real + self.model.lookahead_frames:
            events += self._smoother.flush()
        return events

    @property
    def audio_ms(self) -> int:
        """Milliseconds of audio taken so far (whole frames)."""
        return self._frames_real * 10

    def feed(self, data: bytes) -> list[VisemeEvent]:
        return self._run(self.prepare(data))

    def flush(self) -> list[VisemeEvent]:
        return self._run(self.prepare_flush())

    def _run(self, block: Float32Array) -> list[VisemeEvent]:
        if block.size == 0:
            return []
        logits, state = self.model.run(block[None, :], self.state)
        return self.complete(logits[0], state)
