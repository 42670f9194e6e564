"""Text-informed decoding: transcript to visemes, and the online aligner on known frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from viseme_engine import text_kernel
from viseme_engine.eval_text import corrupt, decode_streamed, label_onsets, word_times
from viseme_engine.text_align import TextAligner, expected_visemes, timed_visemes

M, N, AA, SIL = 21, 19, 2, 0


def test_transcript_to_visemes_per_word() -> None:
    words = expected_visemes("Bob may pay my mom.", "en")
    assert [w[0] for w in words] == [21, 21, 21, 21, 21]  # every word starts with closed lips
    assert words[4][-1] == 21  # ... and "mom" ends with them
    assert expected_visemes("", "en") == []
    # numbers are spoken: "25" is two words of visemes, not nothing
    assert len(expected_visemes("25", "en")) == 2
    assert [w[0] for w in expected_visemes("makan nasi", "id")] == [21, 19]


def stretches(rows: list[dict[int, float]], frames_each: int) -> np.ndarray:
    """Frames of class probabilities; each dict is one stretch, the rest share 0.02."""
    out = []
    for row in rows:
        p = np.full(22, 0.02)
        for k, v in row.items():
            p[k] = v
        out += [p / p.sum()] * frames_each
    return np.asarray(out, np.float32)


# The model cannot tell m from n here: 0.45 / 0.40 each time, n slightly ahead at the end.
AMBIGUOUS = stretches(
    [{SIL: 0.9}, {M: 0.45, N: 0.40}, {AA: 0.8}, {M: 0.40, N: 0.45}, {SIL: 0.9}], 8
)


def test_the_text_decides_what_the_audio_leaves_open() -> None:
    aligner = TextAligner("en")
    aligner.add_visemes([[M, AA, M]], final=True)  # "mom", as visemes: the whole text
    out = aligner.step(AMBIGUOUS).argmax(-1)
    assert AMBIGUOUS.argmax(-1)[24:32].tolist() == [N] * 8  # acoustic: n
    assert out[26:32].tolist() == [M] * 6  # the text: m (after the alignment settles)
    assert out[:8].tolist() == [SIL] * 8


def test_without_text_the_probabilities_pass_through() -> None:
    out = TextAligner("en").step(AMBIGUOUS)
    np.testing.assert_allclose(out, AMBIGUOUS, atol=1e-6)


def test_text_that_disagrees_with_the_audio_falls_back_to_acoustic() -> None:
    clear = stretches([{SIL: 0.9}, {AA: 0.9}, {N: 0.9}, {AA: 0.9}, {SIL: 0.9}] * 3, 8)
    aligner = TextAligner("en")
    aligner.add_visemes([[16, 13, 7, 18]] * 4)  # other words entirely
    out = aligner.step(clear).argmax(-1)
    # trusted at first, the text loses its say within 200 ms of disagreeing
    assert (out[20:] == clear.argmax(-1)[20:]).mean() >= 0.95


def test_words_wait_until_they_are_complete() -> None:
    aligner = TextAligner("en")
    assert aligner.take_words("Bob ma") == "Bob"
    assert aligner.take_words("y pay") == " may"
    assert aligner.take_words(" my", final=True) == " pay my"
    aligner.add_text("mom", final=True)
    assert aligner.states == 4  # an optional pause, then m aa m
    aligner.reset()
    assert aligner.states == 0


def test_late_text_catches_up_with_the_audio() -> None:
    # "mom" spoken from frame 8, its text only known from frame 24 (160 ms late)
    probs = AMBIGUOUS
    out = decode_streamed(probs, "en", [(0.08, "mom")], 0.16)
    assert out[28:32].tolist() == [M] * 4  # the final m, n to the ear, is shown as m


def test_corruption_and_word_times_are_deterministic() -> None:
    import random

    text = "one two three four five six seven eight nine ten"
    a, b = corrupt(text, random.Random(1)), corrupt(text, random.Random(1))  # noqa: S311
    assert a == b != text
    labels = np.array([0] * 10 + [1] * 100 + [0] * 10)
    times = word_times("aa bb", labels)
    assert [w for _, w in times] == ["aa", "bb"]
    assert times[0][0] == pytest.approx(0.10)
    assert times[1][0] == pytest.approx(0.10 + 1.0 * 3 / 5)


def test_a_token_onset_is_its_first_letter_and_its_first_spoken_word() -> None:
    text = "Bob 25 mom."
    words, onsets = timed_visemes(text, [10.0 * i for i in range(len(text))], "en")
    assert len(words) == 4  # Bob, twenty, five, mom
    assert onsets == [0.0, 4.0, None, 7.0]  # frames of 10 ms; "five" starts where nobody said
    assert timed_visemes(text, [math.nan] * len(text), "en")[1] == [None] * 4


def test_character_times_wait_with_their_unfinished_word() -> None:
    aligner = TextAligner("en")
    assert aligner.take_timed("Bob ma", char_ms=[0, 1, 2, 3, 4, 5]) == ("Bob", [0, 1, 2])
    done, times = aligner.take_timed("y", final=True)  # this piece untimed
    assert done == " may"
    assert times[:3] == [3, 4, 5]
    assert math.isnan(times[3])


def words_of_ma(count: int) -> np.ndarray:
    """`count` words "ma", 300 ms each: 100 ms pause, 100 ms m, 100 ms aa, heard clearly."""
    return stretches([{SIL: 5.0}, {M: 5.0}, {AA: 5.0}] * count, 10)


def test_the_drift_of_provider_timings_is_measured_and_followed() -> None:
    probs = words_of_ma(8)
    aligner = TextAligner("en")
    # the provider says each word starts 200 ms after it is heard (m at 100 ms into each)
    onsets = [30.0 * k + 10 + 20 for k in range(8)]  # frames
    aligner.add_visemes([[M, AA]] * 8, final=True, onsets=onsets)
    aligner.step(probs)
    drifts = aligner.timing.take_drifts()
    assert len(drifts) >= 6
    assert all(abs(d + 0.2) <= 0.03 for d in drifts[2:])  # heard 0.2 s before the timing
    assert abs(aligner.timing.offset + 20) <= 3  # the windows moved to where the words are
    assert aligner.timing.take_drifts() == []


def test_timings_place_a_boundary_the_audio_cannot() -> None:
    # Words "m" and "n" over 400 ms of a nasal that is m or n alike: the text says
    # which comes first, the provider's timing where the second starts.
    probs = stretches([{SIL: 5.0}] + [{M: 2.0, N: 2.0}] * 4, 10)
    untimed, timed = TextAligner("en"), TextAligner("en")
    untimed.add_visemes([[M], [N]], final=True)
    timed.add_visemes([[M], [N]], final=True, onsets=[10.0, 40.0])
    first_n = [int(np.argmax(a.step(probs).argmax(-1) == N)) for a in (untimed, timed)]
    assert first_n[0] < 30  # left to the transitions, the alignment runs ahead
    assert 32 <= first_n[1] <= 48  # within the tolerance (80 ms) of the provider's onset


def test_label_onsets_find_each_word_where_its_visemes_start() -> None:
    # "ma" at frame 5, then "na" at 20 whose n the labeller heard as m: matched anyway
    labels = np.array([SIL] * 5 + [M] * 5 + [AA] * 10 + [M] * 4 + [AA] * 6 + [SIL] * 5)
    assert label_onsets([[M, AA], [N, AA]], labels) == [5.0, 20.0]
    # a word with nothing in the labels to match gets no onset
    assert label_onsets([[M, AA], [N, AA], [16, 13]], labels[:20])[2] is None


def test_the_aligner_runs_what_warm_compiled_and_nothing_else() -> None:
    # A signature compiled on first use stalls the event loop for about a second.
    text_kernel.warm()
    compiled = (list(text_kernel.forward.signatures), list(text_kernel.band.signatures))
    untimed, timed = TextAligner("en"), TextAligner("en")
    untimed.add_visemes([[M, AA]] * 3)
    timed.add_visemes([[M, AA]] * 3, onsets=[0.0, 30.0, 60.0])
    for aligner in (untimed, timed):
        aligner.step(words_of_ma(3))
    assert (list(text_kernel.forward.signatures), list(text_kernel.band.signatures)) == compiled
