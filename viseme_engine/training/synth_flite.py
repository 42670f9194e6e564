"""flite: audio plus phone end times (`-psdur`).

flite prints "phone:end_seconds" for every segment. Its English voices can
also speak a phone string (`-p`), which is how they read Indonesian: the
espeak-ng `id` transcription mapped to the nearest ARPAbet phones.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from viseme_engine.training.synth_espeak import Synthesis

FLITE = "flite"
VOICES = ("slt", "awb", "rms", "kal16", "kal")

# espeak-ng id mnemonic -> ARPAbet. Indonesian's five vowels take the nearest
# English full vowel; its trill/tap r becomes English r (close enough for the
# mouth); the glottal stop is left out (flite has none, the mouth barely moves).
ID_TO_ARPABET: dict[str, str] = {
    "a": "aa", "e": "ey", "E": "eh", "E2": "eh", "eI": "ey", "@": "ax", "i": "iy",
    "o": "ow", "O": "ao", "@U": "ow", "u": "uw", "aI": "ay", "aU": "aw", "OI": "oy",
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "g": "g", "m": "m", "n": "n",
    "N": "ng", "n^": "n y", "s": "s", "z": "z", "S": "sh", "C": "sh", "x": "hh",
    "h": "hh", "f": "f", "v": "v", "tS": "ch", "dZ": "jh", "j": "y", "w": "w",
    "l": "l", "r": "r", "R": "r", "R2": "r", "Z": "zh", "c": "ch", "J": "jh",
}  # fmt: skip


def _parse_psdur(out: str) -> tuple[list[str], list[float]]:
    phones: list[str] = []
    ends: list[float] = []
    for tok in out.split():
        name, _, end = tok.rpartition(":")
        if name:
            phones.append(name)
            ends.append(float(end))
    return phones, ends


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono")
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).copy(), w.getframerate()


def synth(
    voice: str,
    text: str | None = None,
    phones: str | None = None,
    stretch: float = 1.0,
    f0_mean: float | None = None,
) -> Synthesis:
    """Speak `text` (or an ARPAbet phone string) with a flite voice."""
    if (text is None) == (phones is None):
        raise ValueError("give exactly one of text or phones")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = [FLITE, "-voice", voice, "-psdur", "-o", str(wav)]
        cmd += ["--setf", f"duration_stretch={stretch:.3f}"]
        if f0_mean is not None:
            cmd += ["--setf", f"int_f0_target_mean={f0_mean:.1f}"]
        cmd += ["-p", phones] if phones is not None else ["-t", text or ""]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)  # noqa: S603
        names, ends = _parse_psdur(res.stdout)
        audio, rate = _read_wav(wav)
    return Synthesis(audio=audio, rate=rate, phones=names, ends=ends)


def indonesian_phone_string(espeak_phones: list[list[str]]) -> str:
    """ARPAbet string for words given as lists of espeak-ng id mnemonics."""
    out = ["pau"]
    for word in espeak_phones:
        for ph in word:
            mapped = ID_TO_ARPABET.get(ph)
            if mapped:
                out.append(mapped)
    out.append("pau")
    return " ".join(out)


def espeak_id_words(text: str) -> list[list[str]]:
    """espeak-ng's `id` transcription of `text`: mnemonics per word."""
    res = subprocess.run(  # noqa: S603
        ["espeak-ng", "-v", "id", "-q", "-x", "--sep=_", text],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    words: list[list[str]] = []
    for w in res.stdout.split():
        phs = [p.lstrip("',%=") for p in w.split("_")]
        words.append([p for p in phs if p])
    return words
