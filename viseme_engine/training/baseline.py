"""Baseline: pocketsphinx phone-loop recognition mapped to visemes.

This is how Rhubarb Lip Sync's phonetic recognizer works: CMU Sphinx in
`allphone` mode (a phone n-gram instead of words) with the en-us acoustic
model, then each recognised phone becomes a mouth shape. Its frames are
10 ms like ours. Needs the `pocketsphinx` wheel (bundles the en-us model).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from viseme_engine.audio import to_pcm16
from viseme_engine.phonemes import ARPABET, SILENCE

HOP = 160
# pocketsphinx frame i analyses samples [160 i, 160 i + 410): its centre
# (160 i + 205) lies in our frame i + 1, so its segments shift one frame later.
_FRAME_SHIFT = 1


class PhoneLoopBaseline:
    """A callable `Predictor`: float32 16 kHz audio -> one viseme per 10 ms frame."""

    def __init__(self) -> None:
        from pocketsphinx import Config, Decoder, get_model_path  # optional `train` extra

        model = get_model_path()
        config = Config(lm=None)  # allphone and a word LM are exclusive
        config["hmm"] = os.path.join(model, "en-us", "en-us")
        config["allphone"] = os.path.join(model, "en-us", "en-us-phone.lm.bin")
        config["allphone_ci"] = True
        # Rhubarb's settings: wide beams, a light LM weight so acoustics lead
        config["beam"] = 1e-20
        config["pbeam"] = 1e-20
        config["lw"] = 2.0
        config["loglevel"] = "FATAL"
        self._decoder: Any = Decoder(config)

    def phones(self, audio: np.ndarray) -> list[tuple[str, int, int]]:
        """(phone, first frame, last frame inclusive) as pocketsphinx segments them."""
        pcm = to_pcm16(audio)
        self._decoder.start_utt()
        self._decoder.process_raw(pcm.tobytes(), full_utt=True)
        self._decoder.end_utt()
        return [(s.word, int(s.start_frame), int(s.end_frame)) for s in self._decoder.seg()]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        n = -(-len(audio) // HOP)
        out = np.full(n, SILENCE, dtype=np.int64)
        for phone, start, end in self.phones(audio):
            # SIL and the noise fillers (+NSN+, +SPN+ ...) are silence
            s, e = start + _FRAME_SHIFT, end + 1 + _FRAME_SHIFT
            out[s:e] = ARPABET.get(phone.lower(), SILENCE)
        return out
