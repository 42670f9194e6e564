"""Gemini Live (BidiGenerateContent) over WebSocket."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import aiohttp

from viseme_engine.audio import AudioError, AudioFormat

from .base import Audio, Message, Provider, Target, Transcript

_PATH = re.compile(
    r"/+ws/google\.ai\.generativelanguage\.(v1alpha|v1beta|v1)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)$"
)


def parse_path(path: str) -> tuple[str, str] | None:
    """(api version, method) of a Gemini Live path, tolerating `//ws/`."""
    match = _PATH.fullmatch(path)
    return (match.group(1), match.group(2)) if match else None


class GeminiLive(Provider):
    name = "gemini"

    def __init__(self, config: dict[str, Any], settings: Any) -> None:
        super().__init__(config, settings)
        self._chunks = 0
        # Set when the client's setup did not ask for output transcription and
        # the gateway did: those events are then the gateway's, not the client's.
        self._strip_transcription = False

    async def target(self, http: aiohttp.ClientSession, client_path: str) -> Target:
        version = (parse_path(client_path) or ("v1beta", ""))[0]
        base = f"{self.settings.gemini_ws_url}/ws/google.ai.generativelanguage"
        if "ephemeral_token" in self.config:
            # Ephemeral tokens only work on the constrained v1alpha method.
            query = urlencode({"access_token": self.config["ephemeral_token"]})
            method, version = "BidiGenerateContentConstrained", "v1alpha"
        else:
            query = urlencode({"key": self.config["api_key"]})
            method = "BidiGenerateContent"
        return Target(f"{base}.{version}.GenerativeService.{method}?{query}")

    def rewrite_client(self, message: Message) -> Message | None:
        setup = message.get("setup")
        if not isinstance(setup, dict):
            return None
        setup = dict(setup)
        model = self.config.get("model")
        if model is not None:
            setup["model"] = model if model.startswith("models/") else f"models/{model}"
        if self.settings.text_informed and not _asks_transcription(setup):
            # The transcript pins the visemes: ask for it, and hide it from the client.
            key = "output_audio_transcription" if _snake_case(setup) else "outputAudioTranscription"
            setup[key] = {}
            self._strip_transcription = True
        if setup == message["setup"]:
            return None
        return {**message, "setup": setup}

    def completes(self, message: Message) -> bool:
        content = message.get("serverContent")
        return isinstance(content, dict) and bool(content.get("generationComplete"))

    def transcript(self, message: Message) -> Transcript | None:
        content = message.get("serverContent")
        if not isinstance(content, dict):
            return None
        text = (content.get("outputTranscription") or {}).get("text")
        if isinstance(text, str):
            return Transcript(text)
        if content.get("generationComplete"):
            return Transcript("", final=True)
        return None

    def strip(self, message: Message) -> Message | None:
        content = message.get("serverContent")
        if not self._strip_transcription or not isinstance(content, dict):
            return message
        if "outputTranscription" not in content:
            return message
        rest = {k: v for k, v in content.items() if k != "outputTranscription"}
        if not rest and set(message) == {"serverContent"}:
            return None  # a message of transcription only: the client never asked for it
        return {**message, "serverContent": rest}

    def gate_opens(self, message: Message) -> bool:
        return "setupComplete" in message

    def audio(self, message: Message) -> Audio | None:
        content = message.get("serverContent")
        if not isinstance(content, dict):
            return None
        parts = (content.get("modelTurn") or {}).get("parts") or []
        for part in parts:
            inline = part.get("inlineData") if isinstance(part, dict) else None
            if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                fmt = _mime_format(str(inline.get("mimeType", "")))
                if fmt is not None:
                    self._chunks += 1
                    return Audio(inline["data"], fmt, self._chunks)
        return None

    def resets(self, message: Message) -> bool:
        content = message.get("serverContent")
        if not isinstance(content, dict):
            return False
        return bool(content.get("interrupted") or content.get("turnComplete"))

    def inject(self, message: Message, visemes: Message) -> tuple[Message, Message | None]:
        # Beside serverContent, never a message of its own: google-genai's Python
        # receiver fails on a message whose only key it does not know.
        return {**message, "mascotVisemes": visemes}, None


def _asks_transcription(setup: Message) -> bool:
    return "outputAudioTranscription" in setup or "output_audio_transcription" in setup


def _snake_case(setup: Message) -> bool:
    """Python clients write setup fields in snake_case, JS clients in camelCase."""
    return any("_" in key for key in setup) and not any(key != key.lower() for key in setup)


def _mime_format(mime: str) -> AudioFormat | None:
    kind, _, params = mime.partition(";")
    if kind.strip().lower() not in ("audio/pcm", "audio/l16"):
        return None
    rate = 24000
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "rate" and value.strip().isdigit():
            rate = int(value)
    try:
        return AudioFormat("pcm_s16le", rate)
    except AudioError:
        return None
