"""API keys: plain or `sha256:<hex>` in configuration (gateway/keys.py compares them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
