"""How loaded this process is, and how much viseme work it still takes on.

The relay gives each audio message a deadline for its visemes
(VISEME_GATEWAY_VISEME_DEADLINE_MS); past it the audio goes on without them and
counts as shed, as does one the engine refused (overloaded). Two things follow:

- Saturation: while more than `threshold` of the last second's audio messages
  went without visemes (shed, or passed by, below), /readyz answers 503 and new
  relay sessions are refused with 503, so a load balancer sends them elsewhere.
  A second after it stops, both are back.
- Admission: shedding wastes the work already done, and the event loop that
  relays every message runs out of time first; so the share of sessions whose
  audio is analysed at all (`keep`) falls by 30 % every half second that sheds
  and triples every half second that does not. Each session draws a priority
  once (`admits`): the same sessions keep their visemes, the others pass their
  audio through untouched until there is room again, and the lag never grows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 1.0
THRESHOLD = 0.05  # of audio messages without visemes
MIN_MESSAGES = 20  # fewer in a second: too few to call it saturation
STEP_SECONDS = 0.5  # how often `keep` moves
STEP_MESSAGES = 10  # analysed messages a step needs to judge
DECREASE, GROWTH, MIN_KEEP = 0.7, 3.0, 0.05


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
        self._seen: deque[tuple[float, bool]] = deque()  # (when, without visemes)
        self._missed = 0
        self.keep = 1.0  # the share of sessions whose audio is analysed
        self._step_at = clock()
        self._step_total = self._step_shed = 0

    def audio(self, shed: bool) -> None:
        """One analysed audio message forwarded; `shed`: without its visemes, for lack of time."""
        self._record(shed)
        self._step_total += 1
        self._step_shed += shed
        self._adjust()

    def admits(self, priority: float) -> bool:
        """Whether a session of this priority (drawn once, in [0, 1)) gets its audio
        analysed now; one that does not is counted as passed by."""
        self._adjust()
        if priority < self.keep:
            return True
        self._record(True)
        return False

    @property
    def saturated(self) -> bool:
        self._forget(self._clock())
        self._adjust()
        total = len(self._seen)
        return total >= MIN_MESSAGES and self._missed > self._threshold * total

    def _record(self, missed: bool) -> None:
        self._forget(now := self._clock())
        self._seen.append((now, missed))
        self._missed += missed

    def _adjust(self) -> None:
        now = self._clock()
        elapsed = now - self._step_at
        if elapsed < STEP_SECONDS:
            return
        judged = self._step_total >= STEP_MESSAGES
        if judged and self._step_shed > self._threshold * self._step_total:
            self.keep = max(MIN_KEEP, self.keep * DECREASE)
        elif self._step_shed == 0:  # idle time counts: room comes back with time
            self.keep = min(1.0, self.keep * GROWTH ** (elapsed / STEP_SECONDS))
        self._step_at, self._step_total, self._step_shed = now, 0, 0

    def _forget(self, now: float) -> None:
        while self._seen and self._seen[0][0] < now - self._window:
            self._missed -= self._seen.popleft()[1]
