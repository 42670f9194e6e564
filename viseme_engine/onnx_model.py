"""Runtime wrapper for the streaming viseme ONNX models (onnxruntime + numpy, no torch).

ONNX contract (what the batched engine relies on):

* input ``audio``: float32 ``[batch, samples]``, 16 kHz mono in [-1, 1];
  ``samples`` must be a multiple of ``hop`` = 160 (one 10 ms frame). Batch and
  length are dynamic.
* state inputs ``state_<name>``: float32 ``[batch, *trailing]`` with fixed trailing
  dims listed in the metadata key ``state_specs`` (JSON ``{"state_<name>": [dims]}``);
  matching outputs ``state_<name>_out`` are fed back on the next call. Initial
  states are zeros. States are per batch row, so rows may belong to different
  streams and be regrouped between calls.
* output ``logits``: float32 ``[batch, samples / 160, 22]`` (SAPI visemes 0-21).
  Output frame k of a call is the prediction for input frame
  ``frames_consumed_before + k - lookahead_frames``: predictions are delayed by
  ``lookahead_frames``. The first ``lookahead_frames`` outputs of a stream are
  warm-up and are dropped; to flush a stream's tail, feed ``lookahead_frames * 160``
  zeros.
* metadata (ONNX ``metadata_props``): ``sample_rate`` (16000), ``hop`` (160),
  ``lookahead_frames``, ``n_classes`` (22), ``language``, ``version``, ``state_specs``.

Chunking is exact: any split of a stream into multiple-of-160 chunks gives the
same logits (within float rounding) as one call on the whole stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

HOP = 160
SAMPLE_RATE = 16000
N_CLASSES = 22
PREDICT_CHUNK_FRAMES = 400  # whole-file predict() feeds 4 s chunks: the running mean costs T^2


@dataclass(frozen=True)
class OnnxVisemeModel:
    session: Any  # onnxruntime.InferenceSession (untyped)
    lookahead_frames: int
    state_specs: dict[str, tuple[int, ...]]  # input name -> trailing dims
    language: str
    version: str

    @staticmethod
    def from_path(
        path: str | Path, providers: list[str] | None = None, threads: int | None = None
    ) -> OnnxVisemeModel:
        opts = ort.SessionOptions()
        # Idle intra-op threads otherwise spin between calls: a gateway serving a
        # few streams burnt over half a core doing nothing (bench/relay_latency.py).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(path), opts, providers=providers or ["CPUExecutionProvider"]
        )
        meta: dict[str, str] = session.get_modelmeta().custom_metadata_map
        if int(meta["sample_rate"]) != SAMPLE_RATE or int(meta["hop"]) != HOP:
            raise ValueError(f"{path}: expected 16 kHz audio with hop 160, got {meta}")
        specs = {k: tuple(v) for k, v in json.loads(meta["state_specs"]).items()}
        return OnnxVisemeModel(
            session=session,
            lookahead_frames=int(meta["lookahead_frames"]),
            state_specs=specs,
            language=meta.get("language", ""),
            version=meta.get("version", ""),
        )

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {k: np.zeros((batch, *dims), np.float32) for k, dims in self.state_specs.items()}

    def run(
        self, audio: np.ndarray, state: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """audio float32 [batch, 160*n] -> logits [batch, n, 22] and the next state."""
        if audio.ndim != 2 or audio.shape[1] % HOP:
            raise ValueError(f"audio must be [batch, multiple of {HOP}], got {audio.shape}")
        names = list(self.state_specs)
        feeds = {"audio": np.ascontiguousarray(audio, np.float32), **state}
        outs = self.session.run(["logits", *[f"{n}_out" for n in names]], feeds)
        return outs[0], dict(zip(names, outs[1:], strict=True))

    def predict_logits(self, audio: np.ndarray) -> np.ndarray:
        """Whole-file logits [ceil(samples/160), 22], aligned with the input frames."""
        n_frames = -(-len(audio) // HOP)
        total = (n_frames + self.lookahead_frames) * HOP  # flush: lookahead frames of zeros
        padded = np.zeros((1, total), np.float32)
        padded[0, : len(audio)] = audio
        state = self.init_state(1)
        chunks = []
        step = PREDICT_CHUNK_FRAMES * HOP
        for start in range(0, total, step):
            logits, state = self.run(padded[:, start : start + step], state)
            chunks.append(logits[0])
        return np.concatenate(chunks)[self.lookahead_frames :]

    def predict(self, audio: np.ndarray) -> np.ndarray:
        """Viseme per 10 ms frame (uint8, len ceil(samples/160)) for 16 kHz float32 audio."""
        logits = self.predict_logits(np.asarray(audio, np.float32))
        return np.asarray(logits.argmax(-1), np.uint8)
