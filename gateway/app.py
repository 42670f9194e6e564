"""The aiohttp application: state, middlewares, routes and resource lifecycles."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from providers import registry
from providers.registry import Registry
from viseme_engine.engine import (
    MODELS_DIR,
    EngineConfig,
    LoadedModels,
    VisemeEngine,
    load_models,
)
from viseme_engine.smoothing import SmoothingConfig

from . import (
    cors,
    routes_demo,
    routes_ops,
    routes_stream,
    routes_tokens,
    routes_tts,
    routes_usage,
    routes_visemes,
    routes_ws,
)
from .http import errors_middleware, metrics_middleware
from .keys import Keys, watch
from .limiter import Limiter
from .load import Load
from .metrics import Metrics
from .revocation import MemoryStore, RedisStore, RevocationStore, redis_client
from .routes_stream import KIND, StreamToken
from .sessions import SESSIONS, Sessions, close_sessions, sessions_ctx
from .settings import Settings
from .state import (
    AUTH,
    CODEC,
    ENGINE,
    HTTP,
    LIFECYCLE,
    LIMITER,
    LOAD,
    METRICS,
    REGISTRY,
    SETTINGS,
    STORE,
    USAGE,
    EngineSlot,
    Lifecycle,
)
from .tokens import TokenCodec
from .usage import Usage

log = logging.getLogger("gateway")


def create_app(
    settings: Settings,
    store: RevocationStore | None = None,
    models: LoadedModels | None = None,
) -> web.Application:
    """Build the app. `settings.token_keys` must be set (the CLI fills in an ephemeral one).

    `models` are loaded in the background at start-up unless given (tests share them).
    """
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[metrics_middleware, errors_middleware, cors.cors_middleware],
    )
    app.on_response_prepare.append(cors.on_prepare)
    app[SETTINGS] = settings
    app[REGISTRY] = providers_for(settings)
    app[AUTH] = Keys(settings.api_keys, settings.keys_file)
    app[CODEC] = TokenCodec(settings.token_keys, providers=app[REGISTRY].token_kinds)
    app[METRICS] = Metrics()
    app[LIFECYCLE] = Lifecycle()
    app[ENGINE] = EngineSlot()
    app[LOAD] = Load()
    if store is None:
        store = (
            RedisStore.from_url(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else MemoryStore()
        )
    app[STORE] = store
    counters = redis_client(settings.redis_url) if settings.redis_url else None
    app[LIMITER] = Limiter(counters, settings.redis_prefix)
    app[USAGE] = Usage(counters, settings.redis_prefix, app[METRICS])
    app.cleanup_ctx.append(_close_store)
    app.cleanup_ctx.append(functools.partial(_policy_tasks, counters=counters))
    app.cleanup_ctx.append(functools.partial(_engine, models=models))
    app.cleanup_ctx.append(_http_client)
    app[SESSIONS] = Sessions()
    app.cleanup_ctx.append(sessions_ctx)
    app.on_shutdown.append(close_sessions)
    routes_tokens.add_routes(app)
    routes_usage.add_routes(app)
    routes_visemes.add_routes(app)
    routes_tts.add_routes(app)
    routes_demo.add_routes(app)
    routes_ws.add_routes(app)
    routes_stream.add_routes(app)
    routes_ops.add_routes(app)
    return app


def providers_for(settings: Settings) -> Registry:
    """The providers this gateway serves, and the token kinds it serves itself."""
    return registry.load(settings.provider_modules, local={KIND: StreamToken})


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        device=settings.device,
        threads=settings.engine_threads or None,
        max_batch=settings.engine_max_batch,
        max_wait_ms=settings.engine_max_wait_ms,
        forced_alignment=settings.forced_alignment,
        smoothing=SmoothingConfig(
            min_frames=max(1, settings.viseme_min_ms // 10), margin=settings.viseme_margin
        ),
    )


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[HTTP] = session
        yield


async def _close_store(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[STORE].close()


async def _policy_tasks(
    app: web.Application, counters: aioredis.Redis | None
) -> AsyncIterator[None]:
    """Reload the keys file when it changes; renew this process's leases."""
    tasks = [asyncio.create_task(app[LIMITER].run_renewals(), name="renew-leases")]
    poll = app[SETTINGS].keys_poll_seconds
    if app[SETTINGS].keys_file is not None and poll > 0:
        tasks.append(asyncio.create_task(watch(app[AUTH], poll), name="watch-keys-file"))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if counters is not None:
        await counters.aclose()


async def _engine(app: web.Application, models: LoadedModels | None) -> AsyncIterator[None]:
    """Load the models in the background: the port opens at once, /readyz waits."""
    slot = app[ENGINE]
    config = engine_config(app[SETTINGS])

    async def load() -> None:
        try:
            models_dir = app[SETTINGS].models_dir or MODELS_DIR
            if models is None:
                loaded = await asyncio.to_thread(load_models, config, models_dir)
            else:
                loaded = models
        except Exception as exc:
            log.exception("viseme models failed to load")
            slot.error = f"{type(exc).__name__}: {exc}"
            return
        engine = VisemeEngine(loaded, config, app[METRICS].count_batch)
        await engine.start()
        slot.engine = engine

    task = asyncio.create_task(load(), name="load-viseme-engine")
    if models is not None:
        await task  # nothing to wait for: ready before the first request
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if slot.engine is not None:
        await slot.engine.stop()
