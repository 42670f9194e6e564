"""A plugin's engine source that notes each call it gets, and a fresh source's
answers to the same calls: what the plugins' tests compare their published
visemes with (tests/test_livekit.py, tests/test_pipecat.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from viseme_engine.audio import AudioFormat
from viseme_engine.engine import VisemeEngine
from viseme_engine.live import Answer, LiveVisemes


class Recorder(LiveVisemes):
    """The plugin's engine source, noting each call it gets, in order."""

    def __init__(self, engine: VisemeEngine) -> None:
        super().__init__(engine)
        self.calls: list[tuple[str, Any]] = []

    async def feed(self, pcm: bytes, fmt: AudioFormat) -> Answer:
        self.calls.append(("feed", (pcm, fmt)))
        return await super().feed(pcm, fmt)

    async def add_text(
        self, text: str, final: bool = False, char_ms: Sequence[float] | None = None
    ) -> None:
        self.calls.append(("text", (text, final)))
        await super().add_text(text, final, char_ms)

    async def flush(self) -> Answer:
        self.calls.append(("flush", None))
        return await super().flush()


async def replay(calls: list[tuple[str, Any]], engine: VisemeEngine, text: bool) -> list[int]:
    """The visemes a fresh source answers to the same calls (without the text ones)."""
    source, out = LiveVisemes(engine), []
    for kind, args in calls:
        if kind == "feed":
            out += [v["visemeId"] for v in (await source.feed(*args))["visemes"]]
        elif kind == "flush":
            out += [v["visemeId"] for v in (await source.flush())["visemes"]]
        elif text:
            await source.add_text(*args)
    return out
