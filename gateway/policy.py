"""What one API key may do: its policy in the keys file (docs/protocols.md, "Keys and policy").

Every field has a default, and the defaults are what a key from
`VISEME_GATEWAY_API_KEYS` gets: bounded rates and concurrency, one session per
signed URL, no browser origins, no audio quota. A quota of None is unlimited.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$|^\*$")
_Name = Annotated[str, Field(min_length=1, max_length=64)]


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # None: every provider / viseme model this gateway serves.
    providers: tuple[_Name, ...] | None = None
    viseme_models: tuple[_Name, ...] | None = None
    # Signed URLs: `signed_url_burst` at once, `signed_urls_per_second` on average.
    signed_urls_per_second: float = Field(default=2.0, gt=0, le=100_000)
    signed_url_burst: int = Field(default=10, ge=1, le=1_000_000)
    concurrent_sessions: int = Field(default=10, ge=0, le=1_000_000)  # relay and stream sockets
    sessions_per_token: int = Field(default=1, ge=1, le=1000)  # 1: a signed URL is for one call
    max_session_seconds: int = Field(default=3600, ge=1, le=7 * 86400)
    # Client messages a relay session forwards upstream: `client_message_burst` at
    # once, then this many per second; past it the gateway reads more slowly.
    client_messages_per_second: float = Field(default=100.0, gt=0, le=100_000)
    client_message_burst: int = Field(default=200, ge=1, le=1_000_000)
    visemes_concurrency: int = Field(default=4, ge=0, le=100_000)  # POST /v1/visemes at once
    tts_concurrency: int = Field(default=2, ge=0, le=100_000)  # POST /v1/visemes-audio at once
    audio_minutes_per_day: float | None = Field(default=None, ge=0)  # UTC days
    audio_minutes_per_month: float | None = Field(default=None, ge=0)  # UTC calendar months
    # Browser origins (scheme://host[:port], or "*") allowed on the HTTP API (CORS)
    # and WebSocket upgrades. A request without Origin (a server) is always allowed.
    allowed_origins: tuple[str, ...] = ()

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not scheme://host[:port] or *")
        return tuple(o.lower() for o in value)

    def allows_provider(self, name: str) -> bool:
        return self.providers is None or name in self.providers

    def allows_model(self, name: str) -> bool:
        return self.viseme_models is None or name in self.viseme_models

    def allows_origin(self, origin: str | None) -> bool:
        if origin is None:
            return True  # server-side SDKs send none
        return "*" in self.allowed_origins or origin.lower() in self.allowed_origins


DEFAULT = Policy()
