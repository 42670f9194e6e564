"""Signed-URL tokens: a pyjwt-signed JWT nested inside a compact JWE (dir, A256GCM).

The inner JWT (HS256) is issued and validated by pyjwt: iss, aud, iat, nbf, exp,
jti, sub and our private claims. The outer JWE is built with `cryptography`:
alg `dir` with the configured 32-byte key as the AES-256-GCM content key, so any
standard JOSE library holding the key can decrypt it. The signing key is derived
from the same configured key with HKDF, so one secret per `kid` is all an
operator manages, and the two uses never share key material.

Provider secrets only ever travel inside the ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from providers.registry import BUILTIN

from . import errors
from .settings import TokenKey

TOKEN_TYPE = "viseme-gateway+jwt"  # noqa: S105  # a media type, not a secret
ISSUER = "viseme-gateway"
AUDIENCE = "viseme-gateway/relay"
LIFETIME_SECONDS = 600
LEEWAY_SECONDS = 30
BUILTIN_NAMES = tuple(cls.name for cls in BUILTIN)
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_SIGNING_INFO = b"viseme-gateway token signing v1"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise errors.TokenMalformed("Token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise errors.TokenMalformed("Token is not base64url") from None


def signing_key(key: bytes) -> bytes:
    """The HS256 key of the inner JWT, derived from a configured token key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SIGNING_INFO).derive(key)


@dataclass(frozen=True)
class TokenClaims:
    jti: str
    sub: str
    iat: float
    exp: float
    provider: str
    provider_config: dict[str, Any]
    viseme_model: str


class TokenCodec:
    """Issues and verifies tokens. Revocation is checked by the caller (it needs I/O)."""

    def __init__(
        self,
        keys: Sequence[TokenKey],
        *,
        lifetime: int = LIFETIME_SECONDS,
        leeway: int = LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
        providers: Collection[str] = BUILTIN_NAMES,  # the names a token may carry
    ) -> None:
        if not keys:
            raise ValueError("at least one token key is required")
        self._signer = keys[0]
        self._keys = {k.kid: k.key for k in keys}
        self._signing = {k.kid: signing_key(k.key) for k in keys}
        self.lifetime = lifetime
        self.leeway = leeway
        self._clock = clock
        self._providers = frozenset(providers)

    def issue(
        self, *, sub: str, provider: str, provider_config: dict[str, Any], viseme_model: str
    ) -> tuple[str, TokenClaims]:
        # Millisecond iat, rounded down: a revoke-all cut-off (taken later, unrounded)
        # covers every token issued before it, but not one issued a second later
        # (NumericDate may be non-integer, RFC 7519 section 2).
        now = math.floor(self._clock() * 1000) / 1000
        claims = TokenClaims(
            jti=uuid.uuid4().hex,
            sub=sub,
            iat=now,
            exp=now + self.lifetime,
            provider=provider,
            provider_config=provider_config,
            viseme_model=viseme_model,
        )
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": claims.iat,
            "nbf": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
            "sub": claims.sub,
            "provider": provider,
            "provider_config": provider_config,
            "viseme_model": viseme_model,
        }
        kid = self._signer.kid
        inner = jwt.encode(
            payload, self._signing[kid], algorithm="HS256", headers={"kid": kid, "typ": "JWT"}
        )
        header = {"alg": "dir", "enc": "A256GCM", "kid": kid, "typ": TOKEN_TYPE, "cty": "JWT"}
        protected = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        iv = os.urandom(12)
        sealed = AESGCM(self._signer.key).encrypt(iv, inner.encode(), protected.encode())
        ciphertext, tag = sealed[:-16], sealed[-16:]
        token = ".".join(
            (protected, "", b64url_encode(iv), b64url_encode(ciphertext), b64url_encode(tag))
        )
        return token, claims

    def decode(self, token: str, *, verify_exp: bool = True) -> TokenClaims:
        """Decrypt and validate; raises a TokenError subclass naming the problem."""
        kid, inner = self._decrypt(token)
        try:
            payload = jwt.decode(
                inner,
                self._signing[kid],
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self.leeway,
                options={
                    "require": ["iss", "aud", "iat", "nbf", "exp", "jti", "sub"],
                    "verify_exp": verify_exp,
                },
            )
        except jwt.ExpiredSignatureError:
            raise errors.TokenExpired("Token expired") from None
        except jwt.ImmatureSignatureError:
            raise errors.TokenNotYetValid("Token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise errors.WrongAudience("Token audience is not this gateway") from None
        except jwt.InvalidIssuerError:
            raise errors.WrongIssuer("Token issuer is not this gateway") from None
        except jwt.InvalidTokenError as exc:
            raise errors.TokenMalformed(f"Invalid token claims: {exc}") from None
        return _claims(payload, self._providers)

    def _decrypt(self, token: str) -> tuple[str, str]:
        parts = token.split(".")
        if len(parts) != 5:
            raise errors.TokenMalformed("Token is not a compact JWE")
        protected, encrypted_key, iv_b64, ct_b64, tag_b64 = parts
        try:
            header = json.loads(b64url_decode(protected))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise errors.TokenMalformed("Token header is not JSON") from None
        if not isinstance(header, dict):
            raise errors.TokenMalformed("Token header is not a JSON object")
        if "zip" in header:
            raise errors.CompressedToken("Compressed tokens are not accepted")
        if header.get("alg") != "dir" or header.get("enc") != "A256GCM" or "crit" in header:
            raise errors.UnsupportedAlgorithm("Token algorithm is not allowed")
        if header.get("typ") != TOKEN_TYPE:
            raise errors.WrongType("Token type is not a viseme-gateway token")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self._keys:
            raise errors.UnknownKey("Token key id is unknown")
        iv, ciphertext, tag = b64url_decode(iv_b64), b64url_decode(ct_b64), b64url_decode(tag_b64)
        if encrypted_key or len(iv) != 12 or len(tag) != 16:
            raise errors.TokenMalformed("Token is not a dir/A256GCM JWE")
        try:
            inner = AESGCM(self._keys[kid]).decrypt(iv, ciphertext + tag, protected.encode())
        except InvalidTag:
            raise errors.TokenTampered("Token failed authentication") from None
        try:
            return kid, inner.decode()
        except UnicodeDecodeError:
            raise errors.TokenMalformed("Token payload is not text") from None


def _claims(payload: dict[str, Any], providers: frozenset[str]) -> TokenClaims:
    provider = payload.get("provider")
    config = payload.get("provider_config")
    model = payload.get("viseme_model")
    if provider not in providers or not isinstance(config, dict) or not isinstance(model, str):
        raise errors.TokenMalformed("Token claims are incomplete")
    iat, exp = payload["iat"], payload["exp"]
    if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (iat, exp)):
        raise errors.TokenMalformed("Token times are not numbers")
    # Only a holder of the key could mint a longer one; refuse it all the same.
    if not 0 < exp - iat <= LIFETIME_SECONDS:
        raise errors.TokenMalformed("Token lifetime is not the gateway's")
    return TokenClaims(
        jti=str(payload["jti"]),
        sub=str(payload["sub"]),
        iat=float(iat),
        exp=float(exp),
        provider=provider,
        provider_config=config,
        viseme_model=model,
    )
