"""The anti-flicker filter: minimum duration and hysteresis, dated at true onsets."""

from __future__ import annotations

import numpy as np
import pytest

from viseme_engine.smoothing import Smoother, SmoothingConfig, VisemeEvent


def one_hot(ids: list[int], strength: float = 0.9) -> np.ndarray:
    probs = np.full((len(ids), 22), (1 - strength) / 21, np.float32)
    probs[np.arange(len(ids)), ids] = strength
    return probs


def test_short_blips_are_dropped_and_onsets_are_true() -> None:
    smoother = Smoother(SmoothingConfig(min_frames=3, margin=0.0))
    ids = [0] * 5 + [7] * 2 + [0] * 3 + [7] * 4 + [2] * 6
    events = smoother.push(one_hot(ids))
    assert events == [VisemeEvent(0, 0), VisemeEvent(7, 100), VisemeEvent(2, 140)]


def test_a_bilabial_closure_shows_from_its_first_frame() -> None:
    ids = [0] * 5 + [21] + [4] * 5
    events = Smoother(SmoothingConfig(min_frames=3, margin=0.0)).push(one_hot(ids))
    assert events == [VisemeEvent(0, 0), VisemeEvent(21, 50), VisemeEvent(4, 60)]
    no_exemption = SmoothingConfig(min_frames=3, margin=0.0, instant=frozenset())
    assert VisemeEvent(21, 50) not in Smoother(no_exemption).push(one_hot(ids))


def test_chunking_does_not_change_events() -> None:
    rng = np.random.default_rng(3)
    ids = [int(i) for i in np.repeat(rng.integers(0, 22, 40), rng.integers(1, 8, 40))]
    probs = one_hot(ids)
    whole = Smoother(SmoothingConfig()).push(probs)
    smoother = Smoother(SmoothingConfig())
    parts: list[VisemeEvent] = []
    for start in range(0, len(ids), 7):
        parts += smoother.push(probs[start : start + 7])
    assert parts == whole


def test_hysteresis_keeps_the_shown_viseme_on_near_ties() -> None:
    probs = one_hot([7] * 4)
    near = np.full((4, 22), 0.01, np.float32)
    near[:, 7], near[:, 8] = 0.42, 0.48  # 8 wins by less than the margin
    events = Smoother(SmoothingConfig(min_frames=2, margin=0.1)).push(np.concatenate([probs, near]))
    assert [e.viseme_id for e in events] == [7]
    events = Smoother(SmoothingConfig(min_frames=2, margin=0.0)).push(np.concatenate([probs, near]))
    assert [e.viseme_id for e in events] == [7, 8]


def test_flush_shows_a_short_only_candidate() -> None:
    smoother = Smoother(SmoothingConfig(min_frames=5))
    assert smoother.push(one_hot([7, 7])) == []
    assert smoother.flush() == [VisemeEvent(7, 0)]


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="min_frames"):
        SmoothingConfig(min_frames=0)
