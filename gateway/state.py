"""Typed application state (aiohttp AppKeys): no module-level clients or globals."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from .apikeys import Authenticator
from .metrics import Metrics
from .revocation import RevocationStore
from .settings import Settings
from .tokens import TokenCodec


@dataclass
class Lifecycle:
    draining: bool = False
    models_loaded: list[str] = field(default_factory=list)
    device: str | None = None


SETTINGS = web.AppKey("settings", Settings)
AUTH = web.AppKey("auth", Authenticator)
CODEC = web.AppKey("codec", TokenCodec)
STORE = web.AppKey("store", RevocationStore)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
