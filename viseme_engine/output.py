"""One stream's lip-sync output in the client's format, as JSON pieces. Sans-I/O.

The stream's events and probabilities go in (viseme_engine/stream.py); the
`lipsync` view of them comes out (viseme_engine/lipsync.py), with offsets
relative to where the piece's audio starts (docs/protocols.md, "Lip-sync
formats"):

- sapi, oculus: `{"visemes": [{"visemeId": 21, "offset": 120}, ...]}` or
  `{"visemes": [{"viseme": "PP", "offset": 120}, ...]}`;
- arkit: `{"blendshapes": {"fps": 60, "offset": 0, "names": [...52...],
  "frames": [[...52 weights...], ...]}}`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .lipsync import (
    BlendshapeBlock,
    Entry,
    LipsyncConfig,
    LipsyncTrack,
    blendshapes_message,
    rebase,
)
from .smoothing import VisemeEvent


class LipsyncOutput:
    def __init__(self, config: LipsyncConfig) -> None:
        self.config = config
        self._track = LipsyncTrack(config)

    def push(
        self,
        events: list[VisemeEvent],
        probs: npt.NDArray[np.float32],
        start_ms: float = 0.0,
        final: bool = False,
    ) -> dict[str, Any]:
        """The piece for this audio (its stream's last piece when `final`): offsets
        from `start_ms`, the piece's start in the stream."""
        entries = self._track.push(probs, events)
        if final:
            entries += self._track.flush([])
        return self._wire(entries, start_ms)

    def _wire(self, entries: list[Entry], start_ms: float) -> dict[str, Any]:
        if self.config.format != "arkit":
            return {"visemes": rebase(entries, start_ms)}
        # A piece may hold two blocks (a push and the flush after it): contiguous frames.
        frames = [frame for block in entries for frame in block["frames"]]  # type: ignore[typeddict-item]
        if entries:
            offset = entries[0]["offset"]
        else:  # no frame is due yet: where the next one will be
            offset = round(1000 * self._track.frames_emitted / self.config.fps)
        block = BlendshapeBlock(fps=self.config.fps, offset=offset, frames=frames)
        return blendshapes_message(block, start_ms)
