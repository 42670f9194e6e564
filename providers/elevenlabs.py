"""ElevenLabs Agents (Conversational AI) over WebSocket."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp

from viseme_engine.audio import AudioFormat

from .base import Audio, Message, Provider, Target, Transcript, UpstreamRefused

_FORMATS = {
    f"pcm_{r}": AudioFormat("pcm_s16le", r) for r in (8000, 16000, 22050, 24000, 44100, 48000)
}
_FORMATS["ulaw_8000"] = AudioFormat("mulaw", 8000)


class ElevenLabs(Provider):
    name = "elevenlabs"
    subprotocols: ClassVar[tuple[str, ...]] = ("convai",)

    def __init__(self, config: dict[str, Any], settings: Any) -> None:
        super().__init__(config, settings)
        rate = config.get("sample_rate", 16000)
        self._format = _FORMATS.get(f"pcm_{rate}", AudioFormat("pcm_s16le", 16000))
        self._interrupted_at = 0  # audio with event_id <= this is dropped by the clients
        # Text: an audio event's `alignment` carries its own characters; where the
        # agent sends none, `agent_response` (the turn's whole text) stands in.
        # Which one applies is only known at the turn's first audio event.
        self._aligned = False  # some audio event of this session carried alignment
        self._turn_audio = False  # this turn has had audio
        self._held: str | None = None  # agent_response text awaiting that answer

    async def target(self, http: aiohttp.ClientSession, client_path: str) -> Target:
        agent = {"agent_id": self.config["agent_id"]}
        if "api_key" not in self.config:
            base = self.settings.elevenlabs_ws_url
            return Target(f"{base}/v1/convai/conversation?{urlencode(agent)}")
        url = f"{self.settings.elevenlabs_api_url}/v1/convai/conversation/get-signed-url"
        headers = {"xi-api-key": self.config["api_key"]}
        async with http.get(url, params=agent, headers=headers) as response:
            if response.status != 200:
                raise UpstreamRefused(response.status, f"get-signed-url: HTTP {response.status}")
            body = await response.json(content_type=None)
        signed = body.get("signed_url") if isinstance(body, dict) else None
        if not isinstance(signed, str):
            raise UpstreamRefused(502, "get-signed-url: no signed_url in the answer")
        return Target(signed)

    def rewrite_client(self, message: Message) -> Message | None:
        variables = self.config.get("dynamic_variables")
        if not variables or message.get("type") != "conversation_initiation_client_data":
            return None
        # Variables fixed when the URL was signed win over the client's own.
        merged = {**message.get("dynamic_variables", {}), **variables}
        return {**message, "dynamic_variables": merged}

    def gate_opens(self, message: Message) -> bool:
        return message.get("type") == "conversation_initiation_metadata"

    def observe(self, message: Message) -> None:
        if self.resets(message):
            self._turn_audio, self._held = False, None
        if message.get("type") == "interruption":
            event = message.get("interruption_event") or {}
            with contextlib.suppress(TypeError, ValueError):
                self._interrupted_at = max(self._interrupted_at, int(event.get("event_id", 0)))
        elif message.get("type") == "conversation_initiation_metadata":
            event = message.get("conversation_initiation_metadata_event") or {}
            announced = _FORMATS.get(str(event.get("agent_output_audio_format")))
            if announced is not None:
                self._format = announced

    def audio(self, message: Message) -> Audio | None:
        if message.get("type") != "audio":
            return None
        event = message.get("audio_event")
        if not isinstance(event, dict) or not isinstance(event.get("audio_base_64"), str):
            return None
        try:
            chunk_id = int(event.get("event_id", 0))
        except (TypeError, ValueError):
            return None
        if chunk_id <= self._interrupted_at:
            return None  # in flight when the user interrupted: the SDKs never play it
        return Audio(event["audio_base_64"], self._format, chunk_id)

    def transcript(self, message: Message) -> Transcript | None:
        kind = message.get("type")
        if kind == "agent_response":
            event = message.get("agent_response_event") or {}
            text = event.get("agent_response") if isinstance(event, dict) else None
            if not isinstance(text, str) or self._aligned:
                return None
            if not self._turn_audio:
                self._held = text
                return None
            return Transcript(text, final=True)
        if kind != "audio":
            return None
        event = message.get("audio_event")
        alignment = event.get("alignment") if isinstance(event, dict) else None
        chars = alignment.get("chars") if isinstance(alignment, dict) else None
        self._turn_audio = True
        if isinstance(chars, list) and all(isinstance(c, str) for c in chars):
            self._aligned, self._held = True, None
            return Transcript("".join(chars))
        held, self._held = self._held, None
        return Transcript(held, final=True) if held is not None else None

    def resets(self, message: Message) -> bool:
        # No end-of-response event exists: a new user transcript starts the next turn.
        return message.get("type") in ("interruption", "user_transcript")

    def inject(self, message: Message, visemes: Message) -> tuple[Message, Message | None]:
        return message, {"type": "visemes", **visemes}
