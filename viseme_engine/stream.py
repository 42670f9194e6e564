"""A viseme stream: encoded audio bytes in, viseme events out. Sans-I/O.

The model call is split out of the stream so one batcher can run many streams'
audio in one inference: `prepare` hands out a `Block` of frames, and the block
ends exactly one way, `complete` with the model's output or `abandon` when the
inference failed (an overload): its frames then run first in the next block, so
a failure can never misalign the stream. `feed`/`flush` do it all in line for
callers with a model at hand (tests, offline tools).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .audio import AudioFormat, Float32Array, Resampler, decode
from .phonemes import NUM_VISEMES as N_VISEMES
from .smoothing import Smoother, SmoothingConfig, VisemeEvent
from .text_align import TextAligner
from .text_utterance import UtteranceAligner

HOP = 160
State = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True, eq=False)
class Block:
    """Whole frames ready for the model, prepared from a stream; in flight until
    the stream completes or abandons it."""

    audio: Float32Array
    flush: bool = False  # the stream's last block: the lookahead drained


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
        text: TextAligner | UtteranceAligner | None = None,
        keep_probs: bool = False,
    ) -> None:
        self.model = model
        # The transcript's aligner, if the caller has one: it reshapes the model's
        # probabilities before the smoother (text_align.py, or text_utterance.py for a
        # whole utterance aligned up front).
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
        self._flushed_once = False  # the resampler has had its last input
        self._unrun = np.zeros(0, np.float32)  # frames of an abandoned block, to run first
        # The probabilities behind the events, for outputs drawn from them (ARKit
        # blendshapes, viseme_engine/lipsync.py), until `take_probs`.
        self._probs: list[npt.NDArray[np.float32]] | None = [] if keep_probs else None
        self._in_flight: Block | None = None

    def prepare(self, data: bytes) -> Block:
        """Decode and resample; the whole frames now ready for the model."""
        self._check_idle()
        data = self._byte_tail + data
        cut = len(data) - len(data) % self.format.bytes_per_sample
        self._byte_tail = data[cut:]
        frames = self._frames(self._resample(decode(data[:cut], self.format.encoding)))
        return self._hand_out(frames, flush=False)

    def prepare_flush(self) -> Block:
        """The last partial frame, zero-padded, plus lookahead zeros to drain the model."""
        self._check_idle()
        # A flush asked for again (its block abandoned) finds the resampler drained.
        drained = self._flushed_once
        self._flushed = self._flushed_once = True
        block = self._frames(
            np.zeros(0, np.float32) if drained else self._resample(np.zeros(0, np.float32), True)
        )
        tail = self._sample_tail
        self._sample_tail = np.zeros(0, np.float32)
        if tail.size:
            self._frames_real += 1
        pad = np.zeros(-(-tail.size // HOP) * HOP + self.model.lookahead_frames * HOP, np.float32)
        pad[: tail.size] = tail
        return self._hand_out(np.concatenate([block, pad]), flush=True)

    def _check_idle(self) -> None:
        if self._in_flight is not None:
            raise RuntimeError("a block of this stream is still in flight")
        if self._flushed:
            raise RuntimeError("stream already flushed")

    def _hand_out(self, frames: Float32Array, flush: bool) -> Block:
        if self._unrun.size:
            frames = np.concatenate([self._unrun, frames])
            self._unrun = np.zeros(0, np.float32)
        self._in_flight = Block(frames, flush)
        return self._in_flight

    def abandon(self, block: Block) -> None:
        """The block's inference failed: nothing of it reached the stream's state.
        Its frames run first in the next block (they are past the resampler, which
        cannot be rewound), and a flush may be asked for again."""
        self._take_back(block)
        self._unrun = block.audio
        if block.flush:
            self._flushed = False

    def _frames(self, samples: Float32Array) -> Float32Array:
        joined = np.concatenate([self._sample_tail, samples])
        whole = len(joined) - len(joined) % HOP
        self._sample_tail = joined[whole:]
        self._frames_real += whole // HOP
        return joined[:whole]

    def _take_back(self, block: Block) -> None:
        if block is not self._in_flight:
            raise RuntimeError("not this stream's block in flight")
        self._in_flight = None

    def complete(
        self, block: Block, logits: npt.NDArray[np.float32], state: State
    ) -> list[VisemeEvent]:
        """Take the model's output for the block in flight; return new events."""
        self._take_back(block)
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
            if self._probs is not None:
                self._probs.append(probs)
            events = self._smoother.push(probs)
        if self._flushed and self._frames_done >= self._frames_real + self.model.lookahead_frames:
            events += self._smoother.flush()
        return events

    def take_probs(self) -> npt.NDArray[np.float32]:
        """[frames, 22]: the probabilities of the frames completed since the last
        call (empty unless the stream keeps them)."""
        parts, self._probs = self._probs or [], [] if self._probs is not None else None
        return np.concatenate(parts) if parts else np.zeros((0, N_VISEMES), np.float32)

    @property
    def audio_ms(self) -> int:
        """Milliseconds of audio taken so far (whole frames)."""
        return self._frames_real * 10

    def feed(self, data: bytes) -> list[VisemeEvent]:
        return self._run(self.prepare(data))

    def flush(self) -> list[VisemeEvent]:
        return self._run(self.prepare_flush())

    def _run(self, block: Block) -> list[VisemeEvent]:
        if block.audio.size == 0:
            return self.complete(block, np.zeros((0, 0), np.float32), self.state)
        try:
            logits, state = self.model.run(block.audio[None, :], self.state)
        except BaseException:
            self.abandon(block)
            raise
        return self.complete(block, logits[0], state)
