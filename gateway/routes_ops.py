"""Operations endpoints: liveness, readiness, health, Prometheus metrics, OpenAPI."""

from __future__ import annotations

import hmac
import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from viseme_engine.device import cuda_device_count

from . import __version__, cors
from .errors import AuthError
from .http import errors_middleware
from .openapi import document
from .settings import Settings, is_loopback
from .state import ENGINE, LIFECYCLE, LOAD, METRICS, REGISTRY, SETTINGS, STORE
from .workers import METRICS_DIR_ENV


async def _redis_state(app: web.Application) -> str:
    store = app[STORE]
    if store.kind == "memory":
        return "disabled"
    return "ok" if await store.ping() else "unreachable"


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    reasons = []
    if request.app[LIFECYCLE].draining:
        reasons.append("draining")
    if await _redis_state(request.app) == "unreachable":
        reasons.append("redis unreachable")
    slot = request.app[ENGINE]
    if slot.engine is None:
        reasons.append(f"models failed to load: {slot.error}" if slot.error else "models loading")
    if request.app[LOAD].saturated:
        reasons.append("saturated")
    if reasons:
        return web.json_response({"ready": False, "reasons": reasons}, status=503)
    return web.json_response({"ready": True})


async def health(request: web.Request) -> web.Response:
    lifecycle, engine = request.app[LIFECYCLE], request.app[ENGINE].engine
    redis = await _redis_state(request.app)
    degraded = redis == "unreachable" or request.app[ENGINE].error is not None
    status = "draining" if lifecycle.draining else "degraded" if degraded else "ok"
    return web.json_response(
        {
            "status": status,
            "version": __version__,
            "device": engine.device if engine else None,
            "cuda_available": request.app[_CUDA],
            "models_loaded": engine.model_names if engine else [],
            "redis": redis,
        }
    )


async def metrics(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].metrics_token
    if token is not None:
        presented = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(presented, f"Bearer {token}".encode()):
            raise AuthError("A valid metrics bearer token is required")
    shared = os.environ.get(METRICS_DIR_ENV)
    if shared:  # several workers (gateway/workers.py): the sum of all of them
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, shared)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[REGISTRY], request.app[SETTINGS].public_url))


_CUDA = web.AppKey("cuda_available", bool)


def add_routes(app: web.Application) -> None:
    app[_CUDA] = cuda_device_count() > 0
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/health", health)
    if metrics_on_public_port(app[SETTINGS]):  # else on its own listener (metrics_app)
        app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)


def metrics_on_public_port(settings: Settings) -> bool:
    """On the public port only without a listener of its own, and off loopback only
    behind its token: an open /metrics tells anyone the keys' ids and traffic."""
    if settings.metrics_port is not None:
        return False
    return settings.metrics_token is not None or is_loopback(settings.host)


def metrics_app(main: web.Application) -> web.Application:
    """/metrics alone, for a listener of its own (VISEME_GATEWAY_METRICS_PORT)."""
    app = web.Application(middlewares=[errors_middleware])
    app.on_response_prepare.append(cors.on_prepare)  # nosniff and Referrer-Policy
    app[SETTINGS], app[METRICS] = main[SETTINGS], main[METRICS]
    app.router.add_get("/metrics", metrics)
    return app
