"""The gateway's one error tree; HTTP statuses are mapped here and nowhere else.

    GatewayError                    500 unless a subclass says otherwise
    ├── BadRequest                  400  invalid input, the message names the field
    ├── PayloadTooLarge             413
    ├── AuthError                   401  missing or unknown API key
    ├── Forbidden                   403  the key may not touch this resource
    ├── StoreUnavailable            503  revocation store unreachable: fail closed
    ├── EngineUnavailable           503  viseme models not loaded (yet)
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
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    reason = "internal"

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
