"""Text-informed decoding: transcript to visemes, and the online aligner on known frames."""

from __future__ import annotations

import numpy as np
import pytest

from viseme_engine.eval_text import corrupt, decode_streamed, word_times
from viseme_engine.text_align import TextAligner, expected_visemes

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
