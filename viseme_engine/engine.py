"""The engine: both models loaded once, one micro-batcher each, async streams on top."""

from __future__ import annotations

import asyncio
import functools
import logging
import subprocess
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import text_kernel
from .align_process import AlignerProcess
from .audio import AudioFormat
from .batcher import BatchStats, MicroBatcher
from .device import device_in_use, requested_providers
from .forced_align import FORCED_LANGUAGES, ForcedPath
from .lipsync import LipsyncConfig
from .smoothing import SmoothingConfig, VisemeEvent
from .stream import HOP, Block, FrameModel, State, VisemeStream
from .text_align import TextAligner, expected_visemes, known_words, timed_visemes
from .text_utterance import UtteranceAligner, align_recording

log = logging.getLogger("viseme_engine")
MODELS_DIR = Path(__file__).parent / "models"
MODEL_NAMES = ("default", "indonesian")
FEED_SECONDS = 1  # the most audio one block of a stream carries (EngineStream.feed)
UTTERANCE_SECONDS = 60  # the longest recording aligned whole (VisemeEngine.open_utterance)
MODEL_LANGUAGES = {"default": "en", "indonesian": "id"}  # the text each model's transcripts are in


@dataclass(frozen=True)
class EngineConfig:
    device: str = "auto"
    threads: int | None = None  # onnxruntime intra-op threads; None = one per core
    max_batch: int = 256
    # None: 0 on CPU, 2 ms on CUDA. On a CPU a row costs about as much batched
    # as alone (only the ~0.2 ms per call is shared), so waiting mostly adds
    # latency; batches still form from what queues while the worker is busy
    # (80 sessions: 1.7 rows per inference). On a GPU rows are nearly free and
    # a short wait fills the batch.
    max_wait_ms: float | None = None
    max_pending: int = 4096
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    # Split blocks into power-of-two pieces so streams share batches. Pays on a
    # GPU (batch rows are nearly free); on a CPU the per-frame cost is the same
    # batched or not and each extra call costs ~0.15 ms. None: only on CUDA.
    split_blocks: bool | None = None
    # POST /v1/visemes with a transcript: let pocketsphinx's forced alignment compete
    # with the model's own (text_utterance.align_recording); False: the model's alone.
    forced_alignment: bool = True

    def batch_wait_ms(self, device: str) -> float:
        if self.max_wait_ms is not None:
            return self.max_wait_ms
        return 2.0 if device == "cuda" else 0.0


class IoBoundModel:
    """Runs a CUDA session through IOBinding: inputs are copied to the device once
    and outputs bound to host memory, instead of onnxruntime's per-run staging."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._session = model.session
        self.lookahead_frames: int = model.lookahead_frames

    def init_state(self, batch: int) -> State:
        state: State = self._model.init_state(batch)
        return state

    def run(
        self, audio: npt.NDArray[np.float32], state: State
    ) -> tuple[npt.NDArray[np.float32], State]:
        binding = self._session.io_binding()
        binding.bind_cpu_input("audio", np.ascontiguousarray(audio, np.float32))
        for name, value in state.items():
            binding.bind_cpu_input(name, value)
        binding.bind_output("logits", "cpu")
        for name in state:
            binding.bind_output(f"{name}_out", "cpu")
        self._session.run_with_iobinding(binding)
        outputs = binding.copy_outputs_to_cpu()
        return outputs[0], dict(zip(state, outputs[1:], strict=True))


def load_model(path: Path, device: str, threads: int | None) -> tuple[FrameModel, str]:
    """Load one model on the requested device; returns it and the device really used."""
    import onnxruntime as ort

    from .onnx_model import OnnxVisemeModel

    # Severity 3 (errors only): onnxruntime warns at length when it falls back to CPU.
    ort.set_default_logger_severity(3)
    providers = requested_providers(device, ort.get_available_providers())
    model = OnnxVisemeModel.from_path(path, providers=providers, threads=threads)
    used = device_in_use(model.session.get_providers())
    if device == "cuda" and used != "cuda":
        raise RuntimeError(f"--device cuda: onnxruntime could not run {path.name} on CUDA")
    return (IoBoundModel(model) if used == "cuda" else model), used


@dataclass(frozen=True)
class LoadedModels:
    models: dict[str, FrameModel]
    device: str


def load_models(config: EngineConfig, models_dir: Path = MODELS_DIR) -> LoadedModels:
    """Blocking: load and warm every model (call it in a thread at start-up)."""
    models: dict[str, FrameModel] = {}
    devices = set()
    for name in MODEL_NAMES:
        model, used = load_model(models_dir / f"{name}.onnx", config.device, config.threads)
        warm_up(model, config.max_batch if used == "cuda" else 1)
        models[name] = model
        devices.add(used)
    device = devices.pop() if len(devices) == 1 else "mixed"
    log.info("viseme engine on %s with models %s", device, ", ".join(models))
    return LoadedModels(models, device)


def warm_up(model: FrameModel, batch: int) -> None:
    """Run once, so the first real request pays no set-up (on CUDA: at full batch,
    which sizes the memory arena and picks the kernels)."""
    model.run(np.zeros((batch, 1600), np.float32), model.init_state(batch))


class VisemeEngine:
    """Loaded models with one micro-batcher each; lives on one event loop."""

    def __init__(
        self,
        loaded: LoadedModels,
        config: EngineConfig,
        on_batch: Callable[[str, int], None] | None = None,  # (model, rows) per inference
    ) -> None:
        self.device = loaded.device
        self.config = config
        self._models = loaded.models
        self._batchers = {
            name: MicroBatcher(
                model,
                max_batch=config.max_batch,
                max_wait_ms=config.batch_wait_ms(loaded.device),
                max_pending=config.max_pending,
                on_batch=None if on_batch is None else functools.partial(on_batch, name),
            )
            for name, model in loaded.models.items()
        }
        self._open: weakref.WeakSet[EngineStream] = weakref.WeakSet()
        self._aligner = AlignerProcess()

    @property
    def open_streams(self) -> int:
        """Streams still referenced by someone (a stream is freed with its last reference)."""
        return len(self._open)

    def batch_stats(self) -> dict[str, BatchStats]:
        return {name: batcher.stats for name, batcher in self._batchers.items()}

    @property
    def model_names(self) -> list[str]:
        return list(self._models)

    async def start(self) -> None:
        for batcher in self._batchers.values():
            await batcher.start()
        await asyncio.to_thread(text_kernel.warm)  # the text aligner's loop, compiled once

    async def stop(self) -> None:
        for batcher in self._batchers.values():
            await batcher.stop()
        await self._aligner.aclose()

    def open_stream(
        self,
        model: str,
        audio_format: AudioFormat,
        use_text: bool = False,
        lipsync: LipsyncConfig | None = None,
    ) -> EngineStream:
        """A stream; with `use_text`, one whose visemes follow the transcript it is given;
        with `lipsync`, one smoothed and kept for that output (viseme_engine/lipsync.py)."""
        if model not in self._models:
            raise KeyError(model)
        text = TextAligner(MODEL_LANGUAGES[model]) if use_text else None
        return self._stream(model, audio_format, lipsync, text)

    async def open_utterance(
        self, model: str, audio_format: AudioFormat, data: bytes, text: str,
        lipsync: LipsyncConfig | None = None,
    ) -> EngineStream:  # fmt: skip
        """A stream for a whole recording whose transcript is known (POST /v1/visemes):
        the model runs over all of `data` first (pocketsphinx aligning the transcript
        meanwhile, for English), the transcript is aligned to it (text_utterance.py),
        and the stream then gives `data`'s visemes from the
        aligned probabilities, chunk by chunk as any stream. Past UTTERANCE_SECONDS
        (the alignment's memory grows with audio times text) it is an `open_stream`
        with the whole transcript given."""
        if model not in self._models:
            raise KeyError(model)
        if audio_format.duration_ms(len(data)) > UTTERANCE_SECONDS * 1000:
            stream = self.open_stream(model, audio_format, use_text=True, lipsync=lipsync)
            await stream.add_text(text, final=True)
            return stream
        lang = MODEL_LANGUAGES[model]
        # pocketsphinx aligns (in its child process) while the model runs over the recording
        forcing = asyncio.ensure_future(self._forced(lang, audio_format, data, text))
        try:
            probe = self._stream(model, audio_format, None, None, keep_probs=True)
            await probe.feed(data)
            await probe.flush()
        except BaseException:
            forcing.cancel()  # the child is stopped (align_process.AlignerProcess.path)
            raise
        try:
            words = await asyncio.to_thread(expected_visemes, text, lang)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("transcript not used, espeak-ng failed: %r", exc)  # audio decides alone
            words = []
        forced = await forcing
        aligned = await asyncio.to_thread(align_recording, probe.take_probs(), words, lang, forced)
        return self._stream(model, audio_format, lipsync, UtteranceAligner(aligned))

    async def _forced(
        self, lang: str, audio_format: AudioFormat, data: bytes, text: str
    ) -> ForcedPath | None:
        """pocketsphinx's forced alignment of `text` to `data`, where it is on and knows
        the language; None where it finds no path (forced_align.py)."""
        if not self.config.forced_alignment or lang not in FORCED_LANGUAGES:
            return None
        try:
            return await self._aligner.path(data, audio_format, text)
        except (OSError, ValueError) as exc:  # the child died, or could not align
            log.warning("forced alignment not used: %r", exc)  # the model aligns alone
            return None

    def _stream(
        self,
        model: str,
        audio_format: AudioFormat,
        lipsync: LipsyncConfig | None,
        text: TextAligner | UtteranceAligner | None,
        keep_probs: bool = False,
    ) -> EngineStream:
        smoothing = self.config.smoothing if lipsync is None else lipsync.smoothing_config()
        keep = keep_probs or (lipsync is not None and lipsync.format == "arkit")
        core = VisemeStream(self._models[model], audio_format, smoothing, text, keep_probs=keep)
        split = self.config.split_blocks
        stream = EngineStream(
            core, self._batchers[model], self.device == "cuda" if split is None else split
        )
        self._open.add(stream)
        return stream


class EngineStream:
    """A stream's asyncio shell: its blocks go through the shared batcher, in order."""

    def __init__(self, core: VisemeStream, batcher: MicroBatcher, split: bool) -> None:
        self.core = core
        self._batcher = batcher
        self._split = split
        self._lock = asyncio.Lock()

    async def add_text(
        self, text: str, final: bool = False, char_ms: Sequence[float] | None = None
    ) -> None:
        """Give the stream transcript text (a no-op for a stream without text);
        `char_ms`: per character, its start in ms of this stream's audio, where the
        provider says (a prior: text_timing.py)."""
        aligner = self.core.text
        if not isinstance(aligner, TextAligner):  # none, or the whole utterance's already
            return
        done, times = aligner.take_timed(text, final, char_ms)
        if not done.strip():
            return
        try:  # espeak-ng runs as a subprocess: off the event loop, unless all is cached
            if known_words(done, aligner.lang):
                words, onsets = timed_visemes(done, times, aligner.lang)
            else:
                words, onsets = await asyncio.to_thread(timed_visemes, done, times, aligner.lang)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("transcript not used, espeak-ng failed: %r", exc)  # audio decides alone
            return
        aligner.add_visemes(words, onsets=onsets)

    def take_drifts(self) -> list[float]:
        """How far (s) the provider's word timings were from where the audio put
        the words, since the last call (empty without timings)."""
        aligner = self.core.text
        return aligner.timing.take_drifts() if isinstance(aligner, TextAligner) else []

    def take_probs(self) -> npt.NDArray[np.float32]:
        return self.core.take_probs()

    async def feed(self, data: bytes) -> list[VisemeEvent]:
        """Visemes for `data`, run as blocks of at most FEED_SECONDS of it: one 11 MiB
        message run as one block took gigabytes and held the batcher for a second
        (the visemes are the same: chunking is exact)."""
        fmt = self.core.format
        size = FEED_SECONDS * fmt.sample_rate * fmt.bytes_per_sample
        events: list[VisemeEvent] = []
        async with self._lock:
            for at in range(0, max(len(data), 1), size):
                events += await self._run(self.core.prepare(data[at : at + size]))
        return events

    async def flush(self) -> list[VisemeEvent]:
        async with self._lock:
            return await self._run(self.core.prepare_flush())

    async def _run(self, block: Block) -> list[VisemeEvent]:
        """The block through the batcher; on any failure (an overload, a cancelled
        caller) it is abandoned whole, so the stream stays aligned (stream.py)."""
        try:
            logits, state = await self._infer(block.audio)
        except BaseException:
            self.core.abandon(block)
            raise
        return self.core.complete(block, logits, state)

    async def _infer(self, audio: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], State]:
        state = self.core.state
        if audio.size == 0:
            return np.zeros((0, 0), np.float32), state
        parts = []
        start = 0
        frames_total = audio.size // HOP
        for frames in pieces(frames_total) if self._split else [frames_total]:
            piece = audio[start : start + frames * HOP]
            start += frames * HOP
            logits, state = await self._batcher.run(piece, state)
            parts.append(logits)
        return np.concatenate(parts), state


def pieces(frames: int, largest: int = 64) -> list[int]:
    """Split a block into power-of-two frame counts, largest first (25 -> 16, 8, 1).

    Rows of one inference must be equally long; streams send chunks of every
    size, so exact lengths rarely meet. A few standard lengths do: blocks from
    many streams then share batches, at the cost of a few steps per chunk."""
    out = [largest] * (frames // largest)
    rest = frames % largest
    bit = largest
    while rest:
        if rest >= bit:
            out.append(bit)
            rest -= bit
        bit //= 2
    return out
