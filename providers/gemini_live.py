"""Gemini Live (BidiGenerateContent) over WebSocket.

Wire facts: docs/protocols.md, "Gemini Live".
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp
from pydantic import Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from viseme_engine.audio import AudioError, AudioFormat

from . import base
from .base import Event, Message, Reading

_VERSIONS = ("v1alpha", "v1beta", "v1")
_METHODS = ("BidiGenerateContent", "BidiGenerateContentConstrained")
_PATH = re.compile(
    r"/+ws/google\.ai\.generativelanguage\.(v1alpha|v1beta|v1)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)$"
)


def parse_path(path: str) -> tuple[str, str] | None:
    """(api version, method) of a Gemini Live path, tolerating `//ws/`."""
    match = _PATH.fullmatch(path)
    return (match.group(1), match.group(2)) if match else None


class GeminiConfig(base.ProviderConfig):
    model_config = base.exactly_one("ephemeral_token", "api_key")
    # auth_tokens/... from Google's authTokens.create, or a Gemini API key
    ephemeral_token: base.Secret | SkipJsonSchema[None] = None
    api_key: base.Secret | SkipJsonSchema[None] = None
    model: base.Name | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _one_credential(self) -> GeminiConfig:
        if (self.ephemeral_token is None) == (self.api_key is None):
            raise ValueError("exactly one of ephemeral_token and api_key is required")
        return self


class _Inline(Event):
    data: str | None = None
    mimeType: str = ""  # the wire's spelling


class _Part(Event):
    inlineData: _Inline | None = None


class _Turn(Event):
    parts: list[_Part] = Field(default_factory=list)


class _Text(Event):
    text: str | None = None


class _Content(Event):
    modelTurn: _Turn | None = None
    outputTranscription: _Text | None = None
    interrupted: bool = False
    turnComplete: bool = False
    generationComplete: bool = False


class _ServerMessage(Event):
    serverContent: _Content


class GeminiLive(base.Provider[GeminiConfig]):
    name = "gemini"
    config_model = GeminiConfig
    # One or more slashes before ws/: SDKs given a base URL ending in / send //ws/.
    routes = (
        base.Route(
            r"/{slashes:/*}ws/{method:[^/]+}",
            "Gemini Live relay; //ws/ accepted",
            openapi_path="/ws/{method}",
            headers=("x-goog-api-key",),
            query=("key", "access_token"),
            schemes=("token", "bearer"),
            path_values={
                "method": tuple(
                    f"google.ai.generativelanguage.{version}.GenerativeService.{method}"
                    for version in _VERSIONS
                    for method in _METHODS
                )
            },
        ),
    )
    urls = (
        base.UrlSetting(
            "gemini_ws_url", "wss://generativelanguage.googleapis.com", ("ws", "wss"), "Live base"
        ),
    )
    # The SDKs take the token as their API key and the gateway as their base URL.
    signed_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["api_key", "base_url", "expires_at"],
        "properties": {
            "api_key": {"type": "string"},
            "base_url": {"type": "string"},
            "expires_at": {"type": "integer"},
        },
    }

    def __init__(self, config: GeminiConfig, options: Any) -> None:
        super().__init__(config, options)
        self._chunks = 0
        # Set when the client's setup did not ask for output transcription and
        # the gateway did: those events are then the gateway's, not the client's.
        self._strip_transcription = False

    @classmethod
    def signed_response(cls, token: str, http_base: str, expires_at: int) -> dict[str, Any]:
        return {"api_key": token, "base_url": http_base, "expires_at": expires_at}

    @classmethod
    def accepts_path(cls, path: str) -> bool:
        return parse_path(path) is not None

    async def target(self, http: aiohttp.ClientSession, client_path: str) -> base.Target:
        version = (parse_path(client_path) or ("v1beta", ""))[0]
        root = f"{self.options.urls['gemini_ws_url']}/ws/google.ai.generativelanguage"
        if self.config.ephemeral_token is not None:
            # Ephemeral tokens only work on the constrained v1alpha method.
            query = urlencode({"access_token": self.config.ephemeral_token})
            method, version = "BidiGenerateContentConstrained", "v1alpha"
        else:
            query = urlencode({"key": self.config.api_key})
            method = "BidiGenerateContent"
        return base.Target(f"{root}.{version}.GenerativeService.{method}?{query}")

    def rewrite_client(self, message: Message) -> Message | None:
        setup = message.get("setup")
        if not isinstance(setup, dict):
            return None
        setup = dict(setup)
        model = self.config.model
        if model is not None:
            setup["model"] = model if model.startswith("models/") else f"models/{model}"
        if self.options.text_informed and not _asks_transcription(setup):
            # The transcript pins the visemes: ask for it, and hide it from the client.
            key = "output_audio_transcription" if _snake_case(setup) else "outputAudioTranscription"
            setup[key] = {}
            self._strip_transcription = True
        if setup == message["setup"]:
            return None
        return {**message, "setup": setup}

    def read(self, message: Message) -> Reading:
        if "setupComplete" in message:
            return Reading(opens_gate=True)
        if "serverContent" not in message:
            return base.NOTHING
        content = _ServerMessage.model_validate(message).serverContent
        transcript = None
        if content.outputTranscription and content.outputTranscription.text is not None:
            transcript = base.Transcript(content.outputTranscription.text)
        elif content.generationComplete:
            transcript = base.Transcript("", final=True)
        hidden, shown = self._strip(message)
        return Reading(
            audio=self._audio(content),
            resets=content.interrupted or content.turnComplete,
            completes=content.generationComplete,
            transcript=transcript,
            hidden=hidden,
            shown=shown,
        )

    def _strip(self, message: Message) -> tuple[bool, Message | None]:
        """(hidden, shown): the gateway's own transcription taken out of the message."""
        content = message["serverContent"]
        if not self._strip_transcription or "outputTranscription" not in content:
            return False, None
        rest = {k: v for k, v in content.items() if k != "outputTranscription"}
        if not rest and set(message) == {"serverContent"}:
            return True, None  # a message of transcription only: the client never asked
        return False, {**message, "serverContent": rest}

    def _audio(self, content: _Content) -> base.Audio | None:
        for part in content.modelTurn.parts if content.modelTurn else []:
            inline = part.inlineData
            if inline is not None and inline.data is not None:
                fmt = _mime_format(inline.mimeType)
                if fmt is not None:
                    self._chunks += 1
                    return base.Audio(inline.data, fmt, self._chunks)
        return None

    def inject(self, message: Message, visemes: Message) -> base.Injection:
        # Beside serverContent, never a message of its own: google-genai's Python
        # receiver fails on a message whose only key it does not know.
        return base.Injection(field="mascotVisemes")


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
