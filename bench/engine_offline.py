"""Offline throughput: seconds of audio per second of wall time, one request.

    python bench/engine_offline.py [--seconds 300] [--device cpu|cuda]

Runs the shipped English model over espeak-ng speech with 1 and 2 onnxruntime
threads (and CUDA when asked), and the pocketsphinx phone-loop recognizer
(Rhubarb Lip Sync's approach) on the same audio as the speed reference.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import machine, speech
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import MODELS_DIR, load_model
from viseme_engine.stream import VisemeStream


def engine_rate(pcm: np.ndarray, device: str, threads: int, chunk_s: float) -> float:
    model, used = load_model(MODELS_DIR / "default.onnx", device, threads)
    stream = VisemeStream(model, AudioFormat("pcm_s16le", 16000))
    data = pcm.tobytes()
    step = int(chunk_s * 16000) * 2
    started, cpu0 = time.perf_counter(), time.process_time()
    for start in range(0, len(data), step):
        stream.feed(data[start : start + step])
    stream.flush()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    print(
        f"  engine {used:4s} threads={threads} chunk={chunk_s:g}s: "
        f"{len(pcm) / 16000 / wall:8.0f}x real time ({wall:.2f} s, "
        f"{cpu / (len(pcm) / 16000) * 1000:.2f} ms cpu per audio s)"
    )
    return len(pcm) / 16000 / wall


def pocketsphinx_rate(pcm: np.ndarray) -> float | None:
    try:
        from viseme_engine.training.baseline import PhoneLoopBaseline
    except ImportError:
        print("  pocketsphinx: not installed (pip install .[train])")
        return None
    baseline = PhoneLoopBaseline()
    audio = pcm.astype(np.float32) / 32768.0
    started = time.perf_counter()
    baseline(audio)
    wall = time.perf_counter() - started
    print(
        f"  pocketsphinx phone loop (Rhubarb's approach): {len(pcm) / 16000 / wall:8.1f}x "
        f"real time ({wall:.2f} s)"
    )
    return len(pcm) / 16000 / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ps-seconds", type=float, default=60.0, help="audio for pocketsphinx")
    args = parser.parse_args()
    pcm = speech(16000, args.seconds)
    print(f"offline throughput, {args.seconds:g} s of espeak-ng speech, {machine()}")
    for threads in (1, 2):
        for chunk in (1.0, 10.0):
            engine_rate(pcm, args.device, threads, chunk)
    pocketsphinx_rate(pcm[: int(args.ps_seconds * 16000)])


if __name__ == "__main__":
    main()
