"""OpenAI Realtime (GA, with the beta event names still accepted) over WebSocket."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp

from viseme_engine.audio import AudioFormat

from .base import Audio, Message, Provider, Target, Transcript

_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
_TEXT_DELTAS = ("response.output_audio_transcript.delta", "response.audio_transcript.delta")
_TEXT_DONE = ("response.output_audio_transcript.done", "response.audio_transcript.done")
_RESETS = (
    "input_audio_buffer.speech_started",
    "response.created",
    "response.done",
    "response.cancelled",
)
_PCM24 = AudioFormat("pcm_s16le", 24000)


class OpenAIRealtime(Provider):
    name = "openai"
    subprotocols: ClassVar[tuple[str, ...]] = ("realtime",)

    def __init__(self, config: dict[str, Any], settings: Any) -> None:
        super().__init__(config, settings)
        self._format: AudioFormat | None = _PCM24
        self._chunks = 0

    async def target(self, http: aiohttp.ClientSession, client_path: str) -> Target:
        query = urlencode({"model": self.config.get("model", "gpt-realtime")})
        headers = {"Authorization": f"Bearer {self.config['ephemeral_token']}"}
        return Target(f"{self.settings.openai_ws_url}?{query}", headers)

    def opening_messages(self) -> list[Message]:
        if "voice" not in self.config:
            return []
        session = {"type": "realtime", "audio": {"output": {"voice": self.config["voice"]}}}
        return [{"type": "session.update", "session": session}]

    def gate_opens(self, message: Message) -> bool:
        return True  # the SDKs take any event at any time

    def observe(self, message: Message) -> None:
        if message.get("type") in ("session.created", "session.updated"):
            session = message.get("session")
            if isinstance(session, dict):
                self._format = _session_format(session, self._format)

    def audio(self, message: Message) -> Audio | None:
        if message.get("type") not in _AUDIO_DELTAS or self._format is None:
            return None
        delta = message.get("delta")
        if not isinstance(delta, str):
            return None
        self._chunks += 1
        return Audio(delta, self._format, self._chunks)

    def completes(self, message: Message) -> bool:
        return message.get("type") in ("response.output_audio.done", "response.audio.done")

    def transcript(self, message: Message) -> Transcript | None:
        kind = message.get("type")
        if kind in _TEXT_DELTAS and isinstance(message.get("delta"), str):
            return Transcript(message["delta"])
        if kind in _TEXT_DONE:
            return Transcript("", final=True)  # the deltas already carried the words
        return None

    def resets(self, message: Message) -> bool:
        return message.get("type") in _RESETS

    def inject(self, message: Message, visemes: Message) -> tuple[Message, Message | None]:
        return {**message, "mascotVisemes": visemes}, None


def _session_format(session: Message, current: AudioFormat | None) -> AudioFormat | None:
    """The output format a session announces; None when we cannot decode it."""
    output = (session.get("audio") or {}).get("output") or {}
    fmt = output.get("format")
    if isinstance(fmt, dict):
        kind, rate = fmt.get("type"), int(fmt.get("rate", 24000))
        if kind == "audio/pcm":
            return AudioFormat("pcm_s16le", rate)
        if kind == "audio/pcmu":
            return AudioFormat("mulaw", 8000)
        return None  # audio/pcma: no visemes rather than wrong ones
    beta = session.get("output_audio_format")
    if beta == "pcm16":
        return _PCM24
    if beta == "g711_ulaw":
        return AudioFormat("mulaw", 8000)
    if beta is not None:
        return None
    return current
