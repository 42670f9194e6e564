"""Forced alignment of known text to real speech with pocketsphinx.

Real recordings come with transcripts, not phone timings. pocketsphinx 5 (the
PyPI wheel bundles the en-us acoustic model and cmudict) aligns a word
sequence to audio in two passes: a word-level search constrained to the text
(`set_align_text`), then a state-level alignment of the words it found
(`set_alignment`). Words missing from cmudict are spelt by flite's `t2p`
letter-to-sound rules where flite is installed, else by espeak-ng; Indonesian
words come with their own pronunciations (espeak-ng's, mapped to ARPAbet),
since the English model is the only one.

Two users: the training data's labels of transcribed real speech
(training/realspeech.py), and `POST /v1/visemes` with a transcript, where the
alignment is one of the two paths the whole-recording decoder chooses from
(text_utterance.py; docs/architecture.md, "Text-informed lip sync"). The
engine runs it in a child process (align_process.py): pocketsphinx keeps the
GIL while it decodes.

Timing: pocketsphinx frame i analyses samples [160 i, 160 i + 410), so its
phones sit early against a 10 ms grid of frame centres. `SHIFT_S` corrects
that; it was measured against MFA's alignments of LJSpeech (`--check`, see
viseme_engine/models/default.md).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from viseme_engine.audio import to_pcm16
from viseme_engine.espeak import espeak_lines
from viseme_engine.labels import fix_closures, frame_labels
from viseme_engine.phonemes import phone_viseme

# The languages whose transcripts the engine force-aligns with pocketsphinx: its
# English acoustic model (Indonesian is aligned with it only for training labels).
FORCED_LANGUAGES = frozenset({"en"})
# pocketsphinx phones run early against MFA's by about this much (measured, see above);
# the training labels of the real-speech sets are placed so (training/realspeech.py)
SHIFT_S = 0.020
# The path as the decoder takes it sits this much earlier again: measured alone
# against the synthesizers' own segment times (the validation voices,
# heldout_sentences) it scored 84.1 % against 77.7 %, against MFA's labels of
# LJSpeech 85.4 against 85.6 (docs/architecture.md, "A second path").
SERVED_EARLIER_S = 0.010
MAX_WORD = 40  # letters: longer "words" (a pasted hash, a run of digits) are not aligned
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
    # pocketsphinx's acoustic score of the alignment per 10 ms frame: how much the
    # audio sounds like the speech its model knows. Measured medians: human voices
    # -12 to -16 (LJSpeech -14, Common Voice -13, flite rms -12, festival ked -16),
    # espeak-ng's formant voices -26 to -30.
    fit: float = 0.0
    known: float = 1.0  # share of the words cmudict (or the caller) pronounced, not t2p's guess


def words_of(text: str) -> list[str]:
    """Lower-case words of a transcript, punctuation dropped, apostrophes kept."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))  # typographic apostrophe


def t2p(word: str) -> list[str]:
    """flite's letter-to-sound phones for one word, upper-case, stress dropped;
    espeak-ng's (US English) where flite is not installed."""
    if shutil.which("t2p") is None:
        return espeak_pronunciations([word], "en-us").get(word, [])
    res = subprocess.run(  # noqa: S603
        ["t2p", word],  # noqa: S607
        capture_output=True, text=True, check=True, timeout=5,
    )  # fmt: skip
    return [p.rstrip("012").upper() for p in res.stdout.split() if p != "pau"]


# espeak-ng mnemonics of many languages -> the nearest ARPAbet phones, for aligning
# real speakers of other languages (Common Voice) with the English acoustic model.
# Mouth shapes are what matters: rounded front vowels go to rounded ones, etc.
_FOREIGN: dict[str, str] = {
    "a": "aa", "A": "aa", "&": "ae", "@": "ax", "3": "er", "V": "ah", "0": "aa", "e": "ey",
    "E": "eh", "i": "iy", "I": "ih", "o": "ow", "O": "ao", "u": "uw", "U": "uh", "y": "uw",
    "Y": "uh", "W": "er", "2": "uh", "9": "er", "aI": "ay", "aU": "aw", "OI": "oy",
    "eI": "ey", "oU": "ow", "&U": "aw", "au": "aw", "ai": "ay", "ei": "ey", "oi": "oy",
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "g": "g", "m": "m", "n": "n",
    "N": "ng", "n^": "n y", "J": "n y", "f": "f", "v": "v", "s": "s", "z": "z", "S": "sh",
    "Z": "zh", "T": "th", "D": "dh", "x": "hh", "X": "hh", "h": "hh", "C": "sh", "l": "l",
    "L": "l", "r": "r", "R": "r", "*": "r", "j": "y", "w": "w", "tS": "ch", "dZ": "jh",
    "ts": "t s", "dz": "d z", "B": "b", "G": "g", "c": "ch", "q": "k", "l^": "l",
}  # fmt: skip
_MARKS = "',%=:~;#-!"


def foreign_arpabet(mnemonic: str) -> list[str]:
    """ARPAbet for one espeak-ng mnemonic of any language; [] where none fits."""
    for candidate in (
        mnemonic,
        mnemonic.strip(_MARKS),
        mnemonic.strip(_MARKS).rstrip("0123456789"),
    ):
        if candidate in _FOREIGN:
            return _FOREIGN[candidate].split()
    return []


def espeak_pronunciations(words: list[str], voice: str) -> dict[str, list[str]]:
    """ARPAbet (upper case) per word, from espeak-ng's `voice` (one call, a word a line)."""
    lines = espeak_lines("\n".join(words), voice)
    if len(lines) != len(words):
        return {}
    out = {}
    for word, line in zip(words, lines, strict=True):
        phones = [a for m in line.replace(" ", "_").split("_") for a in foreign_arpabet(m)]
        if phones:
            out[word] = [p.upper() for p in phones]
    return out


class ForcedAligner:
    """One pocketsphinx decoder; not thread-safe (`AlignerPool` shares several)."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder, get_model_path

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
        if any(len(w) > MAX_WORD for w in words):
            return None  # no one says it; letter-to-sound rules take seconds on one
        try:
            known = [w in prons or self._decoder.lookup_word(w) is not None for w in words]
            keys = [self._ensure(w, prons.get(w)) for w in words]
        except (ValueError, subprocess.SubprocessError):  # unpronounceable, or t2p hung
            return None
        pcm = to_pcm16(audio).tobytes()
        d = self._decoder
        # The cepstral mean of the last utterance would seed this one's first pass,
        # so a result would depend on what the decoder aligned before: start afresh.
        d.reinit_feat()
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
        found = _collect(alignment, keys, words, len(audio) / 16000.0)
        return None if found is None else replace(found, known=sum(known) / len(known))


def _collect(
    entries: Any, keys: Sequence[str], words: Sequence[str], duration: float
) -> Alignment | None:
    """Flatten pocketsphinx's word -> phone tree into timed phones (frames of 10 ms)."""
    phones: list[str] = []
    ends: list[float] = []
    timed: list[tuple[str, float, float]] = []
    names = dict(zip(keys, words, strict=True))
    score = frames = 0
    for word in entries:
        score, frames = score + word.score, frames + word.duration
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
    return Alignment(phones=phones, ends=ends, words=timed, fit=score / max(frames, 1))


def _append(phones: list[str], ends: list[float], phone: str, end: float) -> None:
    if phone == "sil" and phones and phones[-1] == "sil":
        ends[-1] = end
        return
    phones.append(phone)
    ends.append(end)


@dataclass(frozen=True)
class ForcedPath:
    """A forced alignment as the whole-recording decoder takes it (text_utterance.py)."""

    visemes: npt.NDArray[np.int64]  # one per 10 ms frame
    fit: float  # Alignment.fit
    known: float = 1.0  # Alignment.known


def frame_visemes(audio: np.ndarray, alignment: Alignment) -> npt.NDArray[np.int64]:
    """One SAPI viseme per 10 ms frame of 16 kHz `audio` from its alignment (moved
    `SERVED_EARLIER_S` earlier), stop closures placed on the audio as the training
    labels place them (labels.py)."""
    visemes = [phone_viseme("arpabet", p) for p in alignment.phones]
    pcm = to_pcm16(audio)
    earlier = [max(e - SERVED_EARLIER_S, 0.0) for e in alignment.ends]
    ends = fix_closures(pcm, 16000, alignment.phones, earlier, visemes)
    return frame_labels(len(pcm), ends, visemes).astype(np.int64)


class AlignerPool:
    """Forced alignment for many threads: up to `size` decoders, made on first use
    (each holds the acoustic model, about 28 MB), lent one call at a time."""

    def __init__(self, size: int) -> None:
        self._free: queue.LifoQueue[ForcedAligner] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def path(self, audio: np.ndarray, text: str) -> ForcedPath | None:
        """`text` aligned to 16 kHz `audio`, as frame visemes; None where the text has
        no words or pocketsphinx finds no path through it."""
        words = words_of(text)
        if not words:
            return None
        with self._slots:
            aligner = self._take()
            try:
                alignment = aligner.align(audio, words)
            finally:
                self._free.put(aligner)
        if alignment is None:
            return None
        return ForcedPath(frame_visemes(audio, alignment), alignment.fit, alignment.known)

    def _take(self) -> ForcedAligner:
        try:
            return self._free.get_nowait()
        except queue.Empty:  # fewer than `size` made so far: the semaphore says so
            return ForcedAligner()
