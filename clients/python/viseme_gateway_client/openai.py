"""OpenAI Realtime (`openai` SDK): audio delta and done events keep the gateway's
`mascotVisemes` field (the SDK's event models allow extra fields)."""

from __future__ import annotations

from typing import Any

from .events import Visemes, parse

FIELD = "mascotVisemes"


def visemes(event: Any) -> Visemes | None:
    """The visemes an event from `connection.recv()` (or its dict) carries, if any."""
    if isinstance(event, dict):
        return parse(event.get(FIELD))
    extra = getattr(event, "model_extra", None) or {}
    return parse(extra.get(FIELD, getattr(event, FIELD, None)))
