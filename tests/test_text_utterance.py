"""Whole-utterance alignment (viseme_engine/text_utterance.py): known frames, then real
speech through the engine as POST /v1/visemes runs it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.speech import espeak_pcm
from tests.test_text_align import stretches
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import VisemeEngine
from viseme_engine.smoothing import VisemeEvent
from viseme_engine.text_align import expected_visemes
from viseme_engine.text_utterance import (
    BONUS,
    FORCED,
    REACH,
    UtteranceConfig,
    align_utterance,
    moved,
    nudged,
    refined,
    viterbi,
)

M, N, AA, SIL = 21, 19, 2, 0


def test_the_path_follows_the_transcript_where_the_audio_is_unsure() -> None:
    # "mom": the model hears m and n alike, and n slightly ahead at the end
    probs = stretches(
        [{SIL: 0.9}, {M: 0.45, N: 0.40}, {AA: 0.8}, {M: 0.40, N: 0.45}, {SIL: 0.9}], 8
    )
    path = viterbi(probs, [[M, AA, M]], UtteranceConfig())
    assert path.tolist() == [SIL] * 8 + [M] * 8 + [AA] * 8 + [M] * 8 + [SIL] * 8
    out = align_utterance(probs, [[M, AA, M]]).argmax(-1)
    assert out.tolist() == path.tolist()  # from the first frame of each: the whole audio is known
    assert probs.argmax(-1)[24:32].tolist() == [N] * 8


def test_pauses_are_optional_and_a_dropped_phone_is_skipped() -> None:
    # two words with no pause between them, and the second word's middle viseme unsaid
    probs = stretches([{M: 0.9}, {AA: 0.9}, {N: 0.9}, {M: 0.9}], 6)
    path = viterbi(probs, [[M, AA], [N, 13, M]], UtteranceConfig())
    assert path.tolist() == [M] * 6 + [AA] * 6 + [N] * 6 + [M] * 6


def test_a_transcript_that_is_not_the_audio_is_not_used() -> None:
    clear = stretches([{SIL: 0.9}, {AA: 0.9}, {N: 0.9}, {AA: 0.9}, {SIL: 0.9}] * 3, 8)
    out = align_utterance(clear, [[16, 13, 7, 18]] * 4)
    np.testing.assert_array_equal(out, clear)
    np.testing.assert_array_equal(align_utterance(clear, []), clear)


async def visemes(
    engine: VisemeEngine, text: str, pcm: bytes, rate: int, step: int
) -> list[VisemeEvent]:
    fmt = AudioFormat("pcm_s16le", rate)
    stream = await engine.open_utterance("default", fmt, pcm, text)
    events = []
    for at in range(0, len(pcm), step):
        events += await stream.feed(pcm[at : at + step])
    return events + await stream.flush()


async def test_real_speech_shows_the_transcript_in_any_chunking(engine: VisemeEngine) -> None:
    text = "Bob may pay my mom."
    pcm, rate = espeak_pcm(text)
    whole = await visemes(engine, text, pcm, rate, len(pcm))
    chunked = await visemes(engine, text, pcm, rate, rate // 10 * 2)  # 100 ms, as SSE chunks go
    assert chunked == whole
    spoken = [e.viseme_id for e in whole if e.viseme_id != SIL]
    said = [v for w in expected_visemes(text, "en") for v in w]
    assert [v for i, v in enumerate(spoken) if i == 0 or spoken[i - 1] != v] == [
        v for i, v in enumerate(said) if i == 0 or said[i - 1] != v
    ]  # the transcript's visemes, in its order
    other = await visemes(engine, "Sally sells sea shells by the shore.", pcm, rate, len(pcm))
    plain = engine.open_stream("default", AudioFormat("pcm_s16le", rate))
    acoustic = await plain.feed(pcm) + await plain.flush()
    assert other == acoustic  # the wrong transcript is not used at all


def test_a_forced_path_a_frame_off_is_moved_to_where_the_model_hears_it() -> None:
    probs = stretches([{SIL: 5.0}, {M: 5.0}, {AA: 5.0}, {M: 5.0}, {SIL: 5.0}], 6)
    heard = probs.argmax(-1)
    for off in (-1, 0, 1):
        assert (nudged(probs, moved(heard, off)) == heard).all()
    assert (nudged(probs, moved(heard, 3)) == moved(heard, 2)).all()  # a frame at most
    assert moved(heard, 1)[0] == heard[0]
    assert len(moved(heard, -1)) == len(heard)


def test_forced_boundaries_each_move_a_frame_at_most_to_where_the_model_hears_them() -> None:
    probs = stretches([{SIL: 5.0}, {M: 5.0}, {AA: 5.0}, {M: 5.0}, {SIL: 5.0}], 6)
    heard = probs.argmax(-1)
    forced = heard.copy()
    forced[4:6] = M  # the m's onset two frames early: it moves one
    forced[18] = AA  # the second m's onset a frame late: it moves there
    out = refined(probs, forced)
    assert out[4] == SIL
    assert out[5] == M
    assert (out[6:] == heard[6:]).all()
    unsure = np.full_like(probs, 1.0 / probs.shape[1])
    assert (refined(unsure, forced) == forced).all()  # no opinion: the forced path stands
    short = heard.copy()
    short[12:17] = M  # an aa of one frame where the model hears five: it keeps its frame
    kept = refined(probs, short)
    assert [v for i, v in enumerate(kept) if i == 0 or kept[i - 1] != v] == [SIL, M, AA, M, SIL]
    assert (kept == AA).sum() == 2
    assert (refined(probs, np.zeros(10, np.int64)) == 0).all()


def test_refined_is_the_best_placement_of_every_boundary_within_reach() -> None:
    """Against every placement, on short paths (runs of a frame, ends clipped)."""
    rng = np.random.default_rng(0)

    def score(probs: np.ndarray, path: np.ndarray, new: np.ndarray) -> float:
        frames = np.log(probs[np.arange(len(new)), new].astype(np.float64) + FORCED.floor)
        return float(frames.sum() + BONUS * (new == path).sum())

    for _ in range(300):
        path = rng.integers(0, 3, int(rng.integers(1, 10))).astype(np.int64)
        probs = rng.dirichlet(np.full(22, 0.3), len(path)).astype(np.float32)
        edges = np.flatnonzero(np.diff(path)) + 1
        vis = path[np.concatenate([[0], edges])]
        best = -np.inf
        for offsets in itertools.product(range(-REACH, REACH + 1), repeat=len(edges)):
            bounds = [0, *(edges + np.asarray(offsets, np.int64)), len(path)]
            if all(b < c for b, c in itertools.pairwise(bounds)):
                best = max(best, score(probs, path, np.repeat(vis, np.diff(bounds))))
        out = refined(probs, path)
        out_edges = np.flatnonzero(np.diff(out)) + 1
        assert out[np.concatenate([[0], out_edges])].tolist() == vis.tolist()  # its visemes
        assert np.all(np.abs(out_edges - edges) <= REACH)
        assert score(probs, path, out) == pytest.approx(best)
