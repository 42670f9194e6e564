"""Word timings from the provider, as a soft prior on the text alignment.

ElevenLabs sends, with each audio message, the characters it speaks and when
each starts. That says roughly where each word begins, but a provider's timing
is its own estimate of its own audio: it can drift from what is heard. So it is
used as a prior that the audio can overrule, never as the alignment itself:

- Each word with an onset gets a window of frames: its states are favoured
  from `tolerance` frames before its onset until `tolerance` frames after the
  next timed word's onset; the optional pause before it, until `tolerance`
  after its own onset. A state outside its window has its emission multiplied
  by `outside` each frame (soft: sure audio still wins within a few frames).
- The drift is measured: when the alignment enters a timed word, the frame it
  enters at minus the onset the provider gave is one measurement. A running
  estimate (`gain`) of that drift shifts the windows of the words after it, so
  timings that are consistently early or late are followed, not fought; a
  window pulls the alignment by at most `tolerance`, so an estimate that starts
  far off closes in over a few words. The measurements are kept for metrics.

The aligner (text_align.py) owns the states; this keeps, per state, the window
and, per timed word not yet entered, where it starts. Frames are 10 ms, counted
from the stream's first frame. See docs/architecture.md ("Provider timings").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
_OPEN = 2**40  # a window edge that is not there
_KEPT = 1000  # drift measurements kept until taken


@dataclass(frozen=True)
class TimingConfig:
    tolerance: int = 8  # frames either side of a timed word's window
    outside: float = 0.25  # emission factor per frame outside the window
    gain: float = 0.5  # how fast the drift estimate follows its measurements
    max_offset: int = 50  # frames: the estimate's bound (a timing 0.5 s off is no prior)


class TimingPrior:
    """Per-state windows from word onsets, and the measured drift. Sans-I/O."""

    def __init__(self, config: TimingConfig | None = None) -> None:
        self.config = config or TimingConfig()
        self.reset()

    def reset(self) -> None:
        self._lo: list[float] = []  # per state: earliest frame it is favoured (raw onsets)
        self._hi: list[float] = []  # per state: latest frame (math.inf: still open)
        self._open_from = 0  # states from here wait for the next timed word's onset
        self._last_onset = -math.inf  # the latest timed word's onset
        self._dropped = 0  # states trimmed from the front: global = local + dropped
        self._awaiting: list[tuple[int, float]] = []  # (global first state, onset)
        self.offset = 0.0  # estimated drift, frames: audio later than the timing (+)
        self.drifts: list[float] = []  # measurements not yet taken, seconds
        self.timed = False  # some word had an onset

    def add_word(self, states: int, onset: float | None) -> None:
        """Append a word: its optional pause, then `states - 1` states of its
        visemes. `onset`: the frame the provider says it starts at, if any."""
        tol = self.config.tolerance
        first = len(self._lo)
        if onset is None:
            lo = self._last_onset - tol
            self._lo += [lo] * states
            self._hi += [math.inf] * states
            return
        self.timed = True
        for j in range(self._open_from, first):
            self._hi[j] = onset + tol
        self._lo += [self._last_onset - tol] + [onset - tol] * (states - 1)
        self._hi += [onset + tol] + [math.inf] * (states - 1)
        self._open_from = first + 1
        self._last_onset = onset
        self._awaiting.append((self._dropped + first + 1, onset))

    def windows(self, states: int, t0: int) -> tuple[Ints, Ints]:
        """For the first `states` states, each window as frames of a block that
        starts at frame `t0`, the drift estimate applied."""
        if not self.timed:  # no window anywhere: shared arrays, which nothing writes
            return _wide(states)
        shift = self.offset - t0
        lo = np.clip(np.asarray(self._lo[:states]) + shift, -_OPEN, _OPEN)
        hi = np.clip(np.asarray(self._hi[:states]) + shift, -_OPEN, _OPEN)
        return np.floor(lo).astype(np.int64), np.ceil(hi).astype(np.int64)

    def observe(self, head: Ints, t0: int, trusted: bool) -> None:
        """`head`: per frame of a block starting at `t0`, the local index of the
        state holding most mass. Measures the drift at each timed word entered;
        `trusted`: the audio agrees with the text, so the entry means something."""
        c = self.config
        while self._awaiting and head.size:
            state, onset = self._awaiting[0]
            entered = np.flatnonzero(head >= state - self._dropped)
            if not entered.size:
                return
            self._awaiting.pop(0)
            if not trusted:
                continue
            drift = t0 + int(entered[0]) - onset
            if len(self.drifts) < _KEPT:  # a caller that never takes them: bounded
                self.drifts.append(drift / 100)
            self.offset += c.gain * (drift - self.offset)
            self.offset = min(max(self.offset, -c.max_offset), c.max_offset)

    def trim(self, cut: int) -> None:
        """The aligner forgot its first `cut` states."""
        del self._lo[:cut], self._hi[:cut]
        self._open_from = max(self._open_from - cut, 0)
        self._dropped += cut

    def take_drifts(self) -> list[float]:
        """Drift measurements (seconds) since the last call."""
        out, self.drifts = self.drifts, []
        return out


_WIDE: list[tuple[Ints, Ints]] = []


def _wide(states: int) -> tuple[Ints, Ints]:
    """Windows that are not there, for `states` states: views of one shared pair."""
    if not _WIDE or len(_WIDE[0][0]) < states:
        size = max(states, 512)
        # writable, though nothing writes them: the compiled loop takes the same
        # array type as for real windows (a read-only one would compile anew)
        _WIDE[:] = [(np.full(size, -_OPEN, np.int64), np.full(size, _OPEN, np.int64))]
    lo, hi = _WIDE[0]
    return lo[:states], hi[:states]
