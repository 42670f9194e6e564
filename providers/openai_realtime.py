"""OpenAI Realtime (GA, with the beta event names still accepted) over WebSocket.

Wire facts: docs/protocols.md, "OpenAI Realtime".
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from viseme_engine.audio import AudioFormat

from . import base
from .base import Event, Message, Reading

_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
_AUDIO_DONE = ("response.output_audio.done", "response.audio.done")
_TEXT_DELTAS = ("response.output_audio_transcript.delta", "response.audio_transcript.delta")
_TEXT_DONE = ("response.output_audio_transcript.done", "response.audio_transcript.done")
_SESSION = ("session.created", "session.updated")
_RESETS = (
    "input_audio_buffer.speech_started",
    "response.created",
    "response.done",
    "response.cancelled",
)
_PCM24 = AudioFormat("pcm_s16le", 24000)


class OpenAIConfig(base.ProviderConfig):
    ephemeral_token: base.Secret = Field(description="an ek_... Realtime client secret")
    model: base.Name = "gpt-realtime"
    voice: base.Name | SkipJsonSchema[None] = None


class _Delta(Event):
    delta: str


class _Format(Event):
    type: str
    rate: int = 24000


class _Output(Event):
    format: _Format | None = None


class _SessionAudio(Event):
    output: _Output | None = None


class _Session(Event):
    audio: _SessionAudio | None = None
    output_audio_format: str | None = None  # beta: "pcm16", "g711_ulaw", "g711_alaw"


class _SessionEvent(Event):
    session: _Session


class OpenAIRealtime(base.Provider[OpenAIConfig]):
    name = "openai"
    config_model = OpenAIConfig
    subprotocols: ClassVar[tuple[str, ...]] = ("realtime",)
    gated = False  # the SDKs take any event at any time
    # The signed URL's /v1/conversation?token=...; the Python SDK appends /realtime
    # (and ?model=); given websocket_base_url=<gateway>/v1 it sends the token as
    # its Bearer api_key to /v1/realtime.
    routes = (
        base.Route(
            "/v1/conversation", "Relay session (WebSocket)", query=("token",), schemes=("bearer",)
        ),
        base.Route(
            "/v1/conversation/realtime",
            "The same, as OpenAI's SDK builds it from a signed URL",
            query=("token",),
            schemes=("bearer",),
        ),
        base.Route(
            "/v1/realtime",
            "The same, token as OpenAI's SDK Bearer api_key",
            query=("token",),
            schemes=("bearer",),
        ),
    )
    urls = (
        base.UrlSetting(
            "openai_ws_url", "wss://api.openai.com/v1/realtime", ("ws", "wss"), "Realtime URL"
        ),
    )

    def __init__(self, config: OpenAIConfig, options: Any) -> None:
        super().__init__(config, options)
        self._format: AudioFormat | None = _PCM24
        self._chunks = 0

    async def target(self, http: aiohttp.ClientSession, client_path: str) -> base.Target:
        query = urlencode({"model": self.config.model})
        headers = {"Authorization": f"Bearer {self.config.ephemeral_token}"}
        return base.Target(f"{self.options.urls['openai_ws_url']}?{query}", headers)

    def opening_messages(self) -> list[Message]:
        if self.config.voice is None:
            return []
        session = {"type": "realtime", "audio": {"output": {"voice": self.config.voice}}}
        return [{"type": "session.update", "session": session}]

    def read(self, message: Message) -> Reading:
        kind = message.get("type")
        if kind in _AUDIO_DELTAS:
            if self._format is None:
                return base.NOTHING
            self._chunks += 1
            delta = _Delta.model_validate(message).delta
            return Reading(audio=base.Audio(delta, self._format, self._chunks))
        if kind in _TEXT_DELTAS:
            return Reading(transcript=base.Transcript(_Delta.model_validate(message).delta))
        if kind in _TEXT_DONE:
            return Reading(transcript=base.Transcript("", final=True))  # the deltas had the words
        if kind in _AUDIO_DONE:
            return Reading(completes=True)
        if kind in _SESSION:
            self._format = _session_format(
                _SessionEvent.model_validate(message).session, self._format
            )
        return Reading(resets=kind in _RESETS)

    def inject(self, message: Message, visemes: Message) -> base.Injection:
        return base.Injection(field="mascotVisemes")


def _session_format(session: _Session, current: AudioFormat | None) -> AudioFormat | None:
    """The output format a session announces; None when we cannot decode it."""
    fmt = session.audio.output.format if session.audio and session.audio.output else None
    if fmt is not None:
        if fmt.type == "audio/pcm":
            return AudioFormat("pcm_s16le", fmt.rate)
        if fmt.type == "audio/pcmu":
            return AudioFormat("mulaw", 8000)
        return None  # audio/pcma: no visemes rather than wrong ones
    beta = session.output_audio_format
    if beta == "pcm16":
        return _PCM24
    if beta == "g711_ulaw":
        return AudioFormat("mulaw", 8000)
    if beta is not None:
        return None
    return current
