"""Request bodies as pydantic models: one source for validation and the OpenAPI schemas."""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from viseme_engine.audio import MAX_RATE, MIN_RATE

from .errors import BadRequest
from .tts import ESPEAK_VOICES, OPENAI_VOICES

VisemeModel = Literal["default", "indonesian"]
SampleRate = Literal[8000, 16000, 22050, 24000, 44100, 48000]  # ElevenLabs' output formats


# /v1/visemes resamples any rate in viseme_engine.audio's range
AnyRate = Annotated[int, Field(ge=MIN_RATE, le=MAX_RATE, strict=True)]
# Provider secrets are printable ASCII: a control character would only fail at connect.
_Secret = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[!-~]+$")]
_Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._/-]+$")]
_VarName = Annotated[str, Field(min_length=1, max_length=128)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: object) -> object:
        # Optional fields may be left out, not sent as null: one way to say "unset".
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None:
                    raise ValueError(f"{name} must not be null (leave it out instead)")
        return data


class ElevenLabsConfig(Strict):
    agent_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
    # xi-api-key, for private agents
    api_key: _Secret | SkipJsonSchema[None] = None
    sample_rate: SampleRate | SkipJsonSchema[None] = None
    dynamic_variables: dict[_VarName, str | int | float | bool] | SkipJsonSchema[None] = Field(
        None, max_length=100
    )
    viseme_model: VisemeModel = "default"


class OpenAIConfig(Strict):
    ephemeral_token: _Secret = Field(description="an ek_... Realtime client secret")
    model: _Name = "gpt-realtime"
    voice: _Name | SkipJsonSchema[None] = None
    viseme_model: VisemeModel = "default"


def _exactly_one(*names: str) -> ConfigDict:
    """The schema half of an exactly-one-of rule enforced by a model validator."""
    extra: dict[str, JsonValue] = {"oneOf": [{"required": [name]} for name in names]}
    return ConfigDict(extra="forbid", strict=True, frozen=True, json_schema_extra=extra)


class GeminiConfig(Strict):
    model_config = _exactly_one("ephemeral_token", "api_key")
    # auth_tokens/... from Google's authTokens.create, or a Gemini API key
    ephemeral_token: _Secret | SkipJsonSchema[None] = None
    api_key: _Secret | SkipJsonSchema[None] = None
    model: _Name | SkipJsonSchema[None] = None
    viseme_model: VisemeModel = "default"

    @model_validator(mode="after")
    def _one_credential(self) -> GeminiConfig:
        if (self.ephemeral_token is None) == (self.api_key is None):
            raise ValueError("exactly one of ephemeral_token and api_key is required")
        return self


class ElevenLabsSpec(Strict):
    provider: Literal["elevenlabs"]
    provider_config: ElevenLabsConfig


class OpenAISpec(Strict):
    provider: Literal["openai"]
    provider_config: OpenAIConfig


class GeminiSpec(Strict):
    provider: Literal["gemini"]
    provider_config: GeminiConfig


class SignedUrlRequest(Strict):
    config: Annotated[ElevenLabsSpec | OpenAISpec | GeminiSpec, Field(discriminator="provider")]


# Standard base64 of at least 3 bytes (one 16-bit sample; a trailing odd byte is ignored).
_BASE64 = r"^(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_Token = Annotated[str, Field(min_length=1, max_length=16384)]


class RevokeRequest(Strict):
    model_config = _exactly_one("token", "jti", "all")
    token: _Token | SkipJsonSchema[None] = None
    jti: Annotated[str, Field(min_length=1, max_length=128)] | SkipJsonSchema[None] = None
    all: Literal[True] | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _one_target(self) -> RevokeRequest:
        given = [self.token is not None, self.jti is not None, self.all is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of token, jti or all")
        return self


class IntrospectRequest(Strict):
    token: _Token


class VisemesRequest(Strict):
    # base64 of a WAV file (16-bit PCM or 8 kHz mu-law, mono) or raw s16le mono PCM
    audio: Annotated[str, Field(min_length=4, pattern=_BASE64)]
    sample_rate: AnyRate = Field(
        16000, description="raw PCM only, 8000-48000 Hz; a WAV header wins"
    )
    model: VisemeModel = "default"

    @field_validator("sample_rate", mode="before")
    @classmethod
    def _integral(cls, value: object) -> object:
        """JSON Schema counts 16000.0 as an integer: so do we (never "16000" or 1.5)."""
        return int(value) if isinstance(value, float) and value.is_integer() else value

    text: Annotated[str, Field(max_length=20_000)] | SkipJsonSchema[None] = Field(
        None, description="the transcript of the audio: visemes follow its words"
    )
    use_text: bool = Field(True, description="false: ignore `text` (acoustic-only visemes)")


TtsEngineName = Literal["espeak", "elevenlabs", "openai"]
_VISIBLE = "[!-~\u00a1-\uffff]"
_ApiKey = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[!-~]+$")]  # a header
_ELEVENLABS_VOICE = r"^[A-Za-z0-9]{1,64}$"
# Which voices each engine takes, and that elevenlabs/openai need tts_api_key; the
# model validator enforces the same, this tells clients and schemathesis.
_PER_ENGINE: dict[str, JsonValue] = {
    "oneOf": [
        {
            "properties": {
                "tts_engine": {"const": "espeak"},
                "voice": {"enum": list(ESPEAK_VOICES)},
            }
        },
        {
            "required": ["tts_engine", "tts_api_key"],
            "properties": {
                "tts_engine": {"const": "elevenlabs"},
                "voice": {"pattern": _ELEVENLABS_VOICE},
            },
        },
        {
            "required": ["tts_engine", "tts_api_key"],
            "properties": {
                "tts_engine": {"const": "openai"},
                "voice": {"enum": list(OPENAI_VOICES)},
            },
        },
    ]
}


class VisemesAudioRequest(Strict):
    # Python's regex semantics, as JSON Schema tools (schemathesis) read the patterns:
    # `$` also matches before a final newline, which the validators below strip.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_extra=_PER_ENGINE,
        regex_engine="python-re",
    )
    # Something to say: a visible character. Spelled out, not \S: what \s covers
    # differs between regex dialects (Python's takes \x1c-\x1f, ECMAScript's does not).
    text: Annotated[str, Field(min_length=1, max_length=5000, pattern=_VISIBLE)]
    voice: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=64,
                pattern=r"^[A-Za-z0-9_-]+$",
                description="espeak: a variant (m1-m7, f1-f5); elevenlabs: a voice_id; "
                "openai: a built-in voice",
            ),
        ]
        | SkipJsonSchema[None]
    ) = None
    tts_engine: TtsEngineName = "espeak"
    tts_api_key: _ApiKey | SkipJsonSchema[None] = Field(
        None, description="the upstream's API key (elevenlabs, openai)"
    )
    speed: Annotated[float, Field(ge=0.5, le=2.0)] = 1.0
    model: VisemeModel = Field("default", description="viseme model, also espeak's language")
    use_text: bool = Field(True, description="false: visemes from the audio alone, not the text")

    @field_validator("voice", "tts_api_key")
    @classmethod
    def _no_final_newline(cls, value: str | None) -> str | None:
        return value.rstrip("\n") if value is not None else None

    @model_validator(mode="after")
    def _engine_fields(self) -> VisemesAudioRequest:
        if self.tts_engine != "espeak" and self.tts_api_key is None:
            raise ValueError(f"tts_api_key is required for tts_engine {self.tts_engine}")
        voice = self.voice
        if voice is None:
            return self
        if self.tts_engine == "espeak" and voice not in ESPEAK_VOICES:
            raise ValueError(f"voice {voice!r} is not an espeak voice ({', '.join(ESPEAK_VOICES)})")
        if self.tts_engine == "openai" and voice not in OPENAI_VOICES:
            raise ValueError(f"voice {voice!r} is not an OpenAI voice ({', '.join(OPENAI_VOICES)})")
        if self.tts_engine == "elevenlabs" and not re.match(_ELEVENLABS_VOICE, voice):
            raise ValueError(f"voice {voice!r} is not an ElevenLabs voice_id")
        return self


# Union tags in error locations: providers, and pydantic's name for a constrained str.
_TAGS = frozenset({"elevenlabs", "openai", "gemini", "constrained-str"})
M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: object, what: str) -> M:
    """Validate `data`; the BadRequest names the first offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Drop the union's tag (config.<provider>.field) so the path is the JSON path.
        where = ".".join(str(p) for p in first["loc"] if p not in _TAGS)
        detail = f"{where}: {first['msg']}" if where else first["msg"]
        raise BadRequest(f"{what}: {detail}") from None
