"""The aiohttp application: state, middlewares, routes and resource lifecycles."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from . import routes_ops, routes_tokens
from .apikeys import Authenticator
from .http import errors_middleware, metrics_middleware
from .metrics import Metrics
from .revocation import MemoryStore, RedisStore, RevocationStore
from .settings import Settings
from .state import AUTH, CODEC, LIFECYCLE, METRICS, SETTINGS, STORE, Lifecycle
from .tokens import TokenCodec


def create_app(settings: Settings, store: RevocationStore | None = None) -> web.Application:
    """Build the app. `settings.token_keys` must be set (the CLI fills in an ephemeral one)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[metrics_middleware, errors_middleware],
    )
    app[SETTINGS] = settings
    app[AUTH] = Authenticator(settings.api_keys)
    app[CODEC] = TokenCodec(settings.token_keys)
    app[METRICS] = Metrics()
    app[LIFECYCLE] = Lifecycle()
    if store is None:
        store = (
            RedisStore.from_url(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else MemoryStore()
        )
    app[STORE] = store
    app.cleanup_ctx.append(_close_store)
    routes_tokens.add_routes(app)
    routes_ops.add_routes(app)
    return app


async def _close_store(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[STORE].close()
