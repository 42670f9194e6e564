"""Shared by the benchmarks: speech to measure on, percentiles, CPU use."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import soxr

from viseme_engine.audio import parse_wav

SENTENCES = [
    "Maybe we should bob for apples before the parade begins.",
    "The quick brown fox jumps over the lazy dog, then sleeps.",
    "Please pass me the map; my mother wants to visit Boston.",
    "Nothing about this weather feels like summer to me.",
]


def speech(rate: int, seconds: float) -> np.ndarray:
    """About `seconds` of espeak-ng speech as int16 at `rate`."""
    clips = []
    for voice in ("en-us", "en-us+f3", "en-gb+m3"):
        for sentence in SENTENCES:
            out = subprocess.run(
                [shutil.which("espeak-ng") or "espeak-ng", "-v", voice, "--stdout", sentence],
                capture_output=True,
                check=True,
            ).stdout
            wav = parse_wav(out)
            pcm = np.frombuffer(wav.data, "<i2").astype(np.float32)
            clips.append(soxr.resample(pcm, wav.format.sample_rate, rate))
    one = np.concatenate(clips)
    repeats = int(np.ceil(seconds * rate / len(one)))
    return np.tile(one, repeats)[: int(seconds * rate)].clip(-32768, 32767).astype(np.int16)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class CpuMeter:
    """Process CPU time over wall time, in cores (1.0 = one core busy)."""

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> CpuMeter:
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall0
        self.cpu = time.process_time() - self._cpu0

    @property
    def cores(self) -> float:
        return self.cpu / self.wall if self.wall else 0.0


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible"


# A load generator is one app with hundreds of sessions: its key gets a policy that
# bounds nothing the benchmark reaches (the gateway's default policy would refuse the
# 11th session and the 11th signed URL of a burst).
UNBOUNDED_POLICY = {
    "signed_urls_per_second": 100_000,
    "signed_url_burst": 1_000_000,
    "concurrent_sessions": 1_000_000,
    "client_messages_per_second": 100_000,
    "client_message_burst": 1_000_000,
    "visemes_concurrency": 100_000,
}


def unbounded_keys_file(api_key: str) -> str:
    """A keys file (TOML) holding `api_key` with UNBOUNDED_POLICY; its path."""
    lines = ["[[keys]]", 'id = "bench"', f'secret = "{api_key}"', "[keys.policy]"]
    lines += [f"{name} = {value}" for name, value in UNBOUNDED_POLICY.items()]
    handle, path = tempfile.mkstemp(prefix="viseme-bench-keys-", suffix=".toml")
    with os.fdopen(handle, "w") as out:
        out.write("\n".join(lines) + "\n")
    return path
