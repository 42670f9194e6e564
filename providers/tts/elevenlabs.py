"""ElevenLabs text-to-speech, streamed as raw PCM.

Request shape as the official SDK (elevenlabs 2.78, text_to_speech/raw_client.py
`stream`) sends it: POST {api}/v1/text-to-speech/{voice_id}/stream with query
`output_format`, header `xi-api-key`, JSON `text`, `model_id`, `voice_settings`,
`previous_text`, `next_text`. `pcm_16000` is s16le mono at 16 kHz.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from urllib.parse import quote

from ..elevenlabs import ElevenLabs
from .base import Speech, TtsEngine

DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"  # the SDK's example voice ("George")
MODEL_ID = "eleven_multilingual_v2"  # speaks English and Indonesian
# ElevenLabs documents voice_settings.speed as 0.7-1.2 and refuses values outside it.
_SPEED_RANGE = (0.7, 1.2)


class ElevenLabsTts(TtsEngine):
    key = "elevenlabs"
    name = "ElevenLabs"
    sample_rate = 16_000
    urls = tuple(u for u in ElevenLabs.urls if u.name == "elevenlabs_api_url")
    needs_api_key = True
    voice_pattern = r"^[A-Za-z0-9]{1,64}$"

    def synthesize(
        self, sentence: str, speech: Speech, context: tuple[str, str]
    ) -> AsyncGenerator[bytes, None]:
        voice = quote(speech.voice or DEFAULT_VOICE, safe="")
        url = (
            f"{self._urls['elevenlabs_api_url']}/v1/text-to-speech/{voice}/stream"
            f"?output_format=pcm_{self.sample_rate}"
        )
        low, high = _SPEED_RANGE
        body: dict[str, object] = {
            "text": sentence,
            "model_id": MODEL_ID,
            "voice_settings": {"speed": min(high, max(low, speech.speed))},
        }
        previous, following = context
        if previous:
            body["previous_text"] = previous
        if following:
            body["next_text"] = following
        return self._post_stream(url, {"xi-api-key": speech.api_key or ""}, body)
