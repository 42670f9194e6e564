"""API keys: plain or `sha256:<hex>` in configuration, compared by digest in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import AuthError

_HASH_PREFIX = "sha256:"


@dataclass(frozen=True)
class ApiKey:
    """A configured key, kept only as its SHA-256 digest.

    `key_id` is a non-secret name for the key (the token's `sub` claim, log and
    metrics label): a prefix of the digest, so a hashed and a plain entry of the
    same key get the same id.
    """

    digest: bytes

    @property
    def key_id(self) -> str:
        return "key_" + self.digest.hex()[:16]

    @classmethod
    def parse(cls, entry: str) -> ApiKey:
        """Parse one configured entry; raises ValueError with a message fit for the user."""
        entry = entry.strip()
        if entry.startswith(_HASH_PREFIX):
            hexdigest = entry[len(_HASH_PREFIX) :]
            try:
                digest = bytes.fromhex(hexdigest)
            except ValueError:
                raise ValueError("sha256: entry is not hexadecimal") from None
            if len(digest) != 32:
                raise ValueError("sha256: entry must be 64 hex digits")
            return cls(digest)
        if len(entry) < 16:
            raise ValueError("API keys must be at least 16 characters")
        return cls(hashlib.sha256(entry.encode()).digest())


class Authenticator:
    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = tuple(keys)

    def authenticate(self, authorization: str | None) -> ApiKey:
        """Check an `Authorization: Bearer <key>` header value."""
        if not authorization:
            raise AuthError()
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise AuthError()
        digest = hashlib.sha256(presented.strip().encode()).digest()
        found: ApiKey | None = None
        # Compare against every key so the time taken does not say which one matched.
        for key in self._keys:
            if hmac.compare_digest(key.digest, digest):
                found = key
        if found is None:
            raise AuthError()
        return found
