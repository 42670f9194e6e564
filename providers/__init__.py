"""One adapter per conversational AI provider, sharing one relay core."""

from __future__ import annotations

from .base import Provider
from .elevenlabs import ElevenLabs
from .gemini_live import GeminiLive
from .openai_realtime import OpenAIRealtime

PROVIDERS: dict[str, type[Provider]] = {
    ElevenLabs.name: ElevenLabs,
    OpenAIRealtime.name: OpenAIRealtime,
    GeminiLive.name: GeminiLive,
}
