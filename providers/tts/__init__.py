"""Text-to-speech engines for POST /v1/visemes-audio: one module per engine.

Each engine declares what the gateway needs to offer it (its `key`, voices,
whether it takes an API key, its upstream URL settings): the request schema
and settings are built from `ENGINES`.
"""

from __future__ import annotations

from .base import Speech, TtsEngine, TtsError, split_sentences, voice_error
from .elevenlabs import ElevenLabsTts
from .espeak import ESPEAK_VOICES, EspeakTts
from .openai import OPENAI_VOICES, OpenAITts

ENGINES: dict[str, type[TtsEngine]] = {e.key: e for e in (EspeakTts, ElevenLabsTts, OpenAITts)}

__all__ = [
    "ENGINES",
    "ESPEAK_VOICES",
    "OPENAI_VOICES",
    "Speech",
    "TtsEngine",
    "TtsError",
    "split_sentences",
    "voice_error",
]
