"""Relay-added latency and gateway CPU with N concurrent OpenAI-Realtime-shaped sessions.

    python -m bench.relay_latency [--sessions 10,50,100] [--seconds 10] [--engine-threads N]
                                  [--formats arkit,oculus]

VISEME_GATEWAY_* variables set for the command are passed to the gateways.

A fake provider (in this process) streams real-time speech in 40-250 ms
`response.output_audio.delta` messages at 24 kHz, each followed by a small
non-audio event; every message carries its send time. Clients (also here) note
the arrival time. Three modes per N, in one run:

- direct:   clients connect straight to the fake (the baseline transport cost);
- relay:    through a gateway process with VISEME_GATEWAY_VISEMES=off;
- acoustic: viseme injection on, transcripts ignored (VISEME_GATEWAY_TEXT_INFORMED=off);
- visemes:  viseme injection on, each transcript delta fed to the session's
            text aligner (viseme_engine/text_align.py), as the gateway runs by default.
- arkit, oculus (with --formats): as visemes, with that `lipsync.format` in the
            sessions' provider_config (viseme_engine/lipsync.py).

"added" is the mode's percentile minus the direct percentile. Gateway CPU is
its processes' CPU time (workers included) over the measured window, in cores.
The first second of each run is a warm-up and is not counted. Clients run in
--client-procs processes (default 2), so the load generator is not the
bottleneck; the fake provider runs in this one. "rows" is the engine's mean
rows per inference (blocks of one length run together), "cpu/msg" the gateway's
CPU time per audio message received (the small messages between them included),
"shed" the audio messages sent without visemes for lack of time (past
VISEME_GATEWAY_VISEME_DEADLINE_MS, 20 ms unless set, or refused by a full
engine). Set VISEME_GATEWAY_REDIS_URL for several workers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import random
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bench.common import percentile, speech, unbounded_keys_file
from tests.gateway_proc import GatewayProcess

FORMATS = ("oculus", "arkit")  # besides sapi, which the visemes mode runs
RATE = 24000
WARMUP = 1.0
API_KEY = "bench-key-0123456789abcdef"
TOKEN_KEY = "bench:" + base64.urlsafe_b64encode(b"b" * 32).rstrip(b"=").decode()


@dataclass
class Samples:
    audio: list[float] = field(default_factory=list)  # seconds, send to receive
    adjacent: list[float] = field(default_factory=list)  # non-audio right behind audio
    apart: list[float] = field(default_factory=list)  # non-audio between audio messages
    received: int = 0
    visemes: int = 0
    refused: int = 0  # sessions the gateway turned away (503: saturated)

    def add(self, other: Samples) -> None:
        self.refused += other.refused
        self.audio += other.audio
        self.adjacent += other.adjacent
        self.apart += other.apart
        self.received += other.received
        self.visemes += other.visemes


class Provider:
    """Streams speech at real-time pace to every connection; stamps each message."""

    def __init__(self, pcm: bytes, seed: int) -> None:
        self.pcm = pcm
        self.random = random.Random(seed)
        self.stop = asyncio.Event()

    async def handle(self, conn: ServerConnection) -> None:
        session = {
            "type": "realtime",
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": RATE}}},
        }
        await conn.send(json.dumps({"type": "session.created", "session": session}))
        rng = random.Random(self.random.random())
        await asyncio.sleep(rng.uniform(0, 0.25))  # sessions do not start in lockstep
        start, offset, sent_ms = time.perf_counter(), rng.randrange(len(self.pcm) // 2), 0.0
        try:
            while not self.stop.is_set():
                ms = rng.randint(40, 250)
                size = RATE * ms // 1000 * 2
                begin = (offset * 2) % (len(self.pcm) - size)
                begin -= begin % 2
                chunk = self.pcm[begin : begin + size]
                offset += size // 2
                delta = base64.b64encode(chunk).decode()
                await conn.send(_event("response.output_audio.delta", delta=delta))
                await conn.send(_event("response.output_audio_transcript.delta", delta="word "))
                # Real-time pace against the session clock, so send delays do not add up.
                await asyncio.sleep(
                    max(0.0, start + (sent_ms + ms / 2) / 1000 - time.perf_counter())
                )
                await conn.send(_event("rate_limits.updated", rate_limits=[]))
                sent_ms += ms
                await asyncio.sleep(max(0.0, start + sent_ms / 1000 - time.perf_counter()))
            await conn.close()
        except ConnectionClosed:
            pass


def _event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": f"t{time.perf_counter():.9f}", **fields})


async def client(
    http: aiohttp.ClientSession, url: str, samples: Samples, start: float, until: float
) -> None:
    """One session: counts from `start`, stops at `until` (perf_counter, which is
    CLOCK_MONOTONIC: the same clock in every process)."""
    try:
        await _session(http, url, samples, start, until)
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status != 503:
            raise
        samples.refused += 1


async def _session(
    http: aiohttp.ClientSession, url: str, samples: Samples, start: float, until: float
) -> None:
    async with http.ws_connect(url, max_msg_size=0, headers={"Authorization": "Bearer ek_x"}) as ws:
        async for frame in ws:
            now = time.perf_counter()
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            event_id = message.get("event_id", "")
            if not event_id.startswith("t"):
                continue
            if now >= start:
                samples.received += 1
                kind = message["type"]
                if kind == "response.output_audio.delta":
                    bucket = samples.audio
                    samples.visemes += "mascotVisemes" in message
                else:
                    bucket = samples.apart if kind == "rate_limits.updated" else samples.adjacent
                bucket.append(now - float(event_id[1:]))
            if now >= until:
                break


def client_process(urls: list[str], start: float, until: float) -> Samples:
    """A share of the sessions, in a process of its own."""

    async def run() -> Samples:
        samples = Samples()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await asyncio.gather(*(client(http, url, samples, start, until) for url in urls))
        return samples

    return asyncio.run(run())


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live children (the gateway's workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def signed_url(http: aiohttp.ClientSession, base: str, lipsync: str | None = None) -> str:
    config: dict[str, Any] = {"ephemeral_token": "ek_bench"}
    if lipsync is not None:
        config["lipsync"] = {"format": lipsync}
    body = {"config": {"provider": "openai", "provider_config": config}}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with http.post(f"{base}/v1/get-signed-url", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["signed_url"])


@dataclass
class Result:
    mode: str
    sessions: int
    samples: Samples
    cpu_cores: float | None
    cpu_ms: float | None  # the gateway's CPU time per audio message, everything included
    compute_ms: float | None  # the gateway's mean time per audio message, arrival to send
    rows: float | None  # mean rows per batched inference
    shed: int | None  # audio messages sent without visemes for lack of time


COUNTERS: dict[str, str | tuple[str, ...]] = {
    "added_sum": "viseme_gateway_relay_chunk_added_seconds_sum{",
    "added_count": "viseme_gateway_relay_chunk_added_seconds_count{",
    "batches": "viseme_gateway_engine_batches_total{",
    "rows": "viseme_gateway_engine_batch_rows_total{",
    "shed": ('viseme_gateway_viseme_chunks_skipped_total{provider="openai",reason="deadline"}',
             'viseme_gateway_viseme_chunks_skipped_total{provider="openai",reason="overloaded"}',
             'viseme_gateway_viseme_chunks_skipped_total{provider="openai",reason="saturated"}'),
}  # fmt: skip


async def counters(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The gateway's counters this bench reads, summed over their labels."""
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    values = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        for name, prefixes in COUNTERS.items():
            if line.startswith(prefixes):
                values[name] += float(line.rsplit(" ", 1)[1])
    return values


async def run_mode(
    mode: str,
    sessions: int,
    seconds: float,
    fake_url: str,
    gateway: GatewayProcess | None,
    pool: ProcessPoolExecutor,
    procs: int,
) -> Result:
    lipsync = mode if mode in FORMATS else None
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        if gateway is None:
            urls = [f"{fake_url}/v1/realtime?model=gpt-realtime"] * sessions
        else:
            urls = [await signed_url(http, gateway.base_url, lipsync) for _ in range(sessions)]
        start = time.perf_counter() + WARMUP
        until = start + seconds
        shares = [
            loop.run_in_executor(pool, client_process, urls[i::procs], start, until)
            for i in range(procs)
            if urls[i::procs]
        ]
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        pid = gateway.proc.pid if gateway else None
        before = await counters(http, gateway.base_url) if gateway else {}
        cpu0, wall0 = (cpu_seconds(pid) if pid else 0.0), time.perf_counter()
        samples = Samples()
        for share in await asyncio.gather(*shares):
            samples.add(share)
        used = cpu_seconds(pid) - cpu0 if pid else None
        cpu = used / (time.perf_counter() - wall0) if used is not None else None
        after = await counters(http, gateway.base_url) if gateway else {}
    delta = {k: after[k] - before[k] for k in after}
    count = delta.get("added_count", 0)
    compute = delta["added_sum"] / count * 1000 if count else None
    rows = delta["rows"] / delta["batches"] if delta.get("batches") else None
    shed = round(delta["shed"]) if gateway else None
    cpu_ms = used * 1000 / len(samples.audio) if used is not None and samples.audio else None
    return Result(mode, sessions, samples, cpu, cpu_ms, compute, rows, shed)


def start_gateway(
    fake_url: str, visemes: bool, engine_threads: int, text: bool = True
) -> GatewayProcess:
    # VISEME_GATEWAY_* set for this command reach both gateways (e.g. ENGINE_MAX_WAIT_MS).
    passed = {k: v for k, v in os.environ.items() if k.startswith("VISEME_GATEWAY_")}
    env = {
        "VISEME_GATEWAY_VISEME_DEADLINE_MS": "20",  # the production default (tests run without)
        **passed,
        "VISEME_GATEWAY_ENGINE_THREADS": str(engine_threads),
        "VISEME_GATEWAY_KEYS_FILE": unbounded_keys_file(API_KEY),
        "VISEME_GATEWAY_TOKEN_KEYS": TOKEN_KEY,
        "VISEME_GATEWAY_OPENAI_WS_URL": f"{fake_url}/v1/realtime",
        "VISEME_GATEWAY_VISEMES": "on" if visemes else "off",
        "VISEME_GATEWAY_TEXT_INFORMED": "on" if text else "off",
    }
    gateway = GatewayProcess(env)
    gateway.wait_ready()
    return gateway


def table(results: list[Result]) -> str:
    def ms(value: float) -> str:
        return f"{value * 1000:7.2f}"

    def pair(values: list[float]) -> str:
        return f"{ms(percentile(values, 50))} {ms(percentile(values, 99))}"

    def added(values: list[float], base: list[float]) -> str:
        p50 = percentile(values, 50) - percentile(base, 50)
        p99 = percentile(values, 99) - percentile(base, 99)
        return f"{ms(p50)} {ms(p99)}"

    direct = {r.sessions: r.samples for r in results if r.mode == "direct"}
    lines = [
        "                  audio            audio added      non-audio p99"
        "     audio   with            rows/      gateway         gateway",
        "sessions mode      p50     p99     p50     p99    apart  behind"
        "  messages visemes  shed  batch     CPU  cpu/msg  per msg  refused",
    ]
    for r in results:
        s, d = r.samples, direct[r.sessions]
        cpu = f"{r.cpu_cores:5.2f} cores" if r.cpu_cores is not None else "          -"
        cpu_ms = f"{r.cpu_ms:8.2f}" if r.cpu_ms is not None else "       -"
        compute = f"{r.compute_ms:7.2f}" if r.compute_ms is not None else "      -"
        rows = f"{r.rows:6.2f}" if r.rows is not None else "     -"
        shed = f"{r.shed:5d}" if r.shed is not None else "    -"
        lines.append(
            f"{r.sessions:8d} {r.mode:8s} {pair(s.audio)} {added(s.audio, d.audio)}"
            f" {ms(percentile(s.apart, 99))} {ms(percentile(s.adjacent, 99))}"
            f" {len(s.audio):9d} {s.visemes:7d} {shed} {rows} {cpu} {cpu_ms} {compute}"
            f" {s.refused:8d}"
        )
    notes = (
        "(ms; added = minus direct; non-audio apart: sent mid-way between audio messages;"
        " behind: sent right after an audio message, so it waits for that message's visemes;"
        " cpu/msg: the gateway's CPU time per audio message received, the messages"
        " between them included; per msg: its mean time per audio message from arrival to send;"
        " shed: audio sent without visemes for lack of time)"
    )
    return "\n".join([*lines, notes])


MODES = ("direct", "relay", "acoustic", "visemes")


async def main(
    sessions_list: list[int],
    seconds: float,
    engine_threads: int,
    modes: list[str],
    procs: int,
) -> None:
    provider = Provider(speech(RATE, 30.0).tobytes(), seed=1)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(procs, mp_context=spawn) as pool:
        async with serve(
            provider.handle, "127.0.0.1", 0, compression=None, max_size=None
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            fake_url = f"ws://127.0.0.1:{port}"
            wanted = {
                "relay": (False, True),
                "acoustic": (True, False),
                "visemes": (True, True),
                **dict.fromkeys(FORMATS, (True, True)),
            }
            started: dict[tuple[bool, bool], GatewayProcess] = {}
            for mode in modes:
                if mode in wanted and wanted[mode] not in started:
                    visemes, text = wanted[mode]
                    started[wanted[mode]] = await asyncio.to_thread(
                        start_gateway, fake_url, visemes, engine_threads, text
                    )
            # The formats share the visemes gateway: a format travels in each token.
            gateways = {m: started[wanted[m]] for m in modes if m in wanted}
            results: list[Result] = []
            try:
                for n in sessions_list:
                    for mode in modes:
                        gateway = gateways.get(mode)
                        result = await run_mode(mode, n, seconds, fake_url, gateway, pool, procs)
                        results.append(result)
                        print(f"  done: {n} sessions, {mode}", flush=True)
            finally:
                provider.stop.set()
                for gateway in started.values():
                    await asyncio.to_thread(gateway.stop, signal.SIGTERM, 10)
    print(table(results))


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--sessions", default="10,50,100")
    parser.add_argument("--seconds", type=float, default=10.0)
    # 1, as the gateway defaults to; 0 = onnxruntime's pool, one thread per core.
    parser.add_argument("--engine-threads", type=int, default=1)
    parser.add_argument("--formats", default="", help="extra lipsync formats: arkit,oculus")
    parser.add_argument("--modes", default=",".join(MODES), help="a subset of " + ",".join(MODES))
    parser.add_argument("--client-procs", type=int, default=2, help="client processes")
    args = parser.parse_args()
    sessions = [int(n) for n in args.sessions.split(",")]
    formats = [f for f in args.formats.split(",") if f]
    modes = [m for m in args.modes.split(",") if m]
    if not set(formats) <= set(FORMATS):
        parser.error(f"--formats: choose from {', '.join(FORMATS)}")
    if not set(modes) <= set(MODES) or "direct" not in modes:
        parser.error(f"--modes: a subset of {', '.join(MODES)}, direct included (the baseline)")
    asyncio.run(
        main(sessions, args.seconds, args.engine_threads, modes + formats, args.client_procs)
    )


if __name__ == "__main__":
    cli()
