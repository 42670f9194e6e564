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
its process's CPU time over the measured window, in cores. The first second of
each run is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bench.common import percentile, speech
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
    measuring: bool = False


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


async def client(http: aiohttp.ClientSession, url: str, samples: Samples, until: float) -> None:
    async with http.ws_connect(url, max_msg_size=0, headers={"Authorization": "Bearer ek_x"}) as ws:
        async for frame in ws:
            now = time.perf_counter()
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            event_id = message.get("event_id", "")
            if not event_id.startswith("t"):
                continue
            samples.received += 1
            if "mascotVisemes" in message:
                samples.visemes += 1
            if samples.measuring:
                kind = message["type"]
                if kind == "response.output_audio.delta":
                    bucket = samples.audio
                else:
                    bucket = samples.apart if kind == "rate_limits.updated" else samples.adjacent
                bucket.append(now - float(event_id[1:]))
            if now >= until:
                break


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    compute_ms: float | None  # the gateway's own mean viseme time per audio message


async def chunk_added(http: aiohttp.ClientSession, base: str) -> tuple[float, float]:
    """(sum, count) of viseme_gateway_relay_chunk_added_seconds."""
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    values = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for kind in values:
            if line.startswith(f"viseme_gateway_relay_chunk_added_seconds_{kind}{{"):
                values[kind] += float(line.rsplit(" ", 1)[1])
    return values["sum"], values["count"]


async def run_mode(
    mode: str, sessions: int, seconds: float, fake_url: str, gateway: GatewayProcess | None
) -> Result:
    lipsync = mode if mode in FORMATS else None
    samples = Samples()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        if gateway is None:
            urls = [f"{fake_url}/v1/realtime?model=gpt-realtime"] * sessions
        else:
            urls = [await signed_url(http, gateway.base_url, lipsync) for _ in range(sessions)]
        until = time.perf_counter() + WARMUP + seconds
        tasks = [asyncio.create_task(client(http, url, samples, until)) for url in urls]
        await asyncio.sleep(WARMUP)
        samples.measuring = True
        pid = gateway.proc.pid if gateway else None
        added0 = await chunk_added(http, gateway.base_url) if gateway else (0.0, 0.0)
        cpu0, wall0 = (cpu_seconds(pid) if pid else 0.0), time.perf_counter()
        await asyncio.gather(*tasks)
        samples.measuring = False
        cpu = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - wall0) if pid else None
        added1 = await chunk_added(http, gateway.base_url) if gateway else (0.0, 0.0)
        count = added1[1] - added0[1]
        compute = (added1[0] - added0[0]) / count * 1000 if count else None
    return Result(mode, sessions, samples, cpu, compute)


def start_gateway(
    fake_url: str, visemes: bool, engine_threads: int, text: bool = True
) -> GatewayProcess:
    # VISEME_GATEWAY_* set for this command reach both gateways (e.g. ENGINE_MAX_WAIT_MS).
    env = {k: v for k, v in os.environ.items() if k.startswith("VISEME_GATEWAY_")}
    env |= {
        "VISEME_GATEWAY_ENGINE_THREADS": str(engine_threads),
        "VISEME_GATEWAY_API_KEYS": API_KEY,
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
        "                  audio            audio added       non-audio apart   non-audio behind"
        "                            gateway",
        "sessions mode      p50     p99     p50     p99     p50     p99     p50     p99"
        "    messages  visemes       CPU    compute",
    ]
    for r in results:
        s, d = r.samples, direct[r.sessions]
        cpu = f"{r.cpu_cores:5.2f} cores" if r.cpu_cores is not None else "          -"
        compute = f"{r.compute_ms:7.2f}" if r.compute_ms is not None else "      -"
        lines.append(
            f"{r.sessions:8d} {r.mode:8s} {pair(s.audio)} {added(s.audio, d.audio)}"
            f" {pair(s.apart)} {pair(s.adjacent)}"
            f" {s.received:9d} {s.visemes:8d} {cpu} {compute}"
        )
    notes = (
        "(ms; added = minus direct; non-audio apart: sent mid-way between audio messages;"
        " behind: sent right after an audio message, so it waits for that message's visemes;"
        " compute: the gateway's own mean viseme time per audio message)"
    )
    return "\n".join([*lines, notes])


async def main(
    sessions_list: list[int], seconds: float, engine_threads: int, formats: list[str]
) -> None:
    provider = Provider(speech(RATE, 30.0).tobytes(), seed=1)
    async with serve(provider.handle, "127.0.0.1", 0, compression=None, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake_url = f"ws://127.0.0.1:{port}"
        gateways = {
            "relay": await asyncio.to_thread(start_gateway, fake_url, False, engine_threads),
            "acoustic": await asyncio.to_thread(
                start_gateway, fake_url, True, engine_threads, False
            ),
            "visemes": await asyncio.to_thread(start_gateway, fake_url, True, engine_threads),
        }
        for name in formats:  # the same gateway; the format travels in each token
            gateways[name] = gateways["visemes"]
        results: list[Result] = []
        try:
            for n in sessions_list:
                for mode in ("direct", "relay", "acoustic", "visemes", *formats):
                    result = await run_mode(mode, n, seconds, fake_url, gateways.get(mode))
                    results.append(result)
                    print(f"  done: {n} sessions, {mode}", flush=True)
        finally:
            provider.stop.set()
            for gateway in {id(g): g for g in gateways.values()}.values():
                await asyncio.to_thread(gateway.stop, signal.SIGTERM, 10)
    print(table(results))


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--sessions", default="10,50,100")
    parser.add_argument("--seconds", type=float, default=10.0)
    # 0 = onnxruntime's default pool, whose threads spin while idle.
    parser.add_argument("--engine-threads", type=int, default=0)
    parser.add_argument("--formats", default="", help="extra lipsync formats: arkit,oculus")
    args = parser.parse_args()
    sessions = [int(n) for n in args.sessions.split(",")]
    formats = [f for f in args.formats.split(",") if f]
    if not set(formats) <= set(FORMATS):
        parser.error(f"--formats: choose from {', '.join(FORMATS)}")
    asyncio.run(main(sessions, args.seconds, args.engine_threads, formats))


if __name__ == "__main__":
    cli()
