"""The API keys this gateway accepts, each with its policy; the keys file and its reloads.

Keys come from `VISEME_GATEWAY_API_KEYS` / `API_KEYS_FILE` (the default policy)
and from the TOML keys file `VISEME_GATEWAY_KEYS_FILE` (docs/protocols.md,
"Keys and policy"). The file is read again when it changes (polled every
VISEME_GATEWAY_KEYS_POLL_SECONDS) or on SIGHUP; a file that does not parse is
logged and the keys in force stay.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .apikeys import ApiKey
from .errors import AuthError
from .policy import DEFAULT, Policy

log = logging.getLogger("gateway")
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_KEY_FIELDS = {"id", "name", "secret", "enabled", "admin", "policy"}
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Key:
    """One accepted key: `key_id` is the token's `sub`, the usage and metrics label."""

    key_id: str
    digest: bytes
    name: str = ""
    enabled: bool = True
    admin: bool = False
    policy: Policy = DEFAULT


class Keyring:
    def __init__(self, keys: Iterable[Key]) -> None:
        self.keys = tuple(keys)
        self._by_id = {k.key_id: k for k in self.keys}
        if len(self._by_id) != len(self.keys):
            raise ValueError("two keys have the same id")
        if len({k.digest for k in self.keys}) != len(self.keys):
            # one secret, two policies: which applies would depend on the file's order
            raise ValueError("two keys have the same secret")

    def get(self, key_id: str) -> Key | None:
        return self._by_id.get(key_id)

    def authenticate(self, authorization: str | None) -> Key:
        """Check an `Authorization: Bearer <key>` header value; a disabled key is refused."""
        if not authorization:
            raise AuthError()
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise AuthError()
        digest = hashlib.sha256(presented.strip().encode()).digest()
        found: Key | None = None
        # Compare against every key so the time taken does not say which one matched.
        for key in self.keys:
            if hmac.compare_digest(key.digest, digest):
                found = key
        if found is None or not found.enabled:
            raise AuthError()
        return found


def plain_keys(api_keys: Iterable[ApiKey]) -> list[Key]:
    """Keys from VISEME_GATEWAY_API_KEYS: ids from their digests, the default policy."""
    return [Key(k.key_id, k.digest) for k in api_keys]


def parse_keys_file(text: str) -> list[Key]:
    """The keys of a TOML keys file; ValueError names what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    unknown = set(data) - {"defaults", "keys"}
    if unknown:
        raise ValueError(f"unknown top-level entries: {', '.join(sorted(unknown))}")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ValueError("[defaults] must be a table")
    entries = data.get("keys", [])
    if not isinstance(entries, list):
        raise ValueError("keys must be an array of tables ([[keys]])")
    if not entries:  # what a file being rewritten (`cat new > keys.toml`) reads for a moment
        raise ValueError("no [[keys]]: a keys file without keys is refused")
    return [_key(number, entry, defaults) for number, entry in enumerate(entries, start=1)]


def _key(number: int, entry: Any, defaults: dict[str, Any]) -> Key:
    where = f"keys[{number}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table")
    unknown = set(entry) - _KEY_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown fields {', '.join(sorted(unknown))}")
    key_id, secret = entry.get("id"), entry.get("secret")
    if not isinstance(key_id, str) or not _ID.match(key_id):
        raise ValueError(f"{where}: id must be 1-64 of [A-Za-z0-9._-]")
    where = f"key {key_id!r}"
    if not isinstance(secret, str):
        raise ValueError(f"{where}: secret (plain or sha256:<hex>) is required")
    try:
        digest = ApiKey.parse(secret).digest
    except ValueError as exc:
        raise ValueError(f"{where}: secret: {exc}") from None
    name, enabled, admin = entry.get("name", ""), entry.get("enabled", True), entry.get("admin")
    if not isinstance(name, str) or not isinstance(enabled, bool):
        raise ValueError(f"{where}: name must be a string, enabled a boolean")
    if not isinstance(admin, bool | None):
        raise ValueError(f"{where}: admin must be a boolean")
    overrides = entry.get("policy", {})
    if not isinstance(overrides, dict):
        raise ValueError(f"{where}: policy must be a table")
    try:
        policy = Policy.model_validate({**defaults, **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: policy.{field}: {first['msg']}") from None
    return Key(key_id, digest, name, enabled, bool(admin), policy)


def load_keyring(api_keys: Iterable[ApiKey], path: Path | None) -> Keyring:
    """All keys: the plain ones and the keys file's. ValueError on a bad file."""
    keys = plain_keys(api_keys)
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        keys += parse_keys_file(text)
    return Keyring(keys)


class Keys:
    """The keys in force; `reload` swaps in the keys file's current contents."""

    def __init__(self, api_keys: Iterable[ApiKey], path: Path | None = None) -> None:
        self._plain = tuple(api_keys)
        self._path = path
        self.ring = load_keyring(self._plain, path)
        self._text = path.read_text() if path is not None else None
        self.reloads = 0  # reloads that changed the keys in force

    def authenticate(self, authorization: str | None) -> Key:
        return self.ring.authenticate(authorization)

    def get(self, key_id: str) -> Key | None:
        return self.ring.get(key_id)

    def reload(self) -> bool:
        """Read the keys file again; True when the keys in force changed."""
        if self._path is None:
            return False
        try:
            text = self._path.read_text()
            if text == self._text:
                return False
            ring = load_keyring(self._plain, self._path)
        except (OSError, ValueError) as exc:
            log.error("keys file %s not reloaded, keeping the keys in force: %s", self._path, exc)
            return False
        self.ring, self._text = ring, text
        self.reloads += 1
        log.info("keys file reloaded: %d key(s)", len(ring.keys))
        return True


async def watch(keys: Keys, every: float = POLL_SECONDS) -> None:
    while True:
        await asyncio.sleep(every)
        keys.reload()
