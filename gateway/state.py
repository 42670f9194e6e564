"""Typed application state (aiohttp AppKeys): no module-level clients or globals."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web

from providers.registry import Registry
from viseme_engine.engine import VisemeEngine

from .keys import Keys
from .limiter import Limiter
from .load import Load
from .metrics import Metrics
from .revocation import RevocationStore
from .settings import Settings
from .tokens import TokenCodec
from .usage import Usage


@dataclass
class Lifecycle:
    draining: bool = False


@dataclass
class EngineSlot:
    """The viseme engine once loaded (it loads in the background after start-up)."""

    engine: VisemeEngine | None = None
    error: str | None = None


SETTINGS = web.AppKey("settings", Settings)
AUTH = web.AppKey("auth", Keys)  # the keys in force (gateway/keys.py)
CODEC = web.AppKey("codec", TokenCodec)
STORE = web.AppKey("store", RevocationStore)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
ENGINE = web.AppKey("engine", EngineSlot)
LOAD = web.AppKey("load", Load)  # shed audio over the last second: saturation
REGISTRY = web.AppKey("registry", Registry)  # the providers this gateway serves
HTTP = web.AppKey("http", aiohttp.ClientSession)  # outbound calls to providers' REST APIs
LIMITER = web.AppKey("limiter", Limiter)  # the counters behind key policies
USAGE = web.AppKey("usage", Usage)  # usage metering per key and day
KEY_ID = web.RequestKey("key_id", str)  # the calling key, once known
