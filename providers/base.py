"""The provider plugin contract: everything the gateway needs to know of a provider.

A provider module owns its provider whole (docs/architecture.md, "Adding a
provider"): the typed config its signed URLs carry, the routes its SDKs connect
to and where they put the token, the signed-URL answer, its upstream URLs, and
the reading of the few event fields the relay acts on. The gateway builds its
request schemas, routes, settings and OpenAPI document from the registry
(`providers.registry`), so adding a provider edits no gateway module.

Adapters are Sans-I/O past connecting: `read` and `inject` look at one parsed
JSON message; the per-session rules built on them are `providers.tap`. Anything
an adapter does not recognise is relayed untouched (docs/protocols.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar
from urllib.parse import urlencode

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from viseme_engine.audio import AudioFormat

Message = dict[str, Any]
VisemeModel = Literal["default", "indonesian"]
# Provider secrets are printable ASCII: a control character would only fail at connect.
Secret = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[!-~]+$")]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._/-]+$")]


class Strict(BaseModel):
    """A request body or config: unknown fields refused, no type coercion, immutable."""

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


def exactly_one(*names: str) -> ConfigDict:
    """The schema half of an exactly-one-of rule enforced by a model validator."""
    extra: dict[str, JsonValue] = {"oneOf": [{"required": [name]} for name in names]}
    return ConfigDict(extra="forbid", strict=True, frozen=True, json_schema_extra=extra)


class Lipsync(Strict):
    """The client's choice of output shape (docs/protocols.md, "Lip-sync formats");
    fields left out take the gateway's defaults."""

    format: Literal["sapi", "oculus", "arkit"] = "sapi"
    fps: Literal[30, 60] | SkipJsonSchema[None] = Field(None, description="arkit; default 60")
    min_hold_ms: Annotated[int, Field(ge=0, le=400)] | SkipJsonSchema[None] = Field(
        None, description="shortest viseme shown (p/b/m exempt); default: the gateway's, 30"
    )
    smoothing: Annotated[float, Field(ge=0.0, le=1.0)] | SkipJsonSchema[None] = Field(
        None, description="hysteresis of visemes and smoothing of weights; default 0.1"
    )
    intensity: Annotated[float, Field(ge=0.0, le=2.0)] | SkipJsonSchema[None] = Field(
        None, description="arkit: mouth opening, 1.0 neutral"
    )

    @field_validator("smoothing", "intensity", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        """A JSON integer is a number too (1 as well as 1.0), a boolean is not."""
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("fps", "min_hold_ms", mode="before")
    @classmethod
    def _integral(cls, value: object) -> object:
        """JSON Schema counts 60.0 as an integer: so do we (never "60" or 60.5)."""
        return int(value) if isinstance(value, float) and value.is_integer() else value


class ProviderConfig(Strict):
    """`provider_config` of `POST /v1/get-signed-url`; carried, encrypted, in the token
    and validated again when the token is used."""

    viseme_model: VisemeModel = "default"
    lipsync: Lipsync | SkipJsonSchema[None] = None


class Event(BaseModel):
    """The fields of a provider event an adapter reads; every other field is allowed
    and ignored. A known event whose fields have the wrong shape fails validation
    (a ValueError): the relay forwards it as it came, without visemes."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class UpstreamRefused(Exception):
    """The provider would not let us connect (bad credentials, unknown agent...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UrlSetting:
    """An upstream base URL the operator may change (tests point them at fakes).

    `name` is the settings field: VISEME_GATEWAY_<NAME> and --<name-with-dashes>."""

    name: str
    default: str
    schemes: tuple[str, ...]
    help: str


@dataclass(frozen=True)
class Route:
    """A WebSocket path the provider's SDKs connect to, and where they put the token.

    Providers may share a path (ElevenLabs and OpenAI both take /v1/conversation):
    the token then says which provider the session is for."""

    path: str  # an aiohttp route path
    summary: str
    openapi_path: str | None = None  # where `path` is a pattern: its OpenAPI spelling
    query: tuple[str, ...] = ()  # query parameters that may hold the token, in order
    headers: tuple[str, ...] = ()  # headers that may hold it
    schemes: tuple[str, ...] = ()  # Authorization: <scheme> <token> (lower case)
    path_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # for OpenAPI

    def token(self, query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
        for name in self.headers:
            if headers.get(name):
                return headers[name]
        for name in self.query:
            if query.get(name):
                return query[name]
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme.lower() in self.schemes and value.strip():
            return value.strip()
        return None


@dataclass(frozen=True)
class Options:
    """What a session's adapter gets from the gateway's settings."""

    urls: Mapping[str, str]  # the provider's UrlSettings, resolved
    text_informed: bool = True  # transcripts pin the visemes (an adapter may ask for them)


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Transcript:
    """Text of the agent's speech, as a provider streams it beside the audio."""

    text: str
    final: bool = False  # the response's text is complete: its last word too
    # Per character of `text`, when the provider says it starts: ms from the start
    # of the same message's audio (ElevenLabs); the tap moves them onto the stream's
    # clock. A prior, never the truth (docs/architecture.md, "Provider timings").
    char_ms: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Audio:
    """An output-audio message: the base64 audio it carries and how it is encoded."""

    b64: str
    format: AudioFormat
    chunk_id: int  # ties the visemes to this audio message


@dataclass(frozen=True)
class Reading:
    """What one upstream message means to the relay (`Provider.read`)."""

    audio: Audio | None = None
    resets: bool = False  # ends or interrupts a turn: engine and text state restart first
    completes: bool = False  # the response's audio ends here: its last visemes go out
    transcript: Transcript | None = None
    opens_gate: bool = False  # injecting is allowed after this message
    hidden: bool = False  # only the gateway asked for it: never reaches the client
    shown: Message | None = None  # the message as the client should see it, if changed


NOTHING = Reading()


@dataclass(frozen=True)
class Injection:
    """Where an audio message's visemes go: a top-level field the message gains
    (spliced into its text, not re-serialised), a message of its own right
    after it, or both."""

    field: str | None = None
    extra: Message | None = None


C = TypeVar("C", bound=ProviderConfig)


def signed_url_answer(http_base: str, path: str, token: str, expires_at: int) -> dict[str, Any]:
    """`{"signed_url": "ws(s)://<base><path>?token=...", "expires_at"}`."""
    ws_base = "ws" + http_base.removeprefix("http")
    return {
        "signed_url": f"{ws_base}{path}?{urlencode({'token': token})}",
        "expires_at": expires_at,
    }


SIGNED_URL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["signed_url", "expires_at"],
    "properties": {"signed_url": {"type": "string"}, "expires_at": {"type": "integer"}},
}


class Provider(ABC, Generic[C]):
    name: ClassVar[str]
    config_model: ClassVar[type[ProviderConfig]]
    routes: ClassVar[tuple[Route, ...]]
    urls: ClassVar[tuple[UrlSetting, ...]] = ()
    # Subprotocols a browser SDK asks for that we echo; never one carrying a key.
    subprotocols: ClassVar[tuple[str, ...]] = ()
    signed_schema: ClassVar[dict[str, Any]] = SIGNED_URL_SCHEMA
    # Whether visemes wait for a `Reading.opens_gate` message (a handshake the
    # SDKs must see first); False: they may go out from the first audio message.
    gated: ClassVar[bool] = True

    def __init__(self, config: C, options: Options) -> None:
        self.config = config
        self.options = options

    @classmethod
    def signed_response(cls, token: str, http_base: str, expires_at: int) -> dict[str, Any]:
        """The answer of get-signed-url; by default a wss:// URL of the first route."""
        return signed_url_answer(http_base, cls.routes[0].path, token, expires_at)

    @classmethod
    def accepts_path(cls, path: str) -> bool:
        """Whether a request path matched by one of `routes` is really ours (else 404)."""
        return True

    @abstractmethod
    async def target(self, http: aiohttp.ClientSession, client_path: str) -> Target:
        """Where and how to connect upstream (may call the provider's REST API)."""

    def opening_messages(self) -> list[Message]:
        """Messages to send upstream right after connecting."""
        return []

    def rewrite_client(self, message: Message) -> Message | None:
        """A client message to change before it goes upstream; None = send as is."""
        return None

    @abstractmethod
    def read(self, message: Message) -> Reading:
        """What an upstream message means: audio, turn boundaries, transcript, gate."""

    @abstractmethod
    def inject(self, message: Message, visemes: Message) -> Injection:
        """Where the visemes of this audio message go."""
