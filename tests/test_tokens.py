"""Token format and every refusal, without I/O."""

from __future__ import annotations

import base64
import json
import secrets
import time

import jwt
import pytest
from jwcrypto import jwe, jwk, jws

from gateway import errors
from gateway.settings import TokenKey
from gateway.tokens import TokenCodec, b64url_encode, signing_key
from tests.conftest import b64url

SECRETS = {"api_key": "xi-very-secret-value", "agent_id": "agent_1"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def issue(codec: TokenCodec) -> str:
    token, _ = codec.issue(
        sub="key_abc", provider="elevenlabs", provider_config=SECRETS, viseme_model="default"
    )
    return token


def reheader(token: str, key: bytes, **changes: object) -> str:
    """Re-encrypt the same payload under a changed protected header (a forged but
    correctly sealed token): tests the header checks, not just the GCM tag."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    parts = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=="))
    inner = AESGCM(key).decrypt(
        base64.urlsafe_b64decode(parts[2] + "=="),
        base64.urlsafe_b64decode(parts[3] + "==") + base64.urlsafe_b64decode(parts[4] + "=="),
        parts[0].encode(),
    )
    header.update(changes)
    header = {k: v for k, v in header.items() if v is not None}
    protected = b64url_encode(json.dumps(header).encode())
    iv = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(iv, inner, protected.encode())
    return ".".join((protected, "", b64url(iv), b64url(sealed[:-16]), b64url(sealed[-16:])))


def test_round_trip_carries_claims(token_key: TokenKey) -> None:
    codec = TokenCodec([token_key])
    token, issued = codec.issue(
        sub="key_abc",
        provider="openai",
        provider_config={"ephemeral_token": "ek_1"},
        viseme_model="indonesian",
    )
    claims = codec.decode(token)
    assert claims == issued
    assert claims.exp - claims.iat == 600
    assert claims.provider_config == {"ephemeral_token": "ek_1"}


def test_secrets_never_in_clear_text(token_key: TokenKey) -> None:
    token = issue(TokenCodec([token_key]))
    decoded_parts = b"".join(
        base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split(".")
    )
    for secret in SECRETS.values():
        assert secret not in token
        assert secret.encode() not in decoded_parts


def test_independent_jose_library_decrypts_and_verifies(token_key: TokenKey) -> None:
    token = issue(TokenCodec([token_key]))
    envelope = jwe.JWE()
    envelope.deserialize(token, key=jwk.JWK(kty="oct", k=b64url(token_key.key)))
    header = envelope.jose_header
    assert (header["alg"], header["enc"], header["kid"]) == ("dir", "A256GCM", "k1")
    assert header["typ"] == "viseme-gateway+jwt"
    signed = jws.JWS()
    signed.deserialize(envelope.payload.decode())
    signed.verify(jwk.JWK(kty="oct", k=b64url(signing_key(token_key.key))), alg="HS256")
    claims = json.loads(signed.payload)
    assert claims["provider_config"] == SECRETS
    assert {"iss", "aud", "iat", "nbf", "exp", "jti", "sub"} <= claims.keys()


def test_rotation_old_tokens_still_verify(token_key: TokenKey) -> None:
    old_codec = TokenCodec([token_key])
    token = issue(old_codec)
    new_key = TokenKey("k2", secrets.token_bytes(32))
    rotated = TokenCodec([new_key, token_key])
    assert rotated.decode(token).provider == "elevenlabs"
    fresh = issue(rotated)
    assert json.loads(base64.urlsafe_b64decode(fresh.split(".")[0] + "=="))["kid"] == "k2"
    with pytest.raises(errors.UnknownKey):
        old_codec.decode(fresh)


def test_tampered_ciphertext_and_header(token_key: TokenKey) -> None:
    codec = TokenCodec([token_key])
    token = issue(codec)
    parts = token.split(".")
    ct = bytearray(base64.urlsafe_b64decode(parts[3] + "=" * (-len(parts[3]) % 4)))
    ct[5] ^= 1
    flipped = ".".join([*parts[:3], b64url(bytes(ct)), parts[4]])
    with pytest.raises(errors.TokenTampered):
        codec.decode(flipped)
    # Header edited without re-sealing: the header is the AAD, so GCM fails.
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=="))
    header["x"] = 1
    edited = ".".join([b64url(json.dumps(header).encode()), *parts[1:]])
    with pytest.raises(errors.TokenTampered):
        codec.decode(edited)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"kid": "nope"}, errors.UnknownKey),
        ({"alg": "A256KW"}, errors.UnsupportedAlgorithm),
        ({"enc": "A128GCM"}, errors.UnsupportedAlgorithm),
        ({"crit": ["exp"]}, errors.UnsupportedAlgorithm),
        ({"zip": "DEF"}, errors.CompressedToken),
        ({"typ": "JWT"}, errors.WrongType),
        ({"typ": None}, errors.WrongType),
    ],
)
def test_header_allow_list(token_key: TokenKey, changes: dict[str, object], error: type) -> None:
    codec = TokenCodec([token_key])
    with pytest.raises(error):
        codec.decode(reheader(issue(codec), token_key.key, **changes))


@pytest.mark.parametrize(
    "token", ["", "a.b.c", "a..b.c.d", "!!!!..aaaa.bbbb.cccc", "e30..AAAA.AAAA.AAAA"]
)
def test_malformed(token_key: TokenKey, token: str) -> None:
    with pytest.raises(errors.TokenError):
        TokenCodec([token_key]).decode(token)


def _forge(token_key: TokenKey, **claims: object) -> str:
    """A token sealed with the right key whose inner JWT carries other claims;
    a claim given as None is left out."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    now = time.time()
    payload = {
        "iss": "viseme-gateway",
        "aud": "viseme-gateway/relay",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "j",
        "sub": "key_abc",
        "provider": "gemini",
        "provider_config": {},
        "viseme_model": "default",
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    inner = jwt.encode(payload, signing_key(token_key.key), algorithm="HS256")
    header = {"alg": "dir", "enc": "A256GCM", "kid": token_key.kid, "typ": "viseme-gateway+jwt"}
    protected = b64url_encode(json.dumps(header).encode())
    iv = secrets.token_bytes(12)
    sealed = AESGCM(token_key.key).encrypt(iv, inner.encode(), protected.encode())
    return ".".join((protected, "", b64url(iv), b64url(sealed[:-16]), b64url(sealed[-16:])))


def test_forged_token_with_good_claims_is_accepted(token_key: TokenKey) -> None:
    # The control for the next test: the forging helper itself makes valid tokens.
    assert TokenCodec([token_key]).decode(_forge(token_key)).provider == "gemini"


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"aud": "someone-else"}, errors.WrongAudience),
        ({"iss": "someone-else"}, errors.WrongIssuer),
        ({"provider": "skype"}, errors.TokenMalformed),
        ({"provider_config": "x"}, errors.TokenMalformed),
        ({"jti": None}, errors.TokenMalformed),
        ({"exp": None}, errors.TokenMalformed),
        ({"exp": time.time() + 86_400}, errors.TokenMalformed),  # a day: longer than ours
        ({"iat": time.time() + 700}, errors.TokenError),  # exp before iat (and iat ahead)
    ],
)
def test_claim_checks(token_key: TokenKey, claims: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        TokenCodec([token_key]).decode(_forge(token_key, **claims))


def test_non_numeric_times_are_refused_even_unverified(token_key: TokenKey) -> None:
    # Introspection decodes without checking expiry; a string exp must not become a 500.
    for bad in ({"exp": "soon"}, {"iat": True}):
        with pytest.raises(errors.TokenMalformed):
            TokenCodec([token_key]).decode(_forge(token_key, **bad), verify_exp=False)


def test_expiry_with_30s_leeway(token_key: TokenKey) -> None:
    # pyjwt checks times against the real clock; issue tokens in the past instead.
    codec = TokenCodec([token_key])
    almost = issue(TokenCodec([token_key], clock=Clock(time.time() - 600 - 25)))
    assert codec.decode(almost).provider == "elevenlabs"
    expired = issue(TokenCodec([token_key], clock=Clock(time.time() - 600 - 35)))
    with pytest.raises(errors.TokenExpired):
        codec.decode(expired)
    # Revocation may still read an expired token's jti and owner.
    assert codec.decode(expired, verify_exp=False).sub == "key_abc"


def test_not_yet_valid(token_key: TokenKey) -> None:
    codec = TokenCodec([token_key])
    soon = issue(TokenCodec([token_key], clock=Clock(time.time() + 20)))
    assert codec.decode(soon).provider == "elevenlabs"
    later = issue(TokenCodec([token_key], clock=Clock(time.time() + 60)))
    with pytest.raises(errors.TokenNotYetValid):
        codec.decode(later)
