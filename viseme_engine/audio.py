"""Audio in: WAV parsing, s16le and G.711 mu-law decoding, streaming resampling to 16 kHz.

WAV is parsed by hand rather than with the stdlib `wave` module: on Python
3.11 `wave` rejects WAVE_FORMAT_EXTENSIBLE and mu-law files and its errors do
not say what is wrong, and a client deserves "stereo is not supported".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import soxr

MODEL_RATE = 16_000
# Any integer rate in this range is resampled to MODEL_RATE (soxr takes any ratio).
MIN_RATE, MAX_RATE = 8_000, 48_000
Encoding = Literal["pcm_s16le", "mulaw"]
Float32Array = npt.NDArray[np.float32]

_PCM, _MULAW_TAG, _EXTENSIBLE = 1, 7, 0xFFFE
_FORMAT_NAMES = {2: "ADPCM", 3: "IEEE float", 6: "A-law", 0x11: "IMA ADPCM", 0x55: "MP3"}


class AudioError(ValueError):
    """Audio the engine cannot take; the message says why, for the client."""


@dataclass(frozen=True)
class AudioFormat:
    encoding: Encoding
    sample_rate: int

    def __post_init__(self) -> None:
        if not MIN_RATE <= self.sample_rate <= MAX_RATE:
            raise AudioError(
                f"sample rate {self.sample_rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz"
            )
        if self.encoding == "mulaw" and self.sample_rate != 8_000:
            raise AudioError("mu-law audio must be 8000 Hz")

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "pcm_s16le" else 1

    def duration_ms(self, size: int) -> float:
        """How long `size` bytes of this audio last."""
        return size / self.bytes_per_sample / self.sample_rate * 1000


def _mulaw_table() -> Float32Array:
    """G.711 mu-law to linear, as float in [-1, 1]."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    linear = np.where(sign != 0, -magnitude, magnitude)
    return (linear / 32768.0).astype(np.float32)


_MULAW_TABLE = _mulaw_table()


def to_pcm16(audio: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    """Float audio in [-1, 1] as 16-bit samples (rounded, clipped): decode's inverse."""
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def decode(data: bytes, encoding: Encoding) -> Float32Array:
    """Raw samples to float32 in [-1, 1]; `data` must hold whole samples."""
    if encoding == "mulaw":
        codes = np.frombuffer(data, dtype=np.uint8)
        out: Float32Array = np.take(_MULAW_TABLE, codes)
        return out
    if len(data) % 2:
        raise AudioError("s16le audio has an odd number of bytes")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


@dataclass(frozen=True)
class WavAudio:
    format: AudioFormat
    data: bytes  # the samples, still encoded


def parse_wav(blob: bytes) -> WavAudio:
    """Parse a RIFF/WAVE file: mono, 16-bit PCM or 8 kHz mu-law."""
    if len(blob) == 0:
        raise AudioError("audio is empty (0 bytes)")
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise AudioError("not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(blob):
        chunk_id, size = struct.unpack_from("<4sI", blob, pos)
        body = blob[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise AudioError("WAV fmt chunk is truncated")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the GUID
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError("WAV data chunk comes before its fmt chunk")
            # Streaming writers leave the size at 0 or 0xFFFFFFFF: take what is there.
            return WavAudio(_wav_format(*fmt), _whole_samples(body, fmt[3]))
        pos += 8 + size + (size & 1)
    raise AudioError("WAV file has no data chunk" if fmt else "WAV file has no fmt chunk")


def _wav_format(tag: int, channels: int, rate: int, bits: int) -> AudioFormat:
    if tag not in (_PCM, _MULAW_TAG):
        name = _FORMAT_NAMES.get(tag, f"format tag {tag}")
        raise AudioError(f"WAV is not PCM ({name}); send 16-bit PCM or 8 kHz mu-law")
    if channels != 1:
        raise AudioError(f"WAV has {channels} channels; only mono is supported")
    if tag == _PCM and bits != 16:
        raise AudioError(f"WAV is {bits}-bit PCM; only 16-bit is supported")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"WAV sample rate {rate} Hz is not supported ({MIN_RATE}-{MAX_RATE} Hz)")
    return AudioFormat("pcm_s16le" if tag == _PCM else "mulaw", rate)


def _whole_samples(body: bytes, bits: int) -> bytes:
    width = max(1, bits // 8)
    return body[: len(body) - len(body) % width]


class Resampler:
    """Streaming resampler to 16 kHz; chunking never changes the output (soxr)."""

    def __init__(self, in_rate: int) -> None:
        self._stream = (
            None
            if in_rate == MODEL_RATE
            else soxr.ResampleStream(in_rate, MODEL_RATE, 1, dtype="float32", quality="HQ")
        )

    def __call__(self, samples: Float32Array, last: bool = False) -> Float32Array:
        if self._stream is None:
            return samples
        out: Float32Array = self._stream.resample_chunk(samples, last=last)
        return out
