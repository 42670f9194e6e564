"""Frame labels line up with the audio the real synthesizers produce."""

from __future__ import annotations

import numpy as np
import pytest

from viseme_engine.labels import end_bilabials_at_release, frame_labels, move_closures
from viseme_engine.training import synth_festival, synth_flite
from viseme_engine.training.datagen import to_example
from viseme_engine.training.synth_espeak import Espeak, Synthesis


@pytest.fixture(scope="module")
def espeak() -> Espeak:
    return Espeak()


def _frame_db(audio: np.ndarray, n: int) -> np.ndarray:
    pad = np.zeros(n * 160)
    pad[: len(audio)] = audio[: n * 160]
    return np.asarray(10 * np.log10(np.mean(pad.reshape(n, 160) ** 2, axis=1) + 1.0))


def _runs(labels: np.ndarray, value: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges where labels == value."""
    out: list[tuple[int, int]] = []
    start = None
    for i, lab in enumerate([*labels.tolist(), -1]):
        if lab == value and start is None:
            start = i
        elif lab != value and start is not None:
            out.append((start, i))
            start = None
    return out


def test_frame_labels_take_the_phone_at_the_frame_centre() -> None:
    # phone 1 ends at 52 ms: frame 5 (centre 55 ms) already belongs to phone 2
    labels = frame_labels(3201, [0.052, 0.1], [21, 2])
    assert len(labels) == 21  # ceil(3201 / 160)
    assert labels.tolist() == [21] * 5 + [2] * 5 + [0] * 11
    assert labels.dtype == np.uint8


def test_move_closures_extends_a_stop_back_over_silence() -> None:
    rate = 16000
    tone = (8000 * np.sin(np.arange(1600) * 0.2)).astype(np.int16)
    gap = np.zeros(960, np.int16)  # 60 ms of closure, counted in the vowel
    audio = np.concatenate([tone, gap, tone])
    ends = move_closures(audio, rate, ["a", "p", "a"], [0.16, 0.18, 0.28], [2, 21, 2])
    assert ends[0] == pytest.approx(0.10, abs=0.006)
    assert ends[1:] == [0.18, 0.28]


@pytest.mark.parametrize("voice", ["en-us", "id"])
def test_mama_papa_is_21_exactly_while_the_lips_are_closed(espeak: Espeak, voice: str) -> None:
    table = "espeak-en" if voice == "en-us" else "espeak-id"
    ex = to_example(espeak.synth("mama papa", voice), table)
    labels = ex["labels"]
    db = _frame_db(ex["audio"], len(labels))
    speech = np.flatnonzero(labels)
    first, last = int(speech[0]), int(speech[-1])
    # every silent stretch (>= 30 ms) inside the utterance is a p closure: lips shut.
    # (a lone quiet frame right after an unaspirated burst is open-mouthed)
    is_quiet = (db < db.max() - 30).astype(int)
    quiet = [i for s, e in _runs(is_quiet, 1) if e - s >= 3 for i in range(s, e)]
    quiet = [i for i in quiet if first <= i < last]
    assert len(quiet) >= 6
    assert all(labels[i] == 21 for i in quiet)
    # m, m, p, p: four separate closures, each followed by an open vowel
    runs = _runs(labels, 21)
    assert len(runs) == 4
    for _start, end in runs:
        assert labels[end] in (1, 2)
        assert db[end : end + 5].max() > db.max() - 10  # the vowel after is loud
    # closures last like real ones: 30-150 ms
    assert all(3 <= end - start <= 15 for start, end in runs)
    # p ends one frame after its silent closure: the aspiration is open-mouthed
    for start, end in runs:
        silent = [i for i in range(start, end) if db[i] < db.max() - 30]
        if silent:
            assert end - 1 - silent[-1] <= 2


def test_release_ends_p_after_its_closure() -> None:
    rate = 16000
    tone = (8000 * np.sin(np.arange(1600) * 0.2)).astype(np.int16)
    noise = (np.random.default_rng(0).standard_normal(800) * 600).astype(np.int16)
    # vowel 100 ms, closure 60 ms, burst + aspiration 50 ms, vowel 100 ms
    audio = np.concatenate([tone, np.zeros(960, np.int16), noise, tone])
    ends = end_bilabials_at_release(audio, rate, ["a", "p", "a"], [0.10, 0.21, 0.31], [2, 21, 2])
    assert ends[1] == pytest.approx(0.17, abs=0.006)  # closure end + one 10 ms frame
    # a voiced closure with no silence keeps its end
    voiced = np.concatenate([tone, tone[:960] // 8, tone])
    same = end_bilabials_at_release(voiced, rate, ["a", "b", "a"], [0.10, 0.16, 0.26], [2, 21, 2])
    assert same[1] == 0.16


def _check_pause(syn: Synthesis, table: str) -> None:
    ex = to_example(syn, table)
    labels = ex["labels"]
    db = _frame_db(ex["audio"], len(labels))
    speech = np.flatnonzero(labels)
    inner = [(s, e) for s, e in _runs(labels, 0) if s > speech[0] and e <= speech[-1]]
    assert inner, "the sentence break must be labelled as a pause"
    s, e = max(inner, key=lambda r: r[1] - r[0])
    assert e - s >= 5
    # the labelled pause really is quiet: 20 dB below the speech
    assert np.median(db[s:e]) < np.median(db[labels != 0]) - 20


def test_flite_pause_is_silence_and_0() -> None:
    _check_pause(synth_flite.synth("awb", text="Hello there. We will stop now."), "arpabet")


def test_festival_pause_is_silence_and_0() -> None:
    syn = synth_festival.synth_batch("kal_diphone", ["Hello there. We will stop now."], [1.0])[0]
    assert syn is not None
    _check_pause(syn, "arpabet")


def test_espeak_pause_is_silence_and_0(espeak: Espeak) -> None:
    _check_pause(espeak.synth("Hello there. We will stop now.", "en-us"), "espeak-en")


def test_flite_bilabials_in_indonesian_phone_strings() -> None:
    phones = synth_flite.indonesian_phone_string(synth_flite.espeak_id_words("mama papa"))
    assert phones == "pau m aa m aa p aa p aa pau"
    ex = to_example(synth_flite.synth("kal16", phones=phones), "arpabet")
    assert len(_runs(ex["labels"], 21)) == 4
