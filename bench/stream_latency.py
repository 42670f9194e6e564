"""Latency of GET /v1/visemes/stream with N concurrent live streams.

    python -m bench.stream_latency [--streams 50,200] [--seconds 10] [--client-procs 2]

Each stream sends 24 kHz speech in random 40-250 ms binary frames at real-time
pace to a gateway process; "latency" is a frame's send to its visemes' arrival
(the gateway answers every frame, never waiting for later audio). Clients run
in --client-procs processes; gateway CPU counts its workers. VISEME_GATEWAY_*
variables set for the command reach the gateway (e.g. REDIS_URL and WORKERS).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import signal
import time
from concurrent.futures import ProcessPoolExecutor

import aiohttp

from bench.common import percentile, speech, unbounded_keys_file
from bench.relay_latency import API_KEY, TOKEN_KEY, cpu_seconds
from tests.gateway_proc import GatewayProcess

RATE = 24000
WARMUP = 1.0


async def one_stream(
    http: aiohttp.ClientSession, url: str, pcm: bytes, seed: int, start: float, until: float
) -> list[float]:
    rng = random.Random(seed)
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with http.ws_connect(url, headers=headers, max_msg_size=0) as ws:
        await ws.send_json({"sample_rate": RATE})
        await ws.receive_json()  # ready
        await asyncio.sleep(rng.uniform(0, 0.25))  # streams do not start in lockstep
        began, sent_ms, offset = time.perf_counter(), 0.0, rng.randrange(len(pcm) // 4) * 2
        while time.perf_counter() < until:
            ms = rng.randint(40, 250)
            size = RATE * ms // 1000 * 2
            begin = offset % (len(pcm) - size)
            begin -= begin % 2
            sent = time.perf_counter()
            await ws.send_bytes(pcm[begin : begin + size])
            await ws.receive_json()
            if sent >= start:
                latencies.append(time.perf_counter() - sent)
            offset += size
            sent_ms += ms
            await asyncio.sleep(max(0.0, began + sent_ms / 1000 - time.perf_counter()))
    return latencies


def client_process(url: str, seeds: list[int], start: float, until: float) -> list[float]:
    pcm = speech(RATE, 30.0).tobytes()

    async def run() -> list[float]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            parts = await asyncio.gather(
                *(one_stream(http, url, pcm, s, start, until) for s in seeds)
            )
        return [x for part in parts for x in part]

    return asyncio.run(run())


async def main(counts: list[int], seconds: float, procs: int) -> None:
    passed = {k: v for k, v in os.environ.items() if k.startswith("VISEME_GATEWAY_")}
    keys = unbounded_keys_file(API_KEY)
    env = {**passed, "VISEME_GATEWAY_KEYS_FILE": keys, "VISEME_GATEWAY_TOKEN_KEYS": TOKEN_KEY}
    gateway = GatewayProcess(env)
    base = await asyncio.to_thread(gateway.wait_ready)
    url = base.replace("http", "ws", 1) + "/v1/visemes/stream"
    rows = []
    spawn = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(procs, mp_context=spawn) as pool:
            loop = asyncio.get_running_loop()
            for n in counts:
                start = time.perf_counter() + WARMUP + 1.0  # spawning the clients takes a while
                until = start + seconds
                shares = [
                    loop.run_in_executor(
                        pool, client_process, url, list(range(i, n, procs)), start, until
                    )
                    for i in range(procs)
                ]
                await asyncio.sleep(max(0.0, start - time.perf_counter()))
                cpu0, wall0 = cpu_seconds(gateway.proc.pid), time.perf_counter()
                latencies = [x for share in await asyncio.gather(*shares) for x in share]
                cpu = (cpu_seconds(gateway.proc.pid) - cpu0) / (time.perf_counter() - wall0)
                rows.append((n, latencies, cpu))
                print(f"  done: {n} streams", flush=True)
    finally:
        await asyncio.to_thread(gateway.stop, signal.SIGTERM, 10)
    print("streams  frames   p50 ms   p99 ms   gateway CPU")
    for n, latencies, cpu in rows:
        p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
        print(f"{n:7d} {len(latencies):7d} {p50:8.2f} {p99:8.2f}   {cpu:5.2f} cores")
    print("(latency: a frame's send to its visemes' arrival, at real-time pace)")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--streams", default="50,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-procs", type=int, default=2)
    args = parser.parse_args()
    counts = [int(n) for n in args.streams.split(",")]
    asyncio.run(main(counts, args.seconds, args.client_procs))


if __name__ == "__main__":
    cli()
