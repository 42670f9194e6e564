"""The per-frame loop of `TextAligner` (text_align.py), compiled by numba.

The forward pass is a recursion over frames, so it cannot be vectorised across
them; in numpy each frame took some twenty small array operations (about
20 us a frame, 0.3 ms per 150 ms relay message, the relay's largest cost with
transcripts on). Here it is plain loops over a banded transition matrix,
compiled once per process, about a second, by `warm` when the engine starts
(no on-disk cache: an installed package's directory is often read-only, and
numba refuses to load a function it cannot cache).

The arithmetic is `TextAligner`'s, step for step; docs/architecture.md
("Text-informed lip sync") says what each step means.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from .phonemes import BILABIAL

Floats = npt.NDArray[np.float64]
BAND = 8  # transitions reach at most 7 states on (the resync spread)


@njit(nogil=True)
def band(
    optional: npt.NDArray[np.bool_],
    free_reachable: bool,
    p_stay: float,
    p_skip: float,
    resync: float,
) -> Floats:
    """The transitions over `len(optional)` known states and the free state after
    them, as band[k, j]: the weight into state j from state j - k.

    From a state the alignment stays, advances one, or skips one (a dropped
    phone; skipping an optional pause costs no more than entering it), and a
    `resync` share of its mass spreads over it and the next 7. The free state
    keeps what reaches it, and is reached only where the window ends with the
    text (`free_reachable`). Rows are renormalised after each step."""
    hi = optional.shape[0]
    n = hi + 1
    p_next = 1.0 - p_stay - p_skip
    out = np.zeros((BAND, n))
    spread = resync / 8.0
    for j in range(n):
        out[0, j] = p_stay
        if j >= 1:
            out[1, j] = p_next
        if j >= 2:
            out[2, j] = p_skip + (p_next if optional[j - 1] else 0.0)
        if resync > 0.0:
            for k in range(min(BAND, j + 1)):
                out[k, j] += spread
    if not free_reachable:
        out[1:, n - 1] = 0.0
    out[0, n - 1] = 1.0
    return out


@njit(nogil=True)
def forward(
    alpha: Floats,
    trans: Floats,
    vis: npt.NDArray[np.int64],
    probs: Floats,
    agree: float,
    edge: int,
    floor: float,
    prior_floor: float,
    weight: float,
    closure_weight: float,
    agree_low: float,
    agree_high: float,
    agree_frames: float,
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    outside: float,
    free_follows: float,
) -> Any:  # (blended [frames, classes], alpha, agree, head [frames])
    """Frames of class probabilities in; blended probabilities, the last state
    posterior (states then the free state), the running agreement and, per
    frame, the known state holding most mass out. `edge`: how many last known
    states get no say (0 where the text is complete). `lo`, `hi`: per known
    state, the frames (of this block) of its timing window; outside it, its
    emission is multiplied by `outside` (text_timing.py). `free_follows`: where
    text is still arriving (`edge` > 0), the share of the free state's emission
    that is the audio's own likeliest class rather than no opinion. `weight`,
    `closure_weight`: the text prior's exponent at full confidence, for every
    viseme but the bilabial closure and for the closure."""
    n = alpha.shape[0]
    frames, classes = probs.shape
    span = max(agree_high - agree_low, 1e-9)
    out = np.empty((frames, classes))
    pred = np.empty(n)
    q = np.empty(classes)
    head = np.zeros(frames, np.int64)
    alpha = alpha.copy()
    for t in range(frames):
        p = probs[t]
        total = 0.0
        for j in range(n):
            acc = 0.0
            for k in range(min(BAND, j + 1)):
                acc += alpha[j - k] * trans[k, j]
            pred[j] = acc
            total += acc
        mass = 0.0
        heard = 0.0
        for j in range(n):
            pred[j] /= total
        for j in range(n - 1):
            mass += pred[j]
            heard += pred[j] * p[vis[j]]
        now = heard / mass if mass > 1e-9 else 0.0
        agree += (now - agree) / agree_frames
        total = 0.0
        for j in range(n - 1):
            alpha[j] = pred[j] * (p[vis[j]] + floor)
            if t < lo[j] or t > hi[j]:
                alpha[j] *= outside
            total += alpha[j]
        free = 1.0 / classes  # past the known text: no opinion...
        if edge > 0:  # ...unless more text is coming: then the audio may be in it
            surest = 0.0
            for c in range(classes):
                surest = max(surest, p[c])
            free += free_follows * (surest - free)
        alpha[n - 1] = pred[n - 1] * (free + floor)
        total += alpha[n - 1]
        q[:] = 0.0
        for j in range(n):
            alpha[j] /= total
        best = -1.0
        for j in range(n - 1):
            q[vis[j]] += alpha[j]
            if alpha[j] > best:
                best, head[t] = alpha[j], j
        known_post = 0.0
        for c in range(classes):
            known_post += q[c]
        conf = min(max((agree - agree_low) / span, 0.0), 1.0)
        trusted = known_post
        for j in range(max(n - 1 - edge, 0), n - 1):
            trusted -= alpha[j]
        lam = conf * max(trusted, 0.0)
        if known_post > 1e-9:
            for c in range(classes):
                q[c] /= known_post
        total = 0.0
        for c in range(classes):
            w = closure_weight if c == BILABIAL else weight
            out[t, c] = p[c] * (q[c] + prior_floor) ** (w * lam)
            total += out[t, c]
        for c in range(classes):
            out[t, c] /= total
    return out, alpha, agree, head


def warm() -> None:
    """Compile both functions for the argument types TextAligner passes."""
    trans = band(np.zeros(3, np.bool_), True, 0.82, 0.04, 1e-3)
    probs = np.full((2, 22), 1.0 / 22)
    wide = np.full(3, 2**40, np.int64)
    forward(np.full(4, 0.25), trans, np.zeros(4, np.int64), probs, 0.5, 0, 0.03, 0.05,
            1.0, 1.5, 0.25, 0.5, 20.0, -wide, wide, 0.25, 0.2)  # fmt: skip
