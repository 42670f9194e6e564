"""OpenAI text-to-speech (the Speech API), streamed as raw PCM.

Request shape as the official SDK (openai 3.52, resources/audio/speech.py
`create`) sends it: POST {api}/v1/audio/speech, `Authorization: Bearer`,
`Accept: application/octet-stream`, JSON `model`, `input`, `voice`,
`response_format`, `speed` (0.25-4.0). `pcm` is s16le mono at 24 kHz.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from ..base import UrlSetting
from .base import Speech, TtsEngine

# The SDK's built-in voices (types/audio/speech_create_params.py).
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer",
    "verse", "marin", "cedar", "fable", "onyx", "nova",
)  # fmt: skip
DEFAULT_VOICE = "alloy"
MODEL = "gpt-4o-mini-tts"  # the SDK lists it as deprecated, shutting down 2027-01-06


class OpenAITts(TtsEngine):
    key = "openai"
    name = "OpenAI"
    sample_rate = 24_000
    urls = (UrlSetting("openai_api_url", "https://api.openai.com", ("http", "https"), "REST base"),)
    needs_api_key = True
    voices = OPENAI_VOICES

    def synthesize(
        self, sentence: str, speech: Speech, context: tuple[str, str]
    ) -> AsyncGenerator[bytes, None]:
        headers = {
            "Authorization": f"Bearer {speech.api_key or ''}",
            "Accept": "application/octet-stream",
        }
        body: dict[str, object] = {
            "model": MODEL,
            "input": sentence,
            "voice": speech.voice or DEFAULT_VOICE,
            "response_format": "pcm",
            "speed": speech.speed,
        }
        return self._post_stream(f"{self._urls['openai_api_url']}/v1/audio/speech", headers, body)
