"""Gemini Live (`google-genai` SDK): `LiveServerMessage` keeps known fields only,
so the gateway's `mascotVisemes` never reaches app code through it.

The SDK offers no public way to see a raw message, so this is the one shim:
the session's socket (`session._ws`, google-genai 3.6) is wrapped to read the
field from each raw frame before the SDK parses it; `receive(session)` pairs
every message with its visemes. The kit's tests fail if an SDK update changes
that seam.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from .events import Visemes, parse

FIELD = "mascotVisemes"


class _Recorder:
    """Stands in for the session's socket; keeps the visemes of the last frame."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.last: Visemes | None = None

    async def recv(self, *args: Any, **kwargs: Any) -> Any:
        frame = await self._ws.recv(*args, **kwargs)
        self.last = None
        try:
            message = json.loads(frame)
        except (TypeError, ValueError):
            return frame
        if isinstance(message, dict):
            self.last = parse(message.get(FIELD))
        return frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


def attach(session: Any) -> _Recorder:
    """Wrap a live session's socket (once); returns the recorder."""
    ws = session._ws  # the one seam the SDK leaves (module docstring)
    if not isinstance(ws, _Recorder):
        ws = session._ws = _Recorder(ws)
    return ws


async def receive(session: Any) -> AsyncIterator[tuple[Any, Visemes | None]]:
    """`session.receive()`, each message with the visemes of its frame (or None)."""
    recorder = attach(session)
    async for message in session.receive():
        visemes, recorder.last = recorder.last, None
        yield message, visemes
