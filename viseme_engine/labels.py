"""Frame labels from timed phones: one SAPI viseme per 10 ms frame at 16 kHz.

Frame i covers samples [160*i, 160*i + 160) and takes the viseme of the phone
active at its centre; time past the last phone is silence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from viseme_engine.phonemes import BILABIAL, SILENCE, STOPS

RATE = 16000
HOP = 160

# A stop's closure is silent (or a faint voice bar) whatever the synthesizer;
# anything this far below the utterance's loud frames counts as closure.
_CLOSURE_DB_BELOW_PEAK = 30.0
# Longer "closures" are pauses, which keep their silence label.
_MAX_CLOSURE_S = 0.15
_WIN_S = 0.005


def _window_db(audio: np.ndarray, rate: int) -> np.ndarray:
    win = max(1, int(rate * _WIN_S))
    n = len(audio) // win
    frames = audio[: n * win].astype(np.float64).reshape(n, win)
    return np.asarray(10.0 * np.log10(np.mean(frames**2, axis=1) + 1.0))


def _closure_levels(audio: np.ndarray, rate: int) -> tuple[np.ndarray, float] | None:
    """Window levels (dB) and the level under which a stretch counts as a closure."""
    if len(audio) == 0:
        return None
    db = _window_db(audio, rate)
    if len(db) == 0:
        return None
    return db, float(np.percentile(db, 95)) - _CLOSURE_DB_BELOW_PEAK


def move_closures(
    audio: np.ndarray,
    rate: int,
    phones: Sequence[str],
    ends: Sequence[float],
    visemes: Sequence[int],
) -> list[float]:
    """Move each stop's onset back over the silent closure that precedes its burst.

    espeak-ng (and some festival voices) count the closure in the phone before
    the stop, so "papa" would show an open mouth while the lips are shut. The
    closure is found in the audio: the quiet stretch just before the stop's
    start. A stop after silence keeps its start: the pause is labelled 0.
    """
    new_ends = list(ends)
    levels = _closure_levels(audio, rate)
    if levels is None:
        return new_ends
    db, quiet = levels
    win = _WIN_S
    for i in range(1, len(phones)):
        if phones[i] not in STOPS and visemes[i] != 21:
            continue
        if visemes[i - 1] == SILENCE:
            continue
        start = new_ends[i - 1]
        prev_start = new_ends[i - 2] if i >= 2 else 0.0
        k = int(start / win) - 1
        t = start
        while k >= 0 and k < len(db) and db[k] < quiet:
            t_next = k * win
            # keep at least 10 ms of the previous phone; cap the closure length
            if t_next < prev_start + 0.010 or start - t_next > _MAX_CLOSURE_S:
                break
            t = t_next
            k -= 1
        new_ends[i - 1] = t
    return new_ends


def end_bilabials_at_release(
    audio: np.ndarray,
    rate: int,
    phones: Sequence[str],
    ends: Sequence[float],
    visemes: Sequence[int],
) -> list[float]:
    """End p/b at their burst: the lips open there, the aspiration is open-mouthed.

    Every synthesizer counts the burst and aspiration (up to 60 ms in English
    "papa") in the stop, which would keep the mouth shut too long. Where the
    stop has a silent closure, it now ends one 10 ms frame after the closure;
    a voiced closure without silence keeps its end.
    """
    new_ends = list(ends)
    levels = _closure_levels(audio, rate)
    if levels is None:
        return new_ends
    db, quiet = levels
    for i in range(1, len(phones)):
        if phones[i] not in STOPS or visemes[i] != BILABIAL:
            continue
        lo, hi = int(new_ends[i - 1] / _WIN_S), min(int(new_ends[i] / _WIN_S), len(db))
        k = lo
        while k < hi and db[k] >= quiet:
            k += 1
        if k == hi:
            continue  # no silent closure
        while k < hi and db[k] < quiet:
            k += 1
        if k < hi:
            new_ends[i] = min(new_ends[i], k * _WIN_S + 0.010)
    return new_ends


def fix_closures(
    audio: np.ndarray,
    rate: int,
    phones: Sequence[str],
    ends: Sequence[float],
    visemes: Sequence[int],
) -> list[float]:
    """Both closure rules, on the audio at its own rate: stops get their silent
    closure, p/b end at their release."""
    ends = move_closures(audio, rate, phones, ends, visemes)
    return end_bilabials_at_release(audio, rate, phones, ends, visemes)


def example(
    pcm: np.ndarray, phones: Sequence[str], ends: Sequence[float], visemes: Sequence[int]
) -> dict[str, np.ndarray]:
    """One utterance as data sets store it (datagen.py's layout): 16 kHz int16 audio,
    a viseme per 10 ms frame, and the timed phones they came from."""
    return {
        "audio": pcm,
        "labels": frame_labels(len(pcm), ends, visemes),
        "phones": np.asarray(phones, dtype=str),
        "phone_ends": np.asarray(ends, dtype=np.float32),
        "phone_visemes": np.asarray(visemes, dtype=np.uint8),
    }


def frame_phones(n_frames: int, ends: Sequence[float] | np.ndarray) -> np.ndarray:
    """Index of the phone active at each 10 ms frame's centre; len(ends) past the last."""
    centres = (np.arange(n_frames) * HOP + HOP / 2) / RATE
    return np.searchsorted(np.asarray(ends, dtype=np.float64), centres, side="right")


def frame_labels(n_samples: int, ends: Sequence[float], visemes: Sequence[int]) -> np.ndarray:
    """Viseme per 10 ms frame of a 16 kHz signal of `n_samples` samples."""
    idx = frame_phones(-(-n_samples // HOP), ends)
    vis = np.append(np.asarray(visemes, dtype=np.uint8), np.uint8(SILENCE))
    return np.asarray(vis[np.minimum(idx, len(visemes))], dtype=np.uint8)
