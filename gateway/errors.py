"""The gateway's one error tree, and every status and close code it answers with.

HTTP statuses and WebSocket close codes are decided here and nowhere else; the
user-facing table is docs/protocols.md, "Errors, in one table".

    GatewayError                    500 unless a subclass says otherwise
    ├── BadRequest                  400  invalid input, the message names the field
    ├── PayloadTooLarge             413
    ├── AuthError                   401  missing or unknown API key
    ├── Forbidden                   403  the key may not touch this resource
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

`reason` is a short stable label, used as a metrics label and in JSON errors.

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
UNREACHABLE = Close(1011, "upstream unreachable")
RELAY_ERROR = Close(1011, "gateway relay error")  # a bug of ours: never 1000


def upstream_refused(status: int) -> Close:
    """The provider refused the connection (or its signed-URL call) with `status`."""
    return Close(1011, f"upstream refused: HTTP {status}")


class GatewayError(Exception):
    status = 500
    reason = "internal"
    headers: dict[str, str] = {}  # noqa: RUF012  # read-only, per class

    def __init__(self, message: str = "Internal server error") -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GatewayError):
    status = 400
    reason = "bad_request"


class PayloadTooLarge(GatewayError):
    status = 413
    reason = "too_large"


class AuthError(GatewayError):
    status = 401
    reason = "invalid_api_key"

    def __init__(self, message: str = "Invalid API key") -> None:
        super().__init__(message)


class Forbidden(GatewayError):
    status = 403
    reason = "forbidden"


class StoreUnavailable(GatewayError):
    status = 503
    reason = "store_unavailable"

    def __init__(self, message: str = "Revocation store unavailable") -> None:
        super().__init__(message)


class EngineUnavailable(GatewayError):
    status = 503
    reason = "engine_unavailable"


class Saturated(GatewayError):
    """This process sheds visemes (gateway/load.py): new relay sessions go elsewhere."""

    status = 503
    reason = "saturated"
    headers = {"Retry-After": "1"}  # noqa: RUF012  # read-only, per class

    def __init__(self, message: str = "Gateway saturated: try again shortly") -> None:
        super().__init__(message)


class TokenError(GatewayError):
    status = 401
    reason = "invalid_token"


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


class TokenNotYetValid(TokenError):
    reason = "not_yet_valid"


class TokenRevoked(TokenError):
    status = 403
    reason = "revoked"
