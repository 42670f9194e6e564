"""Forced alignment of known text to real speech with pocketsphinx.

Real recordings come with transcripts, not phone timings. pocketsphinx 5 (the
PyPI wheel bundles the en-us acoustic model and cmudict) aligns a word
sequence to audio in two passes: a word-level search constrained to the text
(`set_align_text`), then a state-level alignment of the words it found
(`set_alignment`). Words missing from cmudict are spelt by flite's `t2p`
letter-to-sound rules; Indonesian words come with their own pronunciations
(espeak-ng's, mapped to ARPAbet), since the English model is the only one.

Timing: pocketsphinx frame i analyses samples [160 i, 160 i + 410), so its
phones sit early against a 10 ms grid of frame centres. `SHIFT_S` corrects
that; it was measured against MFA's alignments of LJSpeech (`--check`, see
viseme_engine/models/default.md).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from viseme_engine.audio import to_pcm16

# pocketsphinx phones run early against MFA's by about this much (measured, see above)
SHIFT_S = 0.020
_ALTERNATE = re.compile(r"\(\d+\)$")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
_NOT_IN_CMUDICT = {"AX": "AH", "AXR": "ER"}  # flite's and our ARPAbet's extra phones
_CMU_PHONES = frozenset(
    ("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
     "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH",
     "UW", "V", "W", "Y", "Z", "ZH")
)  # fmt: skip


@dataclass(frozen=True)
class Alignment:
    """Timed phones (lower-case ARPAbet, "sil" between words) and words."""

    phones: list[str]
    ends: list[float]  # seconds, one per phone
    words: list[tuple[str, float, float]]  # (word, start s, end s)


def words_of(text: str) -> list[str]:
    """Lower-case words of a transcript, punctuation dropped, apostrophes kept."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))  # typographic apostrophe


def t2p(word: str) -> list[str]:
    """flite's letter-to-sound phones for one word, upper-case, stress dropped."""
    res = subprocess.run(  # noqa: S603
        ["t2p", word],  # noqa: S607
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return [p.rstrip("012").upper() for p in res.stdout.split() if p != "pau"]


class ForcedAligner:
    """One pocketsphinx decoder; not thread-safe (one per process)."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder, get_model_path  # the optional `train` extra

        model = get_model_path()
        self._decoder: Any = Decoder(
            hmm=os.path.join(model, "en-us", "en-us"),
            dict=os.path.join(model, "en-us", "cmudict-en-us.dict"),
            lm=None,
            bestpath=False,  # the second (state-level) pass fails after a bestpath search
            loglevel="FATAL",
        )
        self._added: set[str] = set()

    def _ensure(self, word: str, phones: Sequence[str] | None) -> str:
        """The dictionary entry to align `word` with, added when missing."""
        if phones is not None:  # a given pronunciation, under a name cmudict cannot hold
            key = "x_" + re.sub(r"[^a-z0-9]", "_", word) + "_" + "".join(phones).lower()
            if key not in self._added:
                self._add(key, phones)
            return key
        if word in self._added or self._decoder.lookup_word(word) is not None:
            return word
        self._add(word, t2p(word))
        return word

    def _add(self, key: str, phones: Sequence[str]) -> None:
        phones = [_NOT_IN_CMUDICT.get(p, p) for p in phones]
        bad = [p for p in phones if p not in _CMU_PHONES]
        if bad or not phones:
            raise ValueError(f"cannot pronounce {key!r}: phones {list(phones)}")
        self._decoder.add_word(key, " ".join(phones), True)
        self._added.add(key)

    def align(
        self,
        audio: np.ndarray,
        words: Sequence[str],
        pronunciations: Mapping[str, Sequence[str]] | None = None,
    ) -> Alignment | None:
        """Align `words` to 16 kHz float audio; None where pocketsphinx finds no path."""
        prons = pronunciations or {}
        try:
            keys = [self._ensure(w, prons.get(w)) for w in words]
        except (ValueError, subprocess.CalledProcessError):
            return None
        pcm = to_pcm16(audio).tobytes()
        d = self._decoder
        try:
            d.set_align_text(" ".join(keys))
            for second_pass in (False, True):
                if second_pass:
                    d.set_alignment()
                d.start_utt()
                d.process_raw(pcm, full_utt=True)
                d.end_utt()
            alignment = d.get_alignment()  # its entries point into it: keep it alive
        except RuntimeError:
            return None
        if alignment is None:
            return None
        return _collect(alignment, keys, words, len(audio) / 16000.0)


def _collect(
    entries: Any, keys: Sequence[str], words: Sequence[str], duration: float
) -> Alignment | None:
    """Flatten pocketsphinx's word -> phone tree into timed phones (frames of 10 ms)."""
    phones: list[str] = []
    ends: list[float] = []
    timed: list[tuple[str, float, float]] = []
    names = dict(zip(keys, words, strict=True))
    for word in entries:
        w_start = word.start * 0.01 + SHIFT_S
        w_end = (word.start + word.duration) * 0.01 + SHIFT_S
        if word.name in ("<s>", "</s>", "<sil>") or word.name.startswith("+"):
            _append(phones, ends, "sil", w_end)
            continue
        base = _ALTERNATE.sub("", word.name)  # "the(2)": cmudict's second pronunciation
        timed.append((names.get(base, base), w_start, w_end))
        if phones == [] and w_start > 0:
            _append(phones, ends, "sil", w_start)
        for ph in word:
            _append(phones, ends, ph.name.lower(), (ph.start + ph.duration) * 0.01 + SHIFT_S)
    if len(timed) != len(words):
        return None
    ends = [min(max(e, 0.0), duration) for e in ends]
    return Alignment(phones=phones, ends=ends, words=timed)


def _append(phones: list[str], ends: list[float], phone: str, end: float) -> None:
    if phone == "sil" and phones and phones[-1] == "sil":
        ends[-1] = end
        return
    phones.append(phone)
    ends.append(end)
