"""Request bodies as pydantic models: one source for validation and the OpenAPI schemas."""

from __future__ import annotations

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

from providers.base import Lipsync, Strict, VisemeModel, exactly_one
from providers.tts import ENGINES, TtsEngine, voice_error
from viseme_engine.audio import MAX_RATE, MIN_RATE
from viseme_engine.lipsync import LipsyncConfig

from .errors import BadRequest
from .settings import Settings

# /v1/visemes resamples any rate in viseme_engine.audio's range
AnyRate = Annotated[int, Field(ge=MIN_RATE, le=MAX_RATE, strict=True)]


# Standard base64 of at least 3 bytes (one 16-bit sample; a trailing odd byte is ignored).
_BASE64 = r"^(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_Token = Annotated[str, Field(min_length=1, max_length=16384)]


class RevokeRequest(Strict):
    model_config = exactly_one("token", "jti", "all")
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
    lipsync: Lipsync | SkipJsonSchema[None] = None


TtsEngineName = Literal[tuple(ENGINES)]  # type: ignore[valid-type]  # the engines' keys, at run time
_VISIBLE = "[!-~\u00a1-\uffff]"
_ApiKey = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[!-~]+$")]  # a header


def _per_engine(engine: type[TtsEngine]) -> dict[str, JsonValue]:
    """Which voices an engine takes and whether it needs tts_api_key: the model
    validator enforces the same; this tells clients and schemathesis."""
    voice: dict[str, JsonValue] = (
        {"enum": list(engine.voices)}
        if engine.voices is not None
        else {"pattern": engine.voice_pattern or ".*"}
    )
    branch: dict[str, JsonValue] = {
        "properties": {"tts_engine": {"const": engine.key}, "voice": voice}
    }
    if engine.needs_api_key:
        branch["required"] = ["tts_engine", "tts_api_key"]
    return branch


_PER_ENGINE: dict[str, JsonValue] = {"oneOf": [_per_engine(e) for e in ENGINES.values()]}
_VOICES = "; ".join(
    f"{e.key}: " + (", ".join(e.voices) if e.voices else "a voice id") for e in ENGINES.values()
)


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
                description=_VOICES,
            ),
        ]
        | SkipJsonSchema[None]
    ) = None
    tts_engine: TtsEngineName = "espeak"  # type: ignore[valid-type]
    tts_api_key: _ApiKey | SkipJsonSchema[None] = Field(
        None,
        description="the upstream's API key ("
        + ", ".join(e.key for e in ENGINES.values() if e.needs_api_key)
        + ")",
    )
    speed: Annotated[float, Field(ge=0.5, le=2.0)] = 1.0
    model: VisemeModel = Field("default", description="viseme model, also espeak's language")
    use_text: bool = Field(True, description="false: visemes from the audio alone, not the text")
    lipsync: Lipsync | SkipJsonSchema[None] = None

    @field_validator("voice", "tts_api_key")
    @classmethod
    def _no_final_newline(cls, value: str | None) -> str | None:
        return value.rstrip("\n") if value is not None else None

    @model_validator(mode="after")
    def _engine_fields(self) -> VisemesAudioRequest:
        engine = ENGINES[self.tts_engine]
        if engine.needs_api_key and self.tts_api_key is None:
            raise ValueError(f"tts_api_key is required for tts_engine {self.tts_engine}")
        problem = voice_error(engine, self.voice) if self.voice is not None else None
        if problem is not None:
            raise ValueError(problem)
        return self


M = TypeVar("M", bound=BaseModel)


def _json_path(loc: tuple[int | str, ...], data: object, missing: bool) -> list[str]:
    """The error's place in the JSON: pydantic's location also names the union
    branches it tried (config.<provider>.field, lipsync.Lipsync.fps.literal[30,60]),
    which the document lacks. A missing field is the one step not in the data."""
    path: list[str] = []
    node = data
    for index, part in enumerate(loc):
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_list or (isinstance(node, dict) and part in node):
            node = node[part]  # type: ignore[index]  # a dict or a list, as just checked
        elif not (missing and index == len(loc) - 1):
            continue  # a union branch's name
        path.append(str(part))
    return path


def lipsync_config(settings: Settings, chosen: Lipsync | None) -> LipsyncConfig:
    """The client's lipsync choice over the gateway's defaults: unset, the hold and
    the margin are the operator's VISEME_MIN_MS and VISEME_MARGIN, so a client
    that asks for nothing gets exactly the output it always had."""
    given = chosen.model_dump(exclude_none=True) if chosen is not None else {}
    defaults = {"min_hold_ms": settings.viseme_min_ms, "smoothing": settings.viseme_margin}
    return LipsyncConfig(**{**defaults, **given})


def parse(model: type[M], data: object, what: str) -> M:
    """Validate `data`; the BadRequest names the first offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(_json_path(first["loc"], data, first["type"] == "missing"))
        detail = f"{where}: {first['msg']}" if where else first["msg"]
        raise BadRequest(f"{what}: {detail}") from None
