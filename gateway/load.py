"""How loaded this process is: the share of audio messages that went without
visemes for lack of time (shed) over the last second.

The relay gives each audio message a deadline for its visemes
(VISEME_GATEWAY_VISEME_DEADLINE_MS); past it the audio goes on without them and
counts as shed, as does one the engine refused (overloaded). While more than
`threshold` of the last second's audio messages were shed the process is
saturated: /readyz answers 503 and new relay sessions are refused with 503, so a
load balancer sends them elsewhere instead of starving everyone. A second after
the shedding stops, both are back.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 1.0
THRESHOLD = 0.05  # of audio messages shed
MIN_MESSAGES = 20  # fewer in a second: too few to call it saturation


class Load:
    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        threshold: float = THRESHOLD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window
        self._threshold = threshold
        self._clock = clock
        self._seen: deque[tuple[float, bool]] = deque()  # (when, shed)
        self._shed = 0

    def audio(self, shed: bool) -> None:
        """One audio message forwarded; `shed`: without its visemes, for lack of time."""
        self._forget(now := self._clock())
        self._seen.append((now, shed))
        self._shed += shed

    @property
    def saturated(self) -> bool:
        self._forget(self._clock())
        total = len(self._seen)
        return total >= MIN_MESSAGES and self._shed > self._threshold * total

    def _forget(self, now: float) -> None:
        while self._seen and self._seen[0][0] < now - self._window:
            self._shed -= self._seen.popleft()[1]
