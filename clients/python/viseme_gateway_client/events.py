"""The one event shape: a chunk's visemes, in whichever lip-sync format was asked for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Visemes:
    """The visemes of one audio message.

    `entries`: `{"visemeId": 21, "offset": 120}` (sapi) or `{"viseme": "PP",
    "offset": 120}` (oculus), offsets in ms from the start of that audio
    message (negative: it began in earlier audio). `blendshapes`: for arkit,
    `{"fps", "offset", "names", "frames"}` instead. `final`: the response's
    last visemes, for audio message `audio_event_id`, which came before."""

    audio_event_id: Any
    entries: list[dict[str, Any]] = field(default_factory=list)
    blendshapes: dict[str, Any] | None = None
    audio_duration_ms: int | None = None
    final: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def parse(obj: Any) -> Visemes | None:
    """The visemes of an injected object (a `mascotVisemes` value or an ElevenLabs
    `visemes` message); None for anything else."""
    if not isinstance(obj, dict) or "audio_event_id" not in obj:
        return None
    entries = obj.get("visemes")
    shapes = obj.get("blendshapes")
    if not isinstance(entries, list) and not isinstance(shapes, dict):
        return None
    duration = obj.get("audio_duration")
    return Visemes(
        audio_event_id=obj["audio_event_id"],
        entries=[e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else [],
        blendshapes=shapes if isinstance(shapes, dict) else None,
        audio_duration_ms=duration if isinstance(duration, int) else None,
        final=obj.get("final") is True,
        raw=obj,
    )
