"""Training-time audio augmentation (numpy + soxr), applied per utterance.

Synthesized training speech is clean and uniform; real provider audio is not.
Each transform simulates one gap between the two: speaker rate and size (speed;
VTLP happens in the model's filterbank, see train.py), recording chain (random
EQ, band-limiting, reverberation, noise, gain and clipping) and transport
(ElevenLabs' ulaw_8000: 8 kHz resampling plus mu-law companding; Opus and MP3
at voice bitrates, as WebRTC and provider TTS audio arrive).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soxr

from viseme_engine.audio import to_pcm16

SR = 16000
HOP = 160


@dataclass(frozen=True)
class AugmentConfig:
    p_speed: float = 0.8
    speed_range: tuple[float, float] = (0.8, 1.2)
    p_eq: float = 0.7
    p_bandlimit: float = 0.35
    p_mulaw: float = 0.2
    p_codec: float = 0.0  # Opus / MP3 round trip (needs ffmpeg); train.py turns it on
    p_reverb: float = 0.3
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (5.0, 40.0)
    gain_db: tuple[float, float] = (-30.0, 6.0)
    p_clip: float = 0.05
    pad_s: tuple[float, float] = (0.0, 0.6)


def retime_labels(labels: np.ndarray, n_frames: int, factor: float) -> np.ndarray:
    """Labels for audio played `factor` times faster: new frame i shows old time i*factor."""
    centres = ((np.arange(n_frames) + 0.5) * factor).astype(np.int64)
    return labels[np.clip(centres, 0, len(labels) - 1)]


def speed(audio: np.ndarray, labels: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    out = soxr.resample(audio, SR * factor, SR, quality="LQ").astype(np.float32)
    n = len(out) // HOP
    return out[: n * HOP], retime_labels(labels, n, factor)


def random_eq(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smooth random spectral tilt and resonances (+-9 dB), like a different mic or voice."""
    spec = np.fft.rfft(audio)
    knots = rng.normal(0.0, 4.0, size=8)
    knots += np.linspace(0, rng.uniform(-9, 9), 8)  # overall tilt
    gain_db = np.interp(np.linspace(0, 7, len(spec)), np.arange(8), knots)
    return np.fft.irfft(spec * 10 ** (gain_db / 20), n=len(audio)).astype(np.float32)


def band_limit(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(len(audio), 1 / SR)
    lo = rng.uniform(50, 400)
    hi = rng.uniform(3000, 7500)
    spec[(freqs < lo) | (freqs > hi)] *= 10 ** (-rng.uniform(20, 60) / 20)
    return np.fft.irfft(spec, n=len(audio)).astype(np.float32)


def mulaw_8k(audio: np.ndarray) -> np.ndarray:
    """Round trip through 8 kHz G.711 mu-law, as ElevenLabs' ulaw_8000 output sounds."""
    low = soxr.resample(audio, SR, 8000)
    mu = 255.0
    x = np.clip(low, -1.0, 1.0)
    code = np.round((np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) + 1) / 2 * mu)
    y = code / mu * 2 - 1
    dec = np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu
    out = soxr.resample(dec, 8000, SR)
    return np.resize(out, len(audio)).astype(np.float32)


_CODECS = (  # (ffmpeg encoder args, container); bitrates as voice calls and TTS use
    (["-c:a", "libopus", "-application", "voip"], "ogg", (12, 32)),
    (["-c:a", "libmp3lame"], "mp3", (24, 64)),
)


def codec_roundtrip(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Encode and decode with Opus or MP3 through ffmpeg; re-aligned to the input.

    Encoders add a delay (MP3's padding, Opus' pre-skip) that decoders do not
    always remove: the output is shifted back by the lag of the best
    cross-correlation within 100 ms (MP3 through ffmpeg: 69 ms), so labels stay
    on their audio.
    """
    args, fmt, (lo, hi) = _CODECS[int(rng.integers(0, len(_CODECS)))]
    pcm = to_pcm16(audio).tobytes()
    raw = ["-f", "s16le", "-ar", str(SR), "-ac", "1"]
    kbps = int(rng.integers(lo, hi + 1))
    enc = subprocess.run(  # noqa: S603
        [_FFMPEG, "-v", "error", *raw, "-i", "-", *args, "-b:a", f"{kbps}k", "-f", fmt, "-"],
        input=pcm, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    dec = subprocess.run(  # noqa: S603
        [_FFMPEG, "-v", "error", "-i", "-", *raw, "-"],
        input=enc.stdout, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    out = np.frombuffer(dec.stdout, np.int16).astype(np.float32) / 32768.0
    lag = best_lag(audio, out, int(0.1 * SR))
    out = out[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, np.float32), out])
    return np.resize(np.concatenate([out, np.zeros(len(audio), np.float32)]), len(audio))


_FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def best_lag(ref: np.ndarray, x: np.ndarray, max_lag: int) -> int:
    """Samples by which `x` runs late against `ref` (-max_lag..max_lag)."""
    n = min(len(ref), len(x))
    if n == 0:
        return 0
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(x[:n], size) * np.conj(np.fft.rfft(ref[:n], size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    return int(lags[np.argmax(corr[lags])])


def reverb(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Synthetic room: direct path plus exponentially decaying noise tail (RT60 0.1-0.7 s)."""
    rt60 = rng.uniform(0.1, 0.7)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[: int(0.002 * SR)] = 0.0
    rir *= 10 ** (-rng.uniform(0, 12) / 20) / (np.sqrt(np.sum(rir**2)) + 1e-9)
    rir[0] = 1.0
    size = len(audio) + n
    wet = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(rir, size), size)[: len(audio)]
    scale = float(np.max(np.abs(audio))) / (float(np.max(np.abs(wet))) + 1e-9)
    return np.asarray(wet * scale, np.float32)


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown noise, or mains hum: stand-ins for real background noise."""
    kind = rng.integers(0, 4)
    if kind == 3:
        t = np.arange(n) / SR
        f0 = rng.choice([50.0, 60.0])
        return np.asarray(np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(6 * np.pi * f0 * t), np.float32)
    white = rng.standard_normal(n)
    if kind == 0:
        return white.astype(np.float32)
    spec = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    spec /= f ** (0.5 if kind == 1 else 1.0)
    return np.fft.irfft(spec, n=n).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-9)


def augment(
    audio: np.ndarray, labels: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """audio float32 [-1, 1] (len = 160 * len(labels)) -> augmented audio and labels."""
    audio = audio.astype(np.float32)
    if rng.random() < cfg.p_speed:
        audio, labels = speed(audio, labels, rng.uniform(*cfg.speed_range))
    # Leading/trailing silence teaches onsets from a cold stream and the running mean.
    pre = int(rng.uniform(*cfg.pad_s) * 100)
    post = int(rng.uniform(*cfg.pad_s) * 100)
    silence = np.zeros((pre + post) * HOP, np.float32)
    audio = np.concatenate([silence[: pre * HOP], audio, silence[pre * HOP :]])
    labels = np.concatenate([np.zeros(pre, np.uint8), labels, np.zeros(post, np.uint8)])
    speech_rms = rms(audio)
    if rng.random() < cfg.p_eq:
        audio = random_eq(audio, rng)
    if rng.random() < cfg.p_reverb:
        audio = reverb(audio, rng)
    if rng.random() < cfg.p_bandlimit:
        audio = band_limit(audio, rng)
    if rng.random() < cfg.p_noise:
        noise = coloured_noise(len(audio), rng)
        snr = rng.uniform(*cfg.snr_db)
        audio = audio + noise * (speech_rms / rms(noise) * 10 ** (-snr / 20))
    gain = 10 ** (rng.uniform(*cfg.gain_db) / 20)
    audio = audio * (gain * 0.1 / speech_rms)  # normalise to -20 dBFS, then random gain
    if rng.random() < cfg.p_clip:
        audio = audio * rng.uniform(2, 6)
    audio = np.clip(audio, -1.0, 1.0)
    if rng.random() < cfg.p_mulaw:
        audio = mulaw_8k(audio)
    elif rng.random() < cfg.p_codec:
        audio = codec_roundtrip(audio, rng)
    # resampling and codecs ring past full scale on clipped input
    return np.clip(audio, -1.0, 1.0).astype(np.float32), labels.astype(np.int64)
