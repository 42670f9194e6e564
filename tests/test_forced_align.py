"""pocketsphinx's forced alignment as the whole-recording decoder's second path
(viseme_engine/forced_align.py, text_utterance.align_recording): the real decoder on
real synthesized speech, then the choice between the paths on known frames, then the
engine as POST /v1/visemes runs it."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from tests.speech import flite_pcm, pcm_to_float
from tests.test_text_align import stretches
from viseme_engine.align_process import AlignerDied, AlignerProcess
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import EngineConfig, LoadedModels, VisemeEngine
from viseme_engine.forced_align import AlignerPool, ForcedPath
from viseme_engine.phonemes import BILABIAL
from viseme_engine.smoothing import VisemeEvent
from viseme_engine.text_utterance import (
    FIT,
    KNOWN,
    PREFER,
    UtteranceConfig,
    align_recording,
    mean_agreement,
    refined,
    viterbi,
)

SIL, AA, N = 0, 2, 19


TEXT = "Bob may pay my mom. Maybe Bob will buy a map."


def runs(frames: np.ndarray) -> list[tuple[int, int, int]]:
    """(viseme, first frame, frames) of each run of one viseme."""
    edges = np.flatnonzero(np.diff(frames)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(frames)]])
    return [(int(frames[a]), int(a), int(b - a)) for a, b in zip(starts, ends, strict=True)]


@pytest.fixture(scope="module")
def pool() -> AlignerPool:
    return AlignerPool(2)


def test_the_alignment_closes_the_lips_on_every_bilabial(pool: AlignerPool) -> None:
    audio = pcm_to_float(flite_pcm(TEXT)[0])
    forced = pool.path(audio, TEXT)
    assert forced is not None
    path = forced.visemes
    assert len(path) == -(-len(audio) // 160)  # a viseme per 10 ms frame
    closures = [r for r in runs(path) if r[0] == BILABIAL]
    # "Bob may" runs b into m, as "mom. Maybe" and "Bob will buy"'s b and b do not:
    # Bob, (b)may, pay, my, mom, (M)aybe, ma(b)e, Bob, buy, map: 10 closures at least
    assert len(closures) >= 10
    assert path[-5:].tolist() == [SIL] * 5
    assert forced.fit >= FIT  # a recorded voice: pocketsphinx hears human speech


def test_an_alignment_does_not_depend_on_what_the_decoder_aligned_before() -> None:
    pool = AlignerPool(1)  # one decoder for all three
    first = pcm_to_float(flite_pcm(TEXT, "awb")[0])
    other = "The birch canoe slid on the smooth planks."
    before = pool.path(first, TEXT)
    assert pool.path(pcm_to_float(flite_pcm(other)[0]), other) is not None
    after = pool.path(first, TEXT)
    assert before is not None
    assert after is not None
    assert after.fit == before.fit
    np.testing.assert_array_equal(after.visemes, before.visemes)


def test_text_without_words_gives_no_path(pool: AlignerPool) -> None:
    audio = pcm_to_float(flite_pcm("Mom.")[0])
    assert pool.path(audio, " ... !") is None
    # 20,000 digits (a fuzzer's transcript): flite's t2p would take 30 s on it
    assert pool.path(audio, "0" * 20_000) is None


def test_words_cmudict_lacks_are_counted(pool: AlignerPool) -> None:
    text = "Saya makan nasi goreng di rumah."  # Indonesian: t2p guesses its words
    forced = pool.path(pcm_to_float(flite_pcm(text)[0]), text)
    assert forced is not None
    assert forced.known < KNOWN


def test_the_forced_path_is_taken_where_the_model_finds_it_nearly_as_likely() -> None:
    # "on": the model is unsure where o ends; the forced path ends it two frames later
    probs = stretches([{SIL: 0.9}, {AA: 0.9}, {AA: 0.5, N: 0.45}, {N: 0.9}, {SIL: 0.9}], 6)
    words = [[AA, N]]
    own = viterbi(probs, words, UtteranceConfig())
    forced = own.copy()
    forced[12:14] = AA
    assert mean_agreement(probs, forced) >= mean_agreement(probs, own) - PREFER
    out = align_recording(probs, words, "en", ForcedPath(forced, FIT - 10)).argmax(-1)
    assert out.tolist() == forced.tolist()
    assert align_recording(probs, words, "en").argmax(-1).tolist() == own.tolist()


def test_a_forced_path_that_fits_human_speech_is_taken_though_the_model_disagrees() -> None:
    probs = stretches([{SIL: 0.9}, {AA: 0.9}, {N: 0.9}, {AA: 0.9}, {SIL: 0.9}], 8)
    words = [[AA, N, AA]]
    own = viterbi(probs, words, UtteranceConfig())
    forced = own.copy()
    forced[10:16] = N  # n six frames early, over audio the model hears as a
    assert mean_agreement(probs, forced) < mean_agreement(probs, own) - PREFER
    taken = refined(probs, forced)  # its n a frame later, where the model hears it
    assert taken.tolist() == [*forced.tolist()[:10], AA, *forced.tolist()[11:]]
    # pocketsphinx hears no human voice, or guessed how most words sound: the model's
    for fit, known, expected in ((FIT, 1.0, taken), (FIT - 1, 1.0, own), (FIT, KNOWN - 0.1, own)):
        out = align_recording(probs, words, "en", ForcedPath(forced, fit, known)).argmax(-1)
        assert out.tolist() == expected.tolist()


def test_a_forced_path_the_model_does_not_hear_is_not_taken() -> None:
    probs = stretches([{SIL: 0.9}, {AA: 0.9}, {N: 0.9}, {AA: 0.9}, {SIL: 0.9}], 8)
    words = [[AA, N, AA]]
    own = align_recording(probs, words, "en")
    # shifted by a whole viseme: far less likely than the model's own path
    late = np.concatenate([np.full(8, SIL), viterbi(probs, words, UtteranceConfig())[:-8]])
    np.testing.assert_array_equal(align_recording(probs, words, "en", ForcedPath(late, -30)), own)
    # another transcript's alignment, however human it sounds: nothing of it is used
    wrong = ForcedPath(np.full(len(probs), 16), FIT + 5)
    np.testing.assert_array_equal(align_recording(probs, [], "en", wrong), probs)


async def visemes(engine: VisemeEngine, pcm: bytes, rate: int) -> list[VisemeEvent]:
    stream = await engine.open_utterance("default", AudioFormat("pcm_s16le", rate), pcm, TEXT)
    return await stream.feed(pcm) + await stream.flush()


def onsets(events: list[VisemeEvent]) -> set[int]:
    """Frames (10 ms) where a closure starts."""
    return {round(e.offset_ms / 10) for e in events if e.viseme_id == BILABIAL}


async def test_the_engine_places_closures_where_the_forced_alignment_does(
    loaded_models: LoadedModels, pool: AlignerPool
) -> None:
    pcm, rate = flite_pcm(TEXT, "awb")  # a recorded human voice: the forced path wins
    forced = pool.path(pcm_to_float(pcm), TEXT)
    assert forced is not None
    expected = {start for v, start, _ in runs(forced.visemes) if v == BILABIAL}
    got = {}
    for on in (True, False):
        engine = VisemeEngine(loaded_models, EngineConfig(forced_alignment=on))
        await engine.start()
        try:
            got[on] = onsets(await visemes(engine, pcm, rate))
        finally:
            await engine.stop()

    def hits(onsets: set[int]) -> int:
        return sum(any(abs(a - b) <= 1 for b in onsets) for a in expected)

    # the smoother and the stretches trusted to the model's own path move a few
    assert hits(got[True]) >= 0.8 * len(expected), (sorted(expected), sorted(got[True]))
    assert hits(got[True]) > hits(got[False])  # the model alone places them elsewhere


async def test_a_recording_cut_mid_sample_is_aligned_as_the_model_hears_it(
    engine: VisemeEngine,
) -> None:
    pcm, rate = flite_pcm(TEXT, "awb")
    stream = await engine.open_utterance(
        "default", AudioFormat("pcm_s16le", rate), pcm + b"\0", TEXT
    )
    cut = await stream.feed(pcm + b"\0") + await stream.flush()
    assert cut == await visemes(engine, pcm, rate)  # the odd byte is no sample, nor an error


async def test_the_child_aligns_as_in_process_and_is_replaced_when_it_dies(
    pool: AlignerPool,
) -> None:
    pcm, rate = flite_pcm(TEXT, "awb")
    assert rate == 16000  # flite's voices: the pool takes the child's 16 kHz as is
    here = pool.path(pcm_to_float(pcm), TEXT)
    child = AlignerProcess()
    try:
        first = await child.path(pcm, AudioFormat("pcm_s16le", rate), TEXT)
        assert first is not None
        assert here is not None
        np.testing.assert_array_equal(first.visemes, here.visemes)
        pid = child.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # killed (out of memory, say)
        again = None
        for _ in range(2):  # the first call may find the pipe broken: then it says so
            try:
                again = await child.path(pcm, AudioFormat("pcm_s16le", rate), TEXT)
                break
            except AlignerDied:
                continue
        assert again is not None
        assert child.pid != pid
        np.testing.assert_array_equal(again.visemes, first.visemes)
    finally:
        await child.aclose()
