"""Assertions shared by the SDK tests: what a viseme object must look like."""

from __future__ import annotations

from typing import Any

from .base import Message

VISEME_FIELDS = {"visemes", "audio_event_id", "subchunk_id", "total_chunks", "audio_duration"}


def assert_visemes(visemes: Message, audio: bytes, rate: int, event_id: Any) -> None:
    """The documented object (docs/protocols.md, "The viseme object"), tied to this chunk."""
    assert visemes.keys() >= VISEME_FIELDS, visemes
    duration = len(audio) / 2 / rate * 1000
    assert visemes["audio_event_id"] == event_id
    assert (visemes["subchunk_id"], visemes["total_chunks"]) == (1, 1)
    assert abs(visemes["audio_duration"] - duration) <= 1
    for entry in visemes["visemes"]:
        assert set(entry) == {"visemeId", "offset"}, entry
        assert isinstance(entry["visemeId"], int)
        assert 0 <= entry["visemeId"] <= 21
        assert isinstance(entry["offset"], int)
        # negative: the viseme began in earlier audio (lookahead plus anti-flicker
        # minimum: 70 ms, more when chunks are shorter than that)
        assert -200 <= entry["offset"] <= duration + 1


def lips_close(all_visemes: list[Message]) -> bool:
    """Whether viseme 21 (p b m) shows up at all in "Bob may pay my mom"."""
    return any(e["visemeId"] == 21 for v in all_visemes for e in v["visemes"])
