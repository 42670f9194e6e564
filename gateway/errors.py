"""The gateway's one error tree, and every status and close code it answers with.

HTTP statuses and WebSocket close codes are decided here and nowhere else; the
user-facing table is docs/protocols.md, "Errors, in one table".

    GatewayError                    500 unless a subclass says otherwise
    ├── BadRequest                  400  invalid input, the message names the field
    ├── PayloadTooLarge             413
    ├── RequestTimeout              408  a body paused past BODY_TIMEOUT_SECONDS
    ├── AuthError                   401  missing, unknown or disabled API key
    ├── Forbidden                   403  the key may not touch this resource
    │   ├── ForbiddenKey                a bad key on the SSE routes (code INVALID_API_KEY)
    │   ├── TokenUsed                   the signed URL opened its sessions_per_token
    │   ├── OriginNotAllowed            a browser Origin outside the key's policy
    │   ├── ProviderNotAllowed
    │   └── ModelNotAllowed
    ├── Refused                     429  over a key's limit, with Retry-After
    │   ├── RateLimited                 signed URLs per second / burst
    │   ├── SessionLimit                concurrent sessions
    │   ├── ConcurrencyLimit            /v1/visemes or TTS requests at once
    │   └── QuotaExceeded               audio minutes per day / month
    ├── StoreUnavailable            503  revocation store unreachable: fail closed
    ├── EngineUnavailable           503  viseme models not loaded (yet)
    ├── Saturated                   503  shedding visemes: new sessions go elsewhere
    └── TokenError                  401  a signed-URL token was refused
        ├── TokenMalformed              not five base64url parts, bad JSON, bad claims
        ├── TokenTampered               AES-GCM authentication failed
        ├── UnknownKey                  kid not among the configured token keys
        ├── UnsupportedAlgorithm        alg/enc outside the allow-list, or crit
        ├── CompressedToken             a zip header (refused: compression oracles)
        ├── WrongType                   typ is not ours
        ├── WrongAudience
        ├── WrongIssuer
        ├── TokenExpired                past exp plus leeway
        ├── TokenNotYetValid            before nbf/iat minus leeway
        └── TokenRevoked            403

`reason` is a short stable label (a metrics label); `code` is the stable field
of every JSON error (docs/protocols.md, "Error codes").

Where each surfaces:

    error                     HTTP  relay session            SSE (streaming)  metric
    BadRequest                400   -                        -                http_requests
    AuthError / Forbidden     401/403 -                      -                http_requests
    StoreUnavailable          503   503 before the upgrade   -                http_requests
    EngineUnavailable         503   audio without visemes    -                chunks_skipped
    Saturated                 -     503 before the upgrade   -                http_requests
    visemes past the deadline -     audio without visemes    -                chunks_skipped
    TokenError kinds          401   401 before the upgrade   -                tokens_rejected
    TokenRevoked              403   403; open: close REVOKED -                tokens_rejected
    Forbidden kinds           403   403 before the upgrade   -                refusals
    Refused kinds             429   429 before the upgrade   -                refusals
    session over its length   -     close TIME_LIMIT         -                -
    quota used up mid-session -     close QUOTA_USED         -                -
    key disabled mid-session  -     close KEY_DISABLED       -                -
    EngineOverloaded (engine) -     audio without visemes    event: error     chunks_skipped
    TtsError (providers.tts)  -     -                        event: error     -
    malformed known event     -     relayed as it came       -                chunks_skipped
    FrameTooDeep (client)     -     close TOO_DEEP           -                -
    a client frame > 16 MiB   -     close TOO_BIG            -                -
    UpstreamRefused           -     close upstream_refused() -                upstream_errors
    upstream unreachable      -     close UNREACHABLE        -                upstream_errors
    a bug in a relay pump     500   close RELAY_ERROR        -                -
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Close:
    """A WebSocket close the gateway sends: code and reason (at most 123 bytes)."""

    code: int
    reason: str


REVOKED = Close(4001, "token revoked")  # upstream gets 1000
SHUTDOWN = Close(1001, "gateway shutting down")  # after the drain; upstream gets 1000
TOO_DEEP = Close(1009, "JSON message nested too deeply")  # never forwarded upstream
TOO_BIG = Close(1009, "message over the 16 MiB limit")  # a client frame; never forwarded
TIME_LIMIT = Close(4408, "session time limit reached")  # the key's max_session_seconds
KEY_DISABLED = Close(4401, "API key disabled")  # the keys file no longer enables the key
MODEL_REFUSED = Close(4403, "viseme model not allowed")  # a stream's config, by policy
QUOTA_USED = Close(4429, "audio quota exceeded")  # the key's audio minutes per day/month
UNREACHABLE = Close(1011, "upstream unreachable")
RELAY_ERROR = Close(1011, "gateway relay error")  # a bug of ours: never 1000


def upstream_refused(status: int) -> Close:
    """The provider refused the connection (or its signed-URL call) with `status`."""
    return Close(1011, f"upstream refused: HTTP {status}")


class GatewayError(Exception):
    status = 500
    reason = "internal"
    code = "INTERNAL"  # the stable `code` of the JSON error (docs/protocols.md)
    headers: dict[str, str] = {}  # noqa: RUF012  # read-only, per class

    def __init__(self, message: str = "Internal server error") -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GatewayError):
    status = 400
    reason = "bad_request"
    code = "BAD_REQUEST"


class PayloadTooLarge(GatewayError):
    status = 413
    reason = "too_large"
    code = "PAYLOAD_TOO_LARGE"


class RequestTimeout(GatewayError):
    """The client sent its body too slowly (VISEME_GATEWAY_BODY_TIMEOUT_SECONDS)."""

    status = 408
    reason = "request_timeout"
    code = "REQUEST_TIMEOUT"


class AuthError(GatewayError):
    status = 401
    reason = "invalid_api_key"
    code = "INVALID_API_KEY"

    def __init__(self, message: str = "Invalid API key") -> None:
        super().__init__(message)


class Forbidden(GatewayError):
    status = 403
    reason = "forbidden"
    code = "FORBIDDEN"


class ForbiddenKey(Forbidden):
    """A bad API key on the routes that answer it with 403 (gateway/sse.py)."""

    code = "INVALID_API_KEY"

    def __init__(self, message: str = "Invalid API key") -> None:
        super().__init__(message)


class StoreUnavailable(GatewayError):
    status = 503
    reason = "store_unavailable"
    code = "STORE_UNAVAILABLE"

    def __init__(self, message: str = "Revocation store unavailable") -> None:
        super().__init__(message)


class EngineUnavailable(GatewayError):
    status = 503
    reason = "engine_unavailable"
    code = "ENGINE_UNAVAILABLE"


class Saturated(GatewayError):
    """This process sheds visemes (gateway/load.py): new relay sessions go elsewhere."""

    status = 503
    reason = "saturated"
    code = "SATURATED"
    headers = {"Retry-After": "1"}  # noqa: RUF012  # read-only, per class

    def __init__(self, message: str = "Gateway saturated: try again shortly") -> None:
        super().__init__(message)


class TokenError(GatewayError):
    status = 401
    reason = "invalid_token"
    code = "INVALID_TOKEN"


class TokenMalformed(TokenError):
    reason = "malformed"


class TokenTampered(TokenError):
    reason = "tampered"


class UnknownKey(TokenError):
    reason = "unknown_kid"


class UnsupportedAlgorithm(TokenError):
    reason = "unsupported_algorithm"


class CompressedToken(TokenError):
    reason = "compressed"


class WrongType(TokenError):
    reason = "wrong_typ"


class WrongAudience(TokenError):
    reason = "wrong_audience"


class WrongIssuer(TokenError):
    reason = "wrong_issuer"


class TokenExpired(TokenError):
    reason = "expired"
    code = "TOKEN_EXPIRED"


class TokenNotYetValid(TokenError):
    reason = "not_yet_valid"


class TokenRevoked(TokenError):
    status = 403
    reason = "revoked"
    code = "TOKEN_REVOKED"


class Refused(GatewayError):
    """A key's policy refused the request (gateway/limits.py): 429 with Retry-After."""

    status = 429

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}


class RateLimited(Refused):
    reason = "rate_limited"
    code = "RATE_LIMITED"


class QuotaExceeded(Refused):
    reason = "quota_exceeded"
    code = "QUOTA_EXCEEDED"


class SessionLimit(Refused):
    """As many relay and stream sessions open as the key may have."""

    reason = "session_limit"
    code = "SESSION_LIMIT"


class ConcurrencyLimit(Refused):
    """As many POST /v1/visemes (or /v1/visemes-audio) running as the key may have."""

    reason = "concurrency_limit"
    code = "CONCURRENCY_LIMIT"


class TokenUsed(Forbidden):
    """The signed URL has opened as many sessions as its key's sessions_per_token."""

    reason = "token_used"
    code = "TOKEN_USED"


class OriginNotAllowed(Forbidden):
    reason = "origin_not_allowed"
    code = "ORIGIN_NOT_ALLOWED"


class ProviderNotAllowed(Forbidden):
    reason = "provider_not_allowed"
    code = "PROVIDER_NOT_ALLOWED"


class ModelNotAllowed(Forbidden):
    reason = "model_not_allowed"
    code = "MODEL_NOT_ALLOWED"


# Codes of errors aiohttp raises itself (no such route, wrong method).
HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}
# Codes of the streaming endpoint's error messages that no HTTP answer carries.
STREAM_CODES = ("FRAME_SIZE_EXCEEDED",)


def error_codes() -> list[str]:
    """Every `code` a JSON error may carry (the OpenAPI document's enum)."""
    codes, todo = {*HTTP_CODES.values(), *STREAM_CODES}, [GatewayError]
    while todo:
        cls = todo.pop()
        codes.add(cls.code)
        todo.extend(cls.__subclasses__())
    return sorted(codes)
