"""Audio decoding: WAV parsing with clear refusals, mu-law, resampling."""

from __future__ import annotations

import io
import re
import struct
import warnings
import wave

import numpy as np
import pytest

from viseme_engine.audio import AudioError, AudioFormat, Resampler, decode, parse_wav

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the stdlib's G.711 codec, an independent reference (removed in 3.13)


def wav_bytes(samples: np.ndarray, rate: int = 16000, channels: int = 1, width: int = 2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def raw_wav(tag: int, channels: int, rate: int, bits: int, data: bytes, ext: bool = False) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if ext else tag, channels, rate, rate * block, block, bits)
    if ext:
        fmt += struct.pack("<HHI", 22, bits, 4) + struct.pack("<H", tag) + b"\x00" * 14
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_pcm_wav_round_trip() -> None:
    samples = (np.sin(np.arange(1600) / 5) * 20000).astype("<i2")
    parsed = parse_wav(wav_bytes(samples, 24000))
    assert parsed.format == AudioFormat("pcm_s16le", 24000)
    assert np.array_equal(np.frombuffer(parsed.data, "<i2"), samples)


def test_extensible_and_mulaw_wav() -> None:
    samples = np.arange(-800, 800, dtype="<i2") * 20
    parsed = parse_wav(raw_wav(1, 1, 16000, 16, samples.tobytes(), ext=True))
    assert parsed.format.encoding == "pcm_s16le"
    ulaw = audioop.lin2ulaw(samples.tobytes(), 2)
    parsed = parse_wav(raw_wav(7, 1, 8000, 8, ulaw))
    assert parsed.format == AudioFormat("mulaw", 8000)


def test_mulaw_matches_the_stdlib_codec() -> None:
    codes = bytes(range(256))
    reference = np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2") / 32768.0
    assert np.allclose(decode(codes, "mulaw"), reference, atol=1e-7)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "empty"),
        (b"RIFX....WAVEfmt ", "not a WAV"),
        (raw_wav(3, 1, 16000, 32, b"\x00" * 64), "not PCM (IEEE float)"),
        (raw_wav(1, 2, 16000, 16, b"\x00" * 64), "2 channels"),
        (raw_wav(1, 1, 16000, 8, b"\x00" * 64), "8-bit"),
        (raw_wav(1, 1, 7999, 16, b"\x00" * 64), "7999 Hz is not supported (8000-48000 Hz)"),
        (raw_wav(1, 1, 96000, 16, b"\x00" * 64), "96000"),
        (raw_wav(7, 1, 16000, 8, b"\x00" * 64), "mu-law audio must be 8000"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
    ],
)
def test_unsupported_wavs_say_why(blob: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=re.escape(message)):
        parse_wav(blob)


def test_streaming_size_fields_are_tolerated() -> None:
    samples = np.arange(320, dtype="<i2")
    blob = bytearray(raw_wav(1, 1, 16000, 16, samples.tobytes()))
    blob[40:44] = b"\xff\xff\xff\xff"  # data size unknown, as streaming writers leave it
    assert np.frombuffer(parse_wav(bytes(blob)).data, "<i2").size == 320


def test_odd_pcm_is_refused() -> None:
    with pytest.raises(AudioError):
        decode(b"\x00\x01\x02", "pcm_s16le")


def test_resampler_rate_and_identity() -> None:
    tone = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32)
    out = Resampler(48000)(tone, last=True)
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(int(spectrum.argmax()) - 440) <= 1
    same = np.ones(10, np.float32)
    assert Resampler(16000)(same) is same
