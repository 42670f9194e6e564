"""Concurrent real-time streams through one shared micro-batcher.

    python bench/engine_streaming.py [--streams 10,50,100,200] [--seconds 15]

Each stream sends 24 kHz s16le speech at real-time pace in random 40-250 ms
chunks, like a provider's audio deltas. Reported: per-chunk added latency
(feed() call to visemes returned) p50/p99, process CPU use (also in ms per second of
audio, comparable with bench.engine_offline's), batching stats (rows per inference).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from bench.common import CpuMeter, machine, percentile, speech
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import EngineConfig, VisemeEngine, load_models

RATE = 24000


async def one_stream(
    engine: VisemeEngine,
    pcm: bytes,
    seconds: float,
    seed: int,
    latencies: list[float],
    start_at: float,
) -> None:
    rng = random.Random(seed)
    stream = engine.open_stream("default", AudioFormat("pcm_s16le", RATE))
    offset = rng.randrange(0, len(pcm) // 2 - RATE * int(seconds) - 1) * 2
    sent = 0.0
    await asyncio.sleep(rng.random() * 0.25)  # streams don't start in lockstep
    while sent < seconds:
        chunk_s = rng.uniform(0.040, 0.250)
        n = int(chunk_s * RATE) * 2
        chunk = pcm[offset : offset + n]
        offset += n
        began = time.perf_counter()
        await stream.feed(chunk)
        latencies.append((time.perf_counter() - began) * 1000)
        sent += chunk_s
        # Real-time pace: the next chunk is due when this one's audio has played.
        delay = start_at + sent - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def run(n: int, seconds: float, config: EngineConfig, pcm: bytes) -> None:
    engine = VisemeEngine(load_models(config), config)
    await engine.start()
    latencies: list[float] = []
    start = time.perf_counter()
    with CpuMeter() as cpu:
        await asyncio.gather(
            *(one_stream(engine, pcm, seconds, i, latencies, start) for i in range(n))
        )
    stats = engine.batch_stats()["default"]
    await engine.stop()
    rows = stats.rows / max(1, stats.batches)
    per_audio_s = cpu.cpu / (n * seconds) * 1000  # bench.engine_offline prints the same
    print(
        f"  N={n:4d}  chunks={len(latencies):6d}  p50={percentile(latencies, 50):6.2f} ms  "
        f"p99={percentile(latencies, 99):7.2f} ms  max={max(latencies):7.2f} ms  "
        f"cpu={cpu.cores * 100:5.0f}%  {per_audio_s:5.2f} ms cpu per audio s  "
        f"rows/batch={rows:5.1f} largest={stats.largest}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", default="10,50,100,200")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--device", default="cpu")
    # 1, as the gateway runs it (VISEME_GATEWAY_ENGINE_THREADS): on a CPU a second
    # intra-op thread costs more CPU per call than it saves on blocks this short.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-wait-ms", type=float, default=None, help="default: the engine's")
    args = parser.parse_args()
    pcm = speech(RATE, 120.0).tobytes()
    config = EngineConfig(device=args.device, threads=args.threads, max_wait_ms=args.max_wait_ms)
    print(
        f"streaming: 24 kHz chunks of 40-250 ms at real-time pace for {args.seconds:g} s, "
        f"device={args.device}, threads={args.threads}, wait={args.max_wait_ms} ms, {machine()}"
    )
    for n in (int(x) for x in args.streams.split(",")):
        asyncio.run(run(n, args.seconds, config, pcm))


if __name__ == "__main__":
    main()
