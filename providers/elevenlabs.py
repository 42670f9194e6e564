"""ElevenLabs Agents (Conversational AI) over WebSocket.

Wire facts: docs/protocols.md, "ElevenLabs Agents".
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlencode

import aiohttp
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from viseme_engine.audio import AudioFormat

from . import base
from .base import Event, Message, Reading

SampleRate = Literal[8000, 16000, 22050, 24000, 44100, 48000]  # the agents' output formats
_FORMATS = {
    f"pcm_{r}": AudioFormat("pcm_s16le", r) for r in (8000, 16000, 22050, 24000, 44100, 48000)
}
_FORMATS["ulaw_8000"] = AudioFormat("mulaw", 8000)
_VarName = Annotated[str, Field(min_length=1, max_length=128)]


class ElevenLabsConfig(base.ProviderConfig):
    agent_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
    # xi-api-key, for private agents
    api_key: base.Secret | SkipJsonSchema[None] = None
    sample_rate: SampleRate | SkipJsonSchema[None] = None
    dynamic_variables: dict[_VarName, str | int | float | bool] | SkipJsonSchema[None] = Field(
        default=None, max_length=100
    )


class _Alignment(Event):
    chars: list[str] | None = None
    char_start_times_ms: list[float] | None = None  # from the start of this chunk's audio


class _AudioEvent(Event):
    audio_base_64: str
    event_id: int = 0
    alignment: _Alignment | None = None


class _AudioMessage(Event):
    audio_event: _AudioEvent


class _Interruption(Event):
    event_id: int = 0


class _InterruptionMessage(Event):
    interruption_event: _Interruption = _Interruption()


class _Metadata(Event):
    agent_output_audio_format: str | None = None


class _MetadataMessage(Event):
    conversation_initiation_metadata_event: _Metadata = _Metadata()


class _Response(Event):
    agent_response: str


class _ResponseMessage(Event):
    agent_response_event: _Response


class ElevenLabs(base.Provider[ElevenLabsConfig]):
    name = "elevenlabs"
    config_model = ElevenLabsConfig
    subprotocols: ClassVar[tuple[str, ...]] = ("convai",)
    routes = (
        base.Route(
            "/v1/conversation", "Relay session (WebSocket)", query=("token",), schemes=("bearer",)
        ),
    )
    urls = (
        base.UrlSetting(
            "elevenlabs_ws_url", "wss://api.elevenlabs.io", ("ws", "wss"), "WebSocket base"
        ),
        base.UrlSetting(
            "elevenlabs_api_url", "https://api.elevenlabs.io", ("http", "https"), "REST base"
        ),
    )

    def __init__(self, config: ElevenLabsConfig, options: Any) -> None:
        super().__init__(config, options)
        self._format = AudioFormat("pcm_s16le", config.sample_rate or 16000)
        self._interrupted_at = 0  # audio with event_id <= this is dropped by the clients
        # Text: an audio event's `alignment` carries its own characters; where the
        # agent sends none, `agent_response` (the turn's whole text) stands in.
        # Which one applies is only known at the turn's first audio event.
        self._aligned = False  # some audio event of this session carried alignment
        self._turn_audio = False  # this turn has had audio
        self._held: str | None = None  # agent_response text awaiting that answer

    async def target(self, http: aiohttp.ClientSession, client_path: str) -> base.Target:
        agent = {"agent_id": self.config.agent_id}
        if self.config.api_key is None:
            root = self.options.urls["elevenlabs_ws_url"]
            return base.Target(f"{root}/v1/convai/conversation?{urlencode(agent)}")
        url = f"{self.options.urls['elevenlabs_api_url']}/v1/convai/conversation/get-signed-url"
        headers = {"xi-api-key": self.config.api_key}
        async with http.get(url, params=agent, headers=headers) as response:
            if response.status != 200:
                raise base.UpstreamRefused(
                    response.status, f"get-signed-url: HTTP {response.status}"
                )
            body = await response.json(content_type=None)
        signed = body.get("signed_url") if isinstance(body, dict) else None
        if not isinstance(signed, str):
            raise base.UpstreamRefused(502, "get-signed-url: no signed_url in the answer")
        return base.Target(signed)

    def rewrite_client(self, message: Message) -> Message | None:
        variables = self.config.dynamic_variables
        if not variables or message.get("type") != "conversation_initiation_client_data":
            return None
        # Variables fixed when the URL was signed win over the client's own.
        merged = {**message.get("dynamic_variables", {}), **variables}
        return {**message, "dynamic_variables": merged}

    def read(self, message: Message) -> Reading:
        kind = message.get("type")
        if kind == "audio":
            return self._audio(_AudioMessage.model_validate(message).audio_event)
        if kind == "agent_response":
            text = _ResponseMessage.model_validate(message).agent_response_event.agent_response
            if self._aligned:
                return base.NOTHING
            if not self._turn_audio:
                self._held = text
                return base.NOTHING
            return Reading(transcript=base.Transcript(text, final=True))
        if kind == "interruption":
            event = _InterruptionMessage.model_validate(message).interruption_event
            self._interrupted_at = max(self._interrupted_at, event.event_id)
            return self._turn_ends()
        if kind == "user_transcript":
            # No end-of-response event exists: a new user transcript starts the next turn.
            return self._turn_ends()
        if kind == "conversation_initiation_metadata":
            meta = _MetadataMessage.model_validate(message).conversation_initiation_metadata_event
            self._format = _FORMATS.get(str(meta.agent_output_audio_format), self._format)
            return Reading(opens_gate=True)
        return base.NOTHING

    def _turn_ends(self) -> Reading:
        self._turn_audio, self._held = False, None
        return Reading(resets=True)

    def _audio(self, event: _AudioEvent) -> Reading:
        self._turn_audio = True
        transcript = None
        alignment = event.alignment
        if alignment is not None and alignment.chars is not None:
            self._aligned, self._held = True, None
            transcript = base.Transcript("".join(alignment.chars), char_ms=_char_ms(alignment))
        elif self._held is not None:
            transcript, self._held = base.Transcript(self._held, final=True), None
        if event.event_id <= self._interrupted_at:
            # In flight when the user interrupted: the SDKs never play it.
            return Reading(transcript=transcript)
        audio = base.Audio(event.audio_base_64, self._format, event.event_id)
        return Reading(audio=audio, transcript=transcript)

    def inject(self, message: Message, visemes: Message) -> base.Injection:
        return base.Injection(extra={"type": "visemes", **visemes})


def _char_ms(alignment: _Alignment) -> tuple[float, ...] | None:
    """Each character's start, where the timings line up with single characters."""
    chars, starts = alignment.chars or [], alignment.char_start_times_ms
    if starts is None or len(starts) != len(chars) or any(len(c) != 1 for c in chars):
        return None
    return tuple(starts)
