"""Lip-sync output formats: SAPI ids, Oculus names or ARKit blendshapes. Sans-I/O.

A client picks `"lipsync": {"format", "fps", "min_hold_ms", "smoothing",
"intensity"}` (all optional; `LipsyncConfig.from_json`). The stream's model
probabilities stay the one internal truth; each format is a view computed
from them at the edge (docs/lipsync.md):

- sapi: the Smoother's events as today, `{"visemeId": 21, "offset": 120}`;
- oculus: the same events named with the 15 Oculus visemes, neighbours that
  map to one name merged, `{"viseme": "PP", "offset": 120}`;
- arkit: blocks of 52-weight frames at `fps`,
  `{"fps": 60, "offset": 0, "frames": [[...52...], ...]}`: per 10 ms frame,
  probabilities @ POSES (so coarticulation blends poses instead of snapping
  between them), `intensity` on the opening shapes, a critically damped
  filter, then linear interpolation to the output frame times.

`min_hold_ms` and the hysteresis part of `smoothing` act on the discrete
formats through `LipsyncConfig.smoothing_config()`, which the caller gives the
stream's Smoother; the default config gives `SmoothingConfig()` itself.
All offsets are ms from the stream start, as `VisemeEvent.offset_ms`;
`rebase` moves them to a chunk's start.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Any, TypedDict, cast

import numpy as np
import numpy.typing as npt

from .phonemes import NUM_VISEMES, SAPI_TO_OCULUS_NAME
from .poses import ARKIT_INDEX, ARKIT_NAMES, OPENING, POSES_PERMILLE
from .smoothing import FRAME_MS, SmoothingConfig, VisemeEvent

__all__ = [
    "ARKIT_NAMES",
    "FORMATS",
    "BlendshapeBlock",
    "Entry",
    "LipsyncConfig",
    "LipsyncTrack",
    "OculusEntry",
    "SapiEntry",
    "blendshapes_message",
    "rebase",
]

FORMATS = ("sapi", "oculus", "arkit")
FPS_CHOICES = (30, 60)
MAX_HOLD_MS = 400
MAX_INTENSITY = 2.0
# smoothing 0.1 (the default) -> 20 ms per filter stage: a jaw opening takes
# ~70 ms from 10 % to 90 %, about a real jaw's, and a 60 ms lip closure still
# reaches 80 % of its pose.
TAU_MS_PER_SMOOTHING = 200.0
# SmoothingConfig needs margin < 1; VISEME_GATEWAY_VISEME_MARGIN stops at 0.99 too.
MAX_MARGIN = 0.99
_ROUND_TO = 0.001  # weights are sent with 3 decimals

# The blend and the filter run on integers held in float64: probabilities in
# units of 2**-16, pose weights in thousandths, filter taps summing to 2**20.
# Every partial sum stays below 2**46, so it is exact: neither BLAS's
# summation order (which may change with the number of rows, the machine or
# the memory alignment) nor the split of the rows into chunks can change a
# weight by one bit.
_PROB_UNIT = 2.0**16
_X_UNIT = _PROB_UNIT * 1000  # a target weight of 1.0
_TAP_UNIT = 2**20
_TAIL_LEFT_OFF = 1e-5  # filter response mass dropped by truncating it
_BLOCK = 32  # rows per filter product: bounds its matrix for long offline pushes

_ACTIVE = np.flatnonzero(POSES_PERMILLE.any(axis=0))  # shapes some pose moves
_PERMILLE_ACTIVE = np.ascontiguousarray(POSES_PERMILLE[:, _ACTIVE])
_OPENING_ACTIVE = np.isin(_ACTIVE, [ARKIT_INDEX[n] for n in OPENING])

Probs = npt.NDArray[np.float32]
_Rows = npt.NDArray[np.float64]


class SapiEntry(TypedDict):
    visemeId: int  # the wire name
    offset: int


class OculusEntry(TypedDict):
    viseme: str
    offset: int


class BlendshapeBlock(TypedDict):
    fps: int
    offset: int  # ms of frames[0] from the stream start, rounded; frame j is at
    # frames[0]'s exact time + j * 1000 / fps
    frames: list[list[float]]  # [frames][52], ARKIT_NAMES order


Entry = SapiEntry | OculusEntry | BlendshapeBlock


def _field(name: str) -> str:
    return f"lipsync.{name}"


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{_field(name)}: must be an integer {low}-{high}, got {value!r}")
    return value


def _check_number(name: str, value: object, low: float, high: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not low <= cast(float, value) <= high:  # NaN fails the comparison too
        raise ValueError(f"{_field(name)}: must be a number {low}-{high}, got {value!r}")
    return float(cast(float, value))


@dataclass(frozen=True)
class LipsyncConfig:
    format: str = "sapi"
    fps: int = 60  # arkit only
    min_hold_ms: int = 30  # sapi and oculus; p/b/m exempt (SmoothingConfig.instant)
    smoothing: float = 0.1  # hysteresis margin (sapi, oculus); filter time constant (arkit)
    intensity: float = 1.0  # arkit: scales the opening shapes

    def __post_init__(self) -> None:
        if not isinstance(self.format, str) or self.format not in FORMATS:
            choices = ", ".join(FORMATS)
            raise ValueError(f"{_field('format')}: must be one of {choices}, got {self.format!r}")
        if type(self.fps) is not int or self.fps not in FPS_CHOICES:  # bool is no fps
            raise ValueError(f"{_field('fps')}: must be 30 or 60, got {self.fps!r}")
        _check_int("min_hold_ms", self.min_hold_ms, 0, MAX_HOLD_MS)
        # stored as float so that 1 and 1.0 give equal configs
        object.__setattr__(self, "smoothing", _check_number("smoothing", self.smoothing, 0.0, 1.0))
        intensity = _check_number("intensity", self.intensity, 0.0, MAX_INTENSITY)
        object.__setattr__(self, "intensity", intensity)

    @classmethod
    def from_json(cls, value: object) -> LipsyncConfig:
        """The client's "lipsync" object (None: all defaults). ValueError names the field."""
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise ValueError(f"lipsync: must be an object, got {type(value).__name__}")
        names = {f.name for f in fields(cls)}
        for key in value:
            if key not in names:
                raise ValueError(f"{_field(str(key))}: unknown field")
        return cls(**cast(dict[str, Any], value))

    def smoothing_config(self) -> SmoothingConfig:
        """The stream's Smoother config; the default config gives SmoothingConfig()."""
        # floor, as gateway/app.py maps VISEME_GATEWAY_VISEME_MIN_MS: 30 ms -> 3 frames
        min_frames = max(1, self.min_hold_ms // FRAME_MS)
        return SmoothingConfig(min_frames=min_frames, margin=min(self.smoothing, MAX_MARGIN))

    @property
    def tau_ms(self) -> float:
        """Time constant of each of the arkit filter's two stages."""
        return TAU_MS_PER_SMOOTHING * self.smoothing

    @property
    def lead_ms(self) -> int:
        """The arkit filter's mean delay, which frames make up by sampling that
        much later: the mouth is halfway at a sound's onset (as SAPI events are
        dated at true onsets) and only the emission waits."""
        taps = _taps(self.tau_ms)
        return round(float(np.arange(len(taps)) @ taps) / _TAP_UNIT * FRAME_MS)

    def step_bound(self) -> float:
        """Largest change of any arkit weight between consecutive frames.

        A filtered row's change is a linear function of the targets (each in
        [0, 1]) with the taps' differences as coefficients, so its largest
        value is the sum of the positive differences: for the rise-then-fall
        critically damped response, its peak tap, reached by a 0 -> 1 step.
        Frames 1000 / fps ms apart interpolate at most 100 / fps rows of such
        changes; rounding to 3 decimals adds up to 0.001.
        """
        taps = np.concatenate([[0.0], _taps(self.tau_ms), [0.0]])
        per_row = float(np.maximum(np.diff(taps), 0).sum()) / _TAP_UNIT
        return min(1.0, per_row * 100 / self.fps) + _ROUND_TO


@functools.lru_cache(maxsize=64)
def _taps(tau_ms: float) -> npt.NDArray[np.float64]:
    """Integer taps summing to 2**20, newest input first, of two one-pole stages
    in series (critically damped: no overshoot, and motion starts with zero
    velocity after a step), per 10 ms: a^2 (k + 1) b^k, a = 1 - b."""
    if tau_ms == 0:
        return np.array([float(_TAP_UNIT)])
    b = math.exp(-FRAME_MS / tau_ms)
    a = 1.0 - b
    length = 1
    while b**length * (1 + length * a) >= _TAIL_LEFT_OFF:  # the response left beyond
        length += 1
    k = np.arange(length)
    response = a * a * (k + 1) * b**k
    taps: npt.NDArray[np.float64] = np.rint(response / response.sum() * _TAP_UNIT)
    taps[taps.argmax()] += _TAP_UNIT - taps.sum()  # DC gain exactly 1
    taps.flags.writeable = False
    return taps


@functools.lru_cache(maxsize=64)
def _toeplitz(tau_ms: float) -> _Rows:
    """[_BLOCK, taps - 1 + _BLOCK]: row r is the taps, oldest first, from column r,
    so that row r of `matrix @ inputs` filters inputs[taps - 1 + r]."""
    taps = _taps(tau_ms)
    zeros = np.zeros(_BLOCK - 1)
    padded = np.concatenate([zeros, taps[::-1], zeros])
    windows = np.lib.stride_tricks.sliding_window_view(padded, len(taps) - 1 + _BLOCK)
    matrix = np.ascontiguousarray(windows[::-1])
    matrix.flags.writeable = False
    return matrix


class LipsyncTrack:
    """One per stream: takes what the stream produces, returns wire entries.

    `push(probs, events)` with the stream's probabilities for the frames just
    completed ([frames, 22], 10 ms each, frame k covering k*10..k*10+10 ms) and
    the events its Smoother (built with `config.smoothing_config()`) made of
    them; `flush(events)` once at the end with the Smoother's last events.
    sapi and oculus use only the events, arkit only the probabilities.
    """

    def __init__(self, config: LipsyncConfig) -> None:
        self.config = config
        self._flushed = False
        self._oculus_shown: str | None = None
        self._rows = 0  # probability frames taken
        self._frames = 0  # arkit frames emitted
        self._tail: _Rows | None = None  # the last filtered row: the next frame may need it
        self._taps = _taps(config.tau_ms)
        # the filter's inputs so far, newest last: before the stream, the neutral face
        self._history = np.zeros((len(self._taps) - 1, len(_ACTIVE)))
        self._matrix = _toeplitz(config.tau_ms)
        self._intensity = np.where(_OPENING_ACTIVE, config.intensity, 1.0)
        # Frame i samples the filtered rows at t = 1000 i / fps + lead ms, i.e. at
        # row position p = (t - 5) / 10 (rows are centred at 10 k + 5 ms); in
        # integers p = (1000 i + shift) / den.
        self._den = 10 * config.fps
        self._shift = config.fps * (config.lead_ms - FRAME_MS // 2)

    @property
    def frames_emitted(self) -> int:
        """arkit frames returned so far; after flush, ceil(duration_ms * fps / 1000)."""
        return self._frames

    def push(self, probs: Probs, events: list[VisemeEvent]) -> list[Entry]:
        if self._flushed:
            raise RuntimeError("lipsync track already flushed")
        return self._entries(probs, events, final=False)

    def flush(self, events: list[VisemeEvent]) -> list[Entry]:
        """End of stream: arkit emits every frame whose time is before the end."""
        if self._flushed:
            raise RuntimeError("lipsync track already flushed")
        self._flushed = True
        return self._entries(np.zeros((0, NUM_VISEMES), np.float32), events, final=True)

    def _entries(self, probs: Probs, events: list[VisemeEvent], final: bool) -> list[Entry]:
        if probs.ndim != 2 or probs.shape[1] != NUM_VISEMES:
            raise ValueError(f"probs must be [frames, {NUM_VISEMES}], got {probs.shape}")
        if self.config.format == "sapi":
            return [SapiEntry(visemeId=e.viseme_id, offset=e.offset_ms) for e in events]
        if self.config.format == "oculus":
            return self._oculus(events)
        block = self._arkit(probs, final)
        return [] if block is None else [block]

    def _oculus(self, events: list[VisemeEvent]) -> list[Entry]:
        out: list[Entry] = []
        for event in events:
            name = SAPI_TO_OCULUS_NAME[event.viseme_id]
            if name != self._oculus_shown:  # e.g. SAPI 1 then 2: both "aa", one entry
                out.append(OculusEntry(viseme=name, offset=event.offset_ms))
                self._oculus_shown = name
        return out

    def _arkit(self, probs: Probs, final: bool) -> BlendshapeBlock | None:
        rows = self._filter(self._targets(probs))
        base = self._rows - 1 if self._tail is not None else 0  # row index of buf[0]
        buf = rows if self._tail is None else np.concatenate([self._tail[None], rows])
        self._rows += len(rows)
        n = self._rows
        if len(rows):
            self._tail = rows[-1]
        if n == 0:
            return None
        fps = self.config.fps
        total = -(-n * fps // 100)  # frames at i / fps s before the end, n * 10 ms
        # frame i is ready once row ceil(p_i) has arrived: 1000 i + shift <= den (n - 1)
        ready = (self._den * (n - 1) - self._shift) // 1000 + 1
        stop = total if final else min(max(ready, 0), total)
        if stop <= self._frames:
            return None
        first = self._frames
        num = np.maximum(1000 * np.arange(first, stop) + self._shift, 0)
        lo = num // self._den
        frac = (num - lo * self._den) / self._den
        hi = np.minimum(lo + 1, n - 1) - base  # past the end (flush): hold the last row
        lo = np.minimum(lo, n - 1) - base
        assert lo[0] >= 0, "a frame needs a row already dropped"
        start = buf[lo]
        weights = start + frac[:, None] * (buf[hi] - start)
        np.round(weights, 3, out=weights)
        weights += 0.0  # no -0.0 on the wire
        frames = np.zeros((len(num), len(ARKIT_NAMES)))
        frames[:, _ACTIVE] = weights
        self._frames = stop
        offset = (2000 * first + fps) // (2 * fps)  # round(1000 * first / fps)
        return BlendshapeBlock(fps=fps, offset=offset, frames=frames.tolist())

    def _targets(self, probs: Probs) -> _Rows:
        """Per row the pose blend, opening shapes scaled by intensity, in [0, 1]
        as integers 0 to _X_UNIT."""
        blend: _Rows = np.rint(probs.astype(np.float64) * _PROB_UNIT) @ _PERMILLE_ACTIVE
        if self.config.intensity != 1.0:
            blend = np.rint(blend * self._intensity)
        np.clip(blend, 0.0, _X_UNIT, out=blend)
        return blend

    def _filter(self, x: _Rows) -> _Rows:
        """The filtered weights of these rows: one exact matrix product."""
        if not len(x):
            return x
        past = len(self._history)
        joined = np.concatenate([self._history, x])
        self._history = joined[len(joined) - past :]
        out = np.empty_like(x)
        for start in range(0, len(x), _BLOCK):  # one product per 100 ms chunk
            rows = min(_BLOCK, len(x) - start)
            window = joined[start : start + past + rows]
            out[start : start + rows] = self._matrix[:rows, : past + rows] @ window
        out *= 1.0 / (_TAP_UNIT * _X_UNIT)
        return out


def rebase(entries: list[Entry], start_ms: float) -> list[Entry]:
    """Copies with offsets relative to a chunk starting start_ms into the stream
    (whole ms: a chunk may start between two)."""
    moved: list[Entry] = []
    for entry in entries:
        copy = entry.copy()
        copy["offset"] = round(entry["offset"] - start_ms)
        moved.append(copy)
    return moved


def blendshapes_message(block: BlendshapeBlock, start_ms: float = 0) -> dict[str, dict[str, Any]]:
    """The wire shape per chunk: {"blendshapes": {"fps", "offset", "names", "frames"}}."""
    return {
        "blendshapes": {
            "fps": block["fps"],
            "offset": round(block["offset"] - start_ms),
            "names": list(ARKIT_NAMES),
            "frames": block["frames"],
        }
    }
