"""One frozen settings object, from `VISEME_GATEWAY_*` variables and matching CLI flags.

Every field has an environment variable (`VISEME_GATEWAY_<FIELD>`) and a flag
(`--<field-with-dashes>`); a flag wins over the variable. A bad value raises
ConfigError whose message names the variable, so start-up fails in one line.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from providers import registry
from providers.base import UrlSetting

from .apikeys import ApiKey
from .keys import load_keyring

ENV_PREFIX = "VISEME_GATEWAY_"
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class TokenKey:
    kid: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0  # 0: one per core with Redis, else one (gateway/workers.py)
    public_url: str | None = None
    api_keys: tuple[ApiKey, ...] = ()
    api_keys_file: Path | None = None
    keys_file: Path | None = None  # TOML: keys with their policies (gateway/keys.py)
    keys_poll_seconds: float = 2.0  # how often the keys file is checked (0: on SIGHUP only)
    token_keys: tuple[TokenKey, ...] = ()
    redis_url: str | None = None
    redis_prefix: str = "viseme-gateway:"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    provider_modules: tuple[str, ...] = ()
    # Upstream base URLs, by the name their provider declares (a UrlSetting);
    # absent: the provider's default. Each is VISEME_GATEWAY_<NAME> / --<name>.
    urls: Mapping[str, str] = field(default_factory=dict)
    device: str = "auto"
    models_dir: Path | None = None
    # One: the relay runs many small inferences, which a thread pool only slows
    # (40 sessions: 1.9 ms and 0.43 cores per audio message with 1, 3.2 ms and
    # 0.60 cores with 2; bench/relay_latency.py). Workers use the other cores.
    engine_threads: int = 1
    engine_max_batch: int = 256
    engine_max_wait_ms: float | None = None
    viseme_min_ms: int = 30
    viseme_margin: float = 0.1
    viseme_deadline_ms: float = 20.0
    visemes: bool = True  # off: relay sessions pass audio through untouched (benchmark baseline)
    text_informed: bool = True  # off: transcripts are ignored (acoustic-only visemes)
    # off: POST /v1/visemes aligns its transcript with the model alone (no pocketsphinx)
    forced_alignment: bool = True
    max_audio_seconds: float = 600.0
    sse_chunk_ms: int = 500
    tts_timeout_seconds: float = 15.0
    drain_seconds: float = 5.0
    max_body_bytes: int = 64 * 1024 * 1024
    # Slow clients (slowloris), as nginx's client_header_timeout / client_body_timeout:
    # a request's headers must be in within this long of the connection opening (or
    # of the last response on it), and a body may pause at most this long between reads.
    header_timeout_seconds: float = 60.0
    body_timeout_seconds: float = 60.0
    metrics_port: int | None = None  # /metrics on a listener of its own (then not on `port`)
    metrics_token: str | None = field(default=None, repr=False)  # /metrics wants this bearer
    log_level: str = "INFO"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def urls_for(self, declared: Iterable[UrlSetting]) -> dict[str, str]:
        """A provider's or TTS engine's upstream URLs: as configured, else its defaults."""
        return {u.name: self.urls.get(u.name, u.default) for u in declared}


HELP: dict[str, str] = {
    "host": "address to listen on",
    "port": "TCP port (0 picks a free one and logs it)",
    "workers": "worker processes sharing the port (0: one per core if REDIS_URL is set, else 1)",
    "public_url": "base URL clients reach this gateway at, e.g. https://gw.example.com",
    "api_keys": "comma-separated API keys, plain or sha256:<hex>",
    "api_keys_file": "file with one API key (plain or sha256:<hex>) per line",
    "keys_file": "TOML keys file: each key's id, secret and policy (reloaded on change, SIGHUP)",
    "keys_poll_seconds": "seconds between checks of the keys file for changes (0: SIGHUP only)",
    "token_keys": "comma-separated kid:base64url-32-byte-key; the first signs, all decrypt",
    "redis_url": "Redis for revocation state shared by replicas (unset: in-memory)",
    "redis_prefix": "prefix of every Redis key this gateway writes",
    "tls_cert": "PEM certificate to serve https/wss directly",
    "tls_key": "PEM private key for --tls-cert",
    "provider_modules": "comma-separated modules whose PROVIDERS tuples add providers",
    "device": "viseme engine device: auto, cuda or cpu",
    "models_dir": "folder with default.onnx and indonesian.onnx (default: the bundled models)",
    "engine_threads": "onnxruntime threads per model (0: one per core; default 1)",
    "engine_max_batch": "most stream blocks in one batched inference",
    "engine_max_wait_ms": "longest wait to fill a batch, in ms (default: 0 on CPU, 2 on CUDA)",
    "viseme_min_ms": "a new viseme must last this long to be shown (anti-flicker)",
    "viseme_margin": "probability margin by which a new viseme must beat the shown one",
    "viseme_deadline_ms": "ms an audio message may wait for its visemes (0: no limit)",
    "visemes": "on or off: inject visemes into relayed conversations",
    "text_informed": "on or off: let transcripts pin the viseme sequence",
    "forced_alignment": "on or off: let pocketsphinx align POST /v1/visemes transcripts",
    "max_audio_seconds": "longest audio POST /v1/visemes accepts",
    "sse_chunk_ms": "audio per Server-Sent Event of POST /v1/visemes and /v1/visemes-audio",
    "tts_timeout_seconds": "longest a TTS upstream or espeak-ng may stay silent before it fails",
    "drain_seconds": "seconds between SIGTERM and closing open WebSockets",
    "max_body_bytes": "largest accepted request body in bytes",
    "header_timeout_seconds": "seconds a connection has to send a request's headers (slowloris)",
    "body_timeout_seconds": "longest pause between two reads of a request body",
    "metrics_port": "serve /metrics on this port only (a listener of its own)",
    "metrics_token": "bearer token /metrics requires (unset: none)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
}


N = TypeVar("N", int, float)


def _in_range(convert: Callable[[str], N], noun: str, lo: N, hi: N) -> Callable[[str], N]:
    def parse(raw: str) -> N:
        try:
            value = convert(raw)
        except ValueError:
            raise ValueError(f"must be {noun}, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}, got {value:g}")
        return value

    return parse


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    return _in_range(int, "an integer", lo, hi)


def _number(lo: float, hi: float) -> Callable[[str], float]:
    return _in_range(float, "a number", lo, hi)


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"must be a {'/'.join(schemes)} URL, got {raw!r}")
        return raw.rstrip("/")

    return parse


def _public_url(raw: str) -> str:
    url = _url("http", "https")(raw)
    if urlsplit(url).query or urlsplit(url).fragment:
        raise ValueError("must not carry a query or fragment")
    return url


def _existing_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ValueError(f"no such file: {raw}")
    return path


def _existing_dir(raw: str) -> Path:
    path = Path(raw)
    if not path.is_dir():
        raise ValueError(f"no such folder: {raw}")
    return path


def _api_keys(raw: str) -> tuple[ApiKey, ...]:
    return tuple(ApiKey.parse(item) for item in raw.split(",") if item.strip())


def _token_keys(raw: str) -> tuple[TokenKey, ...]:
    keys: list[TokenKey] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        if not sep or not _KID.match(kid):
            raise ValueError("each entry must be kid:base64url-key with kid of [A-Za-z0-9._-]")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ValueError(f"key for kid {kid!r} is not base64url") from None
        if len(key) != 32:
            raise ValueError(f"key for kid {kid!r} must decode to 32 bytes, got {len(key)}")
        if any(k.kid == kid for k in keys):
            raise ValueError(f"kid {kid!r} appears twice")
        keys.append(TokenKey(kid, key))
    return tuple(keys)


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {raw!r}")
        return raw.lower()

    return parse


def _secret(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw


def _redis_url(raw: str) -> str:
    return _url("redis", "rediss", "unix")(raw)


def _prefix(raw: str) -> str:
    if not raw or len(raw) > 64:
        raise ValueError("must be 1-64 characters")
    return raw


PARSERS: dict[str, Callable[[str], Any]] = {
    "host": str,
    "port": _int_range(0, 65535),
    "workers": _int_range(0, 256),
    "public_url": _public_url,
    "api_keys": _api_keys,
    "api_keys_file": _existing_file,
    "keys_file": _existing_file,
    "keys_poll_seconds": _number(0, 3600),
    "token_keys": _token_keys,
    "redis_url": _redis_url,
    "redis_prefix": _prefix,
    "tls_cert": _existing_file,
    "tls_key": _existing_file,
    "provider_modules": lambda raw: tuple(m.strip() for m in raw.split(",") if m.strip()),
    "device": _choice("auto", "cuda", "cpu"),
    "models_dir": _existing_dir,
    "engine_threads": _int_range(0, 256),
    "engine_max_batch": _int_range(1, 4096),
    "engine_max_wait_ms": _number(0, 100),
    "viseme_min_ms": _int_range(10, 200),
    "viseme_margin": _number(0, 0.99),
    "viseme_deadline_ms": _number(0, 10_000),
    "visemes": lambda raw: _choice("on", "off")(raw) == "on",
    "text_informed": lambda raw: _choice("on", "off")(raw) == "on",
    "forced_alignment": lambda raw: _choice("on", "off")(raw) == "on",
    "max_audio_seconds": _number(1, 3600),
    "sse_chunk_ms": _int_range(20, 10_000),
    "tts_timeout_seconds": _number(0.1, 600),
    "drain_seconds": _number(0, 3600),
    "max_body_bytes": _int_range(1024, 1024**3),
    "header_timeout_seconds": _number(0.1, 3600),
    "body_timeout_seconds": _number(0.1, 3600),
    "metrics_port": _int_range(0, 65535),
    "metrics_token": _secret,
    "log_level": lambda raw: _choice("debug", "info", "warning", "error")(raw).upper(),
}


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def load_settings(
    env: Mapping[str, str] | None = None, flags: Mapping[str, str | None] | None = None
) -> Settings:
    """Build Settings from the environment, then flags; ConfigError names the bad variable."""
    env = os.environ if env is None else env
    flags = flags or {}
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in PARSERS:
            _read(f.name, PARSERS[f.name], env, flags, values)
    urls: dict[str, str] = {}
    for setting in url_settings(values.get("provider_modules", ())):
        _read(setting.name, _url(*setting.schemes), env, flags, urls)
    values["urls"] = urls
    if "api_keys_file" in values:
        values["api_keys"] = values.get("api_keys", ()) + _read_keys_file(values["api_keys_file"])
    if values.get("workers", 0) > 1 and not values.get("redis_url"):
        raise ConfigError(
            f"{env_name('workers')}={values['workers']} needs {env_name('redis_url')}: "
            "each worker is a process of its own, and only Redis carries a revocation to all"
        )
    if "keys_file" in values:
        try:
            load_keyring(values.get("api_keys", ()), values["keys_file"])
        except ValueError as exc:
            raise ConfigError(f"{env_name('keys_file')}: {exc}") from None
    if not values.get("public_url") and not is_loopback(values.get("host", "127.0.0.1")):
        raise ConfigError(
            f"{env_name('public_url')} is required when listening on {values['host']} (not "
            "loopback): signed URLs must not take their host from a request's Host header"
        )
    if ("tls_cert" in values) != ("tls_key" in values):
        raise ConfigError(f"{env_name('tls_cert')} and {env_name('tls_key')} must be set together")
    return Settings(**values)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_settings(provider_modules: Sequence[str]) -> tuple[UrlSetting, ...]:
    """The upstream URL settings the providers declare (built-in and plugins)."""
    try:
        return registry.load(provider_modules).url_settings
    except registry.RegistryError as exc:
        raise ConfigError(f"{env_name('provider_modules')}: {exc}") from None


def _read(
    name: str,
    parse: Callable[[str], Any],
    env: Mapping[str, str],
    flags: Mapping[str, str | None],
    into: dict[str, Any],
) -> None:
    """One setting from its flag, else its variable; ConfigError names the source."""
    raw = flags.get(name)
    source = "--" + name.replace("_", "-")
    if raw is None:
        raw = env.get(env_name(name))
        source = env_name(name)
    if raw is None or raw == "":
        return
    try:
        into[name] = parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _read_keys_file(path: Path) -> tuple[ApiKey, ...]:
    keys = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(ApiKey.parse(line))
        except ValueError as exc:
            raise ConfigError(f"{env_name('api_keys_file')}: line {number}: {exc}") from None
    return tuple(keys)
