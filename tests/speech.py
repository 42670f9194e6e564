"""Speech for tests, spoken by the real espeak-ng (or flite, a recorded human voice)."""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np

from viseme_engine.audio import parse_wav


@functools.cache
def espeak_wav(text: str, voice: str = "en-us", rate: int = 160) -> bytes:
    """A WAV file (22.05 kHz, 16-bit mono) of `text`."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is required (./dev.sh test installs it)"
    result = subprocess.run(
        [espeak, "-v", voice, "-s", str(rate), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=60,
    )
    # espeak-ng writes streaming sizes (0x7fffffff); the parser takes what is there.
    return result.stdout


def espeak_pcm(text: str, voice: str = "en-us") -> tuple[bytes, int]:
    wav = parse_wav(espeak_wav(text, voice))
    return wav.data, wav.format.sample_rate


@functools.cache
def flite_pcm(text: str, voice: str = "rms") -> tuple[bytes, int]:
    """16-bit mono PCM of `text` from flite's diphone voice `voice` (a recorded
    human speaker, unlike espeak-ng's formant synthesis), and its sample rate."""
    flite = shutil.which("flite")
    assert flite, "flite is required (./dev.sh test installs it)"
    result = subprocess.run(
        [flite, "-voice", voice, "-t", text, "-o", "/dev/stdout"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    wav = parse_wav(result.stdout)
    return wav.data, wav.format.sample_rate


def espeak_chunks(text: str, ms: int) -> tuple[list[bytes], int]:
    """espeak-ng's 16-bit PCM of `text` cut into `ms` pieces, as live audio comes,
    and its sample rate."""
    pcm, rate = espeak_pcm(text)
    step = rate * ms // 1000 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)], rate


def pcm_to_float(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
