"""Text-informed decoding of a whole utterance: forced alignment of its transcript.

`TextAligner` (text_align.py) filters: it may use only the audio heard so far,
because a live stream's later audio does not exist yet. `POST /v1/visemes` has
the whole recording and its transcript before it answers, so it can do what an
offline aligner does (Rhubarb with a dialog file, MFA): the best path through
the whole transcript given all the audio, by Viterbi over the same states
(an optional pause around each word, one state per viseme, stay, advance, or
skip a dropped phone). A boundary is then placed with the audio on both sides
of it, not only before it.

The path is trusted only where the audio agrees with it. Agreement at a frame is
the model's probability of the path's viseme over its probability of its own
best one. An utterance whose speech frames agree less than `gate` on average has
the wrong transcript (nothing of it is used: the audio decides alone); within
the rest, a stretch whose agreement, averaged over `window` frames of speech,
falls below `bound` (text that skips, adds or mis-spells words there) gets the
model's own probabilities, the audio alone (`align_recording`).

For English a second path competes: pocketsphinx's forced alignment of the
same transcript (forced_align.py), whose acoustic model was trained on far more
real speech than ours and places boundaries on human voices better (its own
pronunciations, cmudict's, also match how people speak better than espeak-ng's).
On robotic synthesizers it does worse than our model. The forced path is taken
when pocketsphinx hears speech of the kind it knows (its per-frame score at
least `FIT`) in words it knows (`KNOWN`), or when our model finds it nearly as
likely as its own best path (within `PREFER` of mean agreement). Its boundaries
then each move by at most a frame to where the model hears them (`refined`),
and it is trusted, stretch by stretch, with looser bounds (`FORCED`); its
untrusted stretches get the model's own alignment.

Measured on held-out real speakers: docs/architecture.md ("Text-informed lip
sync") and the model card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .eval import fit_length
from .forced_align import ForcedPath
from .phonemes import SILENCE
from .text_align import TextAligner

Probs = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
# The most states x frames one alignment keeps back-pointers for (a byte each): a
# minute of audio with about 3,000 visemes of text.
MAX_CELLS = 20_000_000


@dataclass(frozen=True)
class UtteranceConfig:
    p_stay: float = 0.82
    p_skip: float = 0.04  # skip one state: a phone the speaker dropped
    floor: float = 0.03  # emission floor: inserted or mispronounced phones
    gate: float = 0.7  # mean agreement below this: the transcript is not this audio's
    bound: float = 0.55  # a stretch's agreement below this: the audio alone there
    window: int = 21  # frames (10 ms) of a stretch
    keep: float = 0.1  # share of the model's own probabilities kept on the path


# A forced alignment's path (align_recording) is taken over the model's own when
# pocketsphinx hears human speech in the audio (Alignment.fit at least FIT) and
# knows most words (Alignment.known at least KNOWN), or when the model finds it
# nearly as likely as its own (mean agreement at most PREFER lower); it is then
# trusted with the FORCED bounds. docs/architecture.md ("A second path") says how
# they were chosen: real speech prefers the forced path, robotic synthesizers and
# the model's training voices the model's.
PREFER = 0.1
FIT = -18.0
KNOWN = 0.8
FORCED = UtteranceConfig(gate=0.4, bound=0.2)
# A taken forced path's boundaries each move by at most REACH frames to where the
# model hears them (`refined`), a frame inside the forced segment worth BONUS (log)
# over one outside: docs/architecture.md ("A second path") has the sweep.
REACH = 1
BONUS = 1.0


def states(words: Sequence[Sequence[int]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Visemes per state, and which states are optional pauses: one before, between
    and after the words."""
    vis, optional = [SILENCE], [True]
    for word in words:
        vis += [*word, SILENCE]
        optional += [False] * len(word) + [True]
    return np.asarray(vis, np.int64), np.asarray(optional, bool)


def viterbi(
    probs: Probs, words: Sequence[Sequence[int]], config: UtteranceConfig
) -> npt.NDArray[np.int64]:
    """The viseme of the best state path, per frame."""
    vis, optional = states(words)
    n = len(vis)
    stay, advance = np.log(config.p_stay), np.log(1.0 - config.p_stay - config.p_skip)
    # two states on: a dropped phone, or an optional pause passed by (as cheap as entering it)
    skip = np.where(optional[1:-1], advance, np.log(config.p_skip))
    score = np.full(n, -np.inf)
    score[:2] = np.log(probs[0, vis[:2]] + config.floor)
    back = np.zeros((len(probs), n), np.int8)
    moves = np.empty((3, n))
    for t in range(1, len(probs)):
        moves[0] = score + stay
        moves[1, 0], moves[1, 1:] = -np.inf, score[:-1] + advance
        moves[2, :2], moves[2, 2:] = -np.inf, score[:-2] + skip
        back[t] = moves.argmax(0)
        score = moves[back[t], np.arange(n)] + np.log(probs[t, vis] + config.floor)
    state = n - 1 if score[n - 1] >= score[n - 2] else n - 2  # the last pause is optional
    path = np.empty(len(probs), np.int64)
    for t in range(len(probs) - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    return vis[path]


def agreement(probs: Probs, path: Ints) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Per frame, the model's probability of the path's viseme over that of its own
    best one; and which frames are speech (to the model or to the path)."""
    agree = probs[np.arange(len(probs)), path] / np.maximum(probs.max(-1), 1e-9)
    return agree, (probs.argmax(-1) != SILENCE) | (path != SILENCE)


def mean_agreement(probs: Probs, path: Ints) -> float:
    agree, speech = agreement(probs, path)
    return float(agree[speech].mean()) if speech.any() else 0.0


def moved(path: Ints, frames: int) -> Ints:
    """`path` `frames` later (earlier if negative), its ends held."""
    if frames == 0 or len(path) <= abs(frames):
        return path
    if frames > 0:
        return np.concatenate([np.full(frames, path[0]), path[:-frames]])
    return np.concatenate([path[-frames:], np.full(-frames, path[-1])])


def nudged(probs: Probs, path: Ints) -> Ints:
    """A forced path moved by at most a frame, as the model hears its timing best.

    How late an aligner's boundaries sit differs by voice and labeller: on the
    validation sets, the model picked a frame later on most LJSpeech clips (it
    learned their MFA timing), none on most synthesized ones, a frame earlier
    on a third of heldout_sentences (docs/architecture.md, "A second path")."""
    return max((moved(path, k) for k in (0, -1, 1)), key=lambda p: mean_agreement(probs, p))


def refined(probs: Probs, path: Ints, floor: float = FORCED.floor) -> Ints:
    """`path` with each boundary between its runs moved by at most REACH frames to
    where the model's probabilities place it, its visemes and their order kept.

    A frame scores log(probability of its run's viseme + `floor`), BONUS more
    where `path` had that run. Each boundary has 2 REACH + 1 places, so the best
    placement is a chain of small choices, run by run (a Viterbi over boundary
    offsets): time and memory grow with the path's length, not with its length
    times its runs."""
    edges = np.flatnonzero(np.diff(path)) + 1
    if not len(edges):
        return path
    starts, ends = np.concatenate([[0], edges]), np.concatenate([edges, [len(path)]])
    vis, offsets = path[starts], np.arange(-REACH, REACH + 1)
    # per run: where it may start (its previous boundary's places) and their best scores
    before, best = np.zeros(1, np.int64), np.zeros(1)
    places, choices = [], []
    for j in range(len(vis)):
        if j == len(vis) - 1:
            after = np.array([len(path)])
        else:  # inside the path (places may repeat at its ends: the first is kept)
            after = np.clip(ends[j] + offsets, 1, len(path) - 1)
        lo, hi = int(before.min()), int(after.max())
        gain = np.log(probs[lo:hi, vis[j]].astype(np.float64) + floor)
        gain[starts[j] - lo : ends[j] - lo] += BONUS
        total = np.concatenate([[0.0], np.cumsum(gain)])
        score = best[:, None] + total[after - lo][None, :] - total[before - lo][:, None]
        score[after[None, :] <= before[:, None]] = -np.inf  # every run keeps a frame
        places.append(before)
        choices.append(score.argmax(0))
        before, best = after, score[choices[-1], np.arange(len(after))]
    bounds, at = [], 0
    for j in range(len(vis) - 1, 0, -1):  # back from the end: where each run started
        at = int(choices[j][at])
        bounds.append(int(places[j][at]))
    lengths = np.diff([0, *bounds[::-1], len(path)])
    return np.repeat(vis, lengths)


def pin(
    probs: Probs, path: Ints, config: UtteranceConfig, fallback: Callable[[], Probs] | None
) -> Probs | None:
    """`probs` pinned to a path of visemes where the audio agrees with it, what
    `fallback()` gives (default `probs`) in the stretches where it does not; None
    where the speech as a whole agrees less than `config.gate`."""
    agree, speech = agreement(probs, path)
    if not speech.any() or agree[speech].mean() < config.gate:
        return None
    near = _window_sum(np.where(speech, agree, 0.0), config.window)
    count = _window_sum(speech.astype(np.float64), config.window)
    trusted = (count == 0) | (near >= config.bound * np.maximum(count, 1.0))
    pinned = config.keep * probs
    pinned[np.arange(len(probs)), path] += 1.0 - config.keep
    if trusted.all():
        return pinned.astype(np.float32)
    other = probs if fallback is None else fallback()
    return np.where(trusted[:, None], pinned, other).astype(np.float32)


def align_utterance(
    probs: Probs,
    words: Sequence[Sequence[int]],
    config: UtteranceConfig | None = None,
    fallback: Callable[[], Probs] | None = None,
) -> Probs:
    """Per-frame probabilities [frames, classes] of the whole utterance in; the same,
    pinned to the transcript where the audio agrees with it, out: `probs` themselves
    for a transcript that is not this audio's, and in its other stretches what
    `fallback()` gives (called only if there are any; default: `probs`)."""
    config = config or UtteranceConfig()
    if not words or len(probs) < 2:
        return probs
    pinned = pin(probs, viterbi(probs, words, config), config, fallback)
    return probs if pinned is None else pinned


def _window_sum(values: npt.NDArray[np.float64], width: int) -> npt.NDArray[np.float64]:
    """Sums over `width` frames centred on each frame (fewer at the edges)."""
    full = np.convolve(values, np.ones(width), mode="full")
    start = (width - 1) // 2
    return full[start : start + len(values)]


def align_recording(
    probs: Probs, words: Sequence[Sequence[int]], lang: str, forced: ForcedPath | None = None
) -> Probs:
    """The whole-recording decoder. `words` (the transcript's visemes) are aligned
    by `align_utterance`, the audio alone deciding the stretches it does not trust
    (the online aligner there lost up to 0.5 points more to a transcript with 10 %
    of its words wrong: docs/architecture.md, "A whole recording"); a transcript too
    long for its audio (more states than frames, or a path table past MAX_CELLS)
    gets the online aligner's view (text_align.py, the whole transcript given up
    front).

    `forced`, an acoustic forced alignment of the same transcript (forced_align.py),
    is the other path: taken where it fits the audio as human speech (`FIT`, with
    `KNOWN` words) or its agreement with the model comes within PREFER of the
    model's own best path through the words; its boundaries `refined` by the model,
    then trusted by FORCED's looser bounds
    (its boundaries come from another acoustic model, so it agrees less with this
    one even where it is right), and the model's own alignment where it is not
    trusted."""

    def online() -> Probs:
        aligner = TextAligner(lang)
        aligner.add_visemes(words, final=True)
        return aligner.step(probs)

    config = UtteranceConfig()
    n = len(states(words)[0])
    fits = bool(words) and len(probs) >= 2 and n <= len(probs) and n * len(probs) <= MAX_CELLS
    own = viterbi(probs, words, config) if fits else None

    def model_view() -> Probs:
        if own is None:
            return online() if words else probs
        pinned = pin(probs, own, config, None)
        return probs if pinned is None else pinned

    if forced is not None and len(probs) >= 2:
        path = nudged(probs, fit_length(forced.visemes, len(probs)))
        if (
            own is None
            or (forced.fit >= FIT and forced.known >= KNOWN)
            or mean_agreement(probs, path) >= mean_agreement(probs, own) - PREFER
        ):
            pinned = pin(probs, refined(probs, path), FORCED, model_view)
            if pinned is not None:
                return pinned
    return model_view()


class UtteranceAligner:
    """The `step` of a stream (viseme_engine/stream.py) over an utterance already
    aligned: each block's frames get their aligned probabilities, in order."""

    def __init__(self, aligned: Probs) -> None:
        self._aligned = aligned
        self._at = 0

    def step(self, probs: Probs) -> Probs:
        part = self._aligned[self._at : self._at + len(probs)]
        self._at += len(probs)
        if len(part) < len(probs):  # more frames than the first pass had: theirs
            part = np.concatenate([part, probs[len(part) :]])
        return part
