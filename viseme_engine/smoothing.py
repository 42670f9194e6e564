"""Frame decisions to viseme events, without flicker.

Two rules, both streaming (frame by frame, no look-back beyond their window):
- hysteresis: the shown viseme stays while its probability is within `margin`
  of the best one;
- minimum duration: a new viseme must win `min_frames` frames in a row before
  it is shown; its event is dated at the first of those frames, so timing stays
  true and only the emission waits. Visemes in `instant` (by default the
  bilabial closure, 21) are shown from their first frame: a closure after a
  pause can be a single 10 ms burst, and closed lips are what viewers miss most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME_MS = 10


@dataclass(frozen=True)
class VisemeEvent:
    viseme_id: int
    offset_ms: int  # from the start of the stream's audio

    def as_json(self) -> dict[str, int]:
        return {"visemeId": self.viseme_id, "offset": self.offset_ms}


@dataclass(frozen=True)
class SmoothingConfig:
    min_frames: int = 3
    margin: float = 0.1
    instant: frozenset[int] = frozenset({21})

    def __post_init__(self) -> None:
        if self.min_frames < 1 or not 0.0 <= self.margin < 1.0:
            raise ValueError("min_frames must be >= 1 and margin in [0, 1)")


class Smoother:
    def __init__(self, config: SmoothingConfig) -> None:
        self._config = config
        self._shown: int | None = None
        self._candidate: int | None = None
        self._run_start = 0
        self._run_length = 0
        self._frame = 0  # index of the next frame

    def push(self, probs: npt.NDArray[np.float32]) -> list[VisemeEvent]:
        """Feed per-frame class probabilities [frames, classes]; return new events."""
        events: list[VisemeEvent] = []
        for row in probs:
            best = int(row.argmax())
            shown = self._shown
            if shown is not None and row[shown] >= row[best] - self._config.margin:
                best = shown
            if best == shown:
                self._candidate, self._run_length = None, 0
            elif best == self._candidate:
                self._run_length += 1
            else:
                self._candidate, self._run_start, self._run_length = best, self._frame, 1
            needed = 1 if self._candidate in self._config.instant else self._config.min_frames
            if self._candidate is not None and self._run_length >= needed:
                events.append(self._show())
            self._frame += 1
        return events

    def flush(self) -> list[VisemeEvent]:
        """End of audio: a candidate shorter than min_frames is still shown if nothing is."""
        if self._candidate is not None and self._shown is None:
            return [self._show()]
        return []

    def _show(self) -> VisemeEvent:
        assert self._candidate is not None
        event = VisemeEvent(self._candidate, self._run_start * FRAME_MS)
        self._shown, self._candidate, self._run_length = self._candidate, None, 0
        return event
