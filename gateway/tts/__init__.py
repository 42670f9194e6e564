"""Text-to-speech engines for POST /v1/visemes-audio: one module per engine."""

from __future__ import annotations

from .base import Speech, TtsEngine, TtsError, split_sentences
from .elevenlabs import ElevenLabsTts
from .espeak import ESPEAK_VOICES, EspeakTts
from .openai import OPENAI_VOICES, OpenAITts

ENGINES: dict[str, type[TtsEngine]] = {
    "espeak": EspeakTts,
    "elevenlabs": ElevenLabsTts,
    "openai": OpenAITts,
}

__all__ = [
    "ENGINES",
    "ESPEAK_VOICES",
    "OPENAI_VOICES",
    "Speech",
    "TtsEngine",
    "TtsError",
    "split_sentences",
]
