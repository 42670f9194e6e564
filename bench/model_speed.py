"""Single-core inference speed of a viseme ONNX model, in multiples of real time.

    python -m bench.model_speed [viseme_engine/models/default.onnx] [--threads 1]

Reports one stream fed 1 s chunks (file processing) and batches of streams fed
100 ms chunks (the gateway's batched streaming case).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from viseme_engine.onnx_model import HOP, OnnxVisemeModel


def speed(model: OnnxVisemeModel, batch: int, chunk_frames: int, seconds: float) -> float:
    rng = np.random.default_rng(0)
    n_chunks = max(1, int(seconds * 100) // chunk_frames)
    audio = (rng.standard_normal((batch, chunk_frames * HOP)) * 0.1).astype(np.float32)
    state = model.init_state(batch)
    model.run(audio, state)  # warm-up: first call plans memory
    start = time.perf_counter()
    for _ in range(n_chunks):
        _, state = model.run(audio, state)
    elapsed = time.perf_counter() - start
    return batch * n_chunks * chunk_frames / 100 / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", nargs="?", default="viseme_engine/models/default.onnx", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    model = OnnxVisemeModel.from_path(args.model, threads=args.threads)
    print(f"{args.model} ({args.model.stat().st_size / 1e6:.2f} MB), {args.threads} thread(s)")
    print(f"1 stream, 1 s chunks:      {speed(model, 1, 100, 60):8.0f} x real time")
    print(f"1 stream, 100 ms chunks:   {speed(model, 1, 10, 20):8.0f} x real time")
    for batch in (16, 100):
        x = speed(model, batch, 10, 10)
        print(f"{batch:3d} streams, 100 ms chunks: {x:8.0f} x real time (all streams together)")


if __name__ == "__main__":
    main()
