"""ElevenLabs Agents (`elevenlabs` SDK): an AsyncConversation that hands over the
gateway's `visemes` messages, which the SDK's own handler ignores.

The SDK has no public hook for message types it does not know, so this is the
one shim: `_handle_message`, the method every received message goes through
(elevenlabs 2.78), is extended. The kit's tests fail if an SDK update stops
routing messages through it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from elevenlabs.conversational_ai.conversation import AsyncConversation

from .events import Visemes, parse

OnVisemes = Callable[[Visemes], Awaitable[None] | None]


class VisemeConversation(AsyncConversation):
    """`AsyncConversation(..., on_visemes=callback)`: the callback gets each chunk's
    visemes right after the SDK handled its audio event."""

    def __init__(self, *args: Any, on_visemes: OnVisemes, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_visemes = on_visemes

    async def _handle_message(self, message: Any, ws: Any) -> None:
        if isinstance(message, dict) and message.get("type") == "visemes":
            found = parse(message)
            if found is not None:
                result = self._on_visemes(found)
                if inspect.isawaitable(result):
                    await result
            return
        await super()._handle_message(message, ws)  # type: ignore[no-untyped-call]  # untyped SDK
