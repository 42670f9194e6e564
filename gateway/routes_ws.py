"""The WebSocket endpoints the signed URLs point to; one relay per connection.

Routes come from the provider registry: each provider names its paths and
where its SDKs put the token (providers/base.py, `Route`). Providers may share
a path; the token then says whose session it is. The token is checked before
the upgrade: a bad one gets an HTTP error, not a socket.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from providers.base import Options, Provider, ProviderConfig, Route, UpstreamRefused

from . import guard, schemas
from .access import verify_token
from .errors import UNREACHABLE, Saturated, TokenMalformed, upstream_refused
from .guard import allow, token_owner
from .keys import Key
from .relay import Relay, client_response, connect_options
from .sessions import SESSIONS, Session
from .state import ENGINE, HTTP, LOAD, METRICS, REGISTRY, SETTINGS
from .tokens import TokenClaims

log = logging.getLogger("gateway")
Takers = list[tuple[type[Provider[Any]], Route]]


async def relay_endpoint(request: web.Request, takers: Takers) -> web.StreamResponse:
    """A provider path: find the token where these providers' SDKs put it, then relay."""
    token = None
    for cls, route in takers:
        if cls.accepts_path(request.path):
            token = token or route.token(request.query, request.headers)
    if not any(cls.accepts_path(request.path) for cls, _ in takers):
        raise web.HTTPNotFound()
    if not token:
        raise TokenMalformed("A signed-URL token is required")
    if request.app[LOAD].saturated:  # checked before the token: no work for a refusal
        raise Saturated()
    claims = await verify_token(request.app, token)
    mine = [c for c, _ in takers if c.name == claims.provider]
    if not mine:
        raise TokenMalformed(f"This token is for {claims.provider}, not this endpoint")
    key = token_owner(request, claims)  # still enabled, this Origin allowed
    allow(key, claims.provider, claims.viseme_model)  # the policy may have changed since
    cls = mine[0]
    # Checked again as when it was signed: a config short of a field would fail
    # only later, mid-connect (only a holder of the token key could make one).
    try:
        config = cls.config_model.model_validate(
            {**claims.provider_config, "viseme_model": claims.viseme_model}
        )
    except ValidationError:
        raise TokenMalformed("Token config is not valid") from None
    async with guard.session(request, key, claims):  # 429 / 403 before the upgrade
        return await _relay(request, (key, claims), cls, config)


async def _relay(
    request: web.Request,
    owner: tuple[Key, TokenClaims],
    cls: type[Provider[Any]],
    config: ProviderConfig,
) -> web.StreamResponse:
    key, claims = owner
    app = request.app
    settings, metrics = app[SETTINGS], app[METRICS]
    provider = cls(config, Options(settings.urls_for(cls.urls), settings.text_informed))
    client = client_response(provider)
    await client.prepare(request)
    try:
        target = await provider.target(app[HTTP], request.path)
        upstream = await connect(target.url, additional_headers=target.headers, **connect_options())
    except (UpstreamRefused, InvalidStatus) as exc:
        status = exc.status if isinstance(exc, UpstreamRefused) else exc.response.status_code
        metrics.upstream_errors.labels(provider.name, "refused").inc()
        refused = upstream_refused(status)
        await client.close(code=refused.code, message=refused.reason.encode())
        return client
    except (OSError, TimeoutError, InvalidHandshake, aiohttp.ClientError) as exc:
        metrics.upstream_errors.labels(provider.name, "unreachable").inc()
        log.warning("%s upstream unreachable: %s", provider.name, type(exc).__name__)
        await client.close(code=UNREACHABLE.code, message=UNREACHABLE.reason.encode())
        return client
    relay = Relay(
        provider,
        client,
        upstream,
        lambda: app[ENGINE].engine,
        claims.viseme_model,
        metrics,
        inject=settings.visemes,
        use_text=settings.text_informed,
        lipsync=schemas.lipsync_config(settings, config.lipsync),
        load=app[LOAD],
        deadline_ms=settings.viseme_deadline_ms,
        meter=(meter := guard.Meter()),
        throttle=guard.Throttle(
            key.policy.client_messages_per_second, key.policy.client_message_burst
        ),
    )
    session = Session(claims, relay)
    app[SESSIONS].add(session)
    metrics.sessions.labels(provider.name).inc()
    try:
        await guard.metered(app, key, relay, meter, "provider_audio_ms", relay.run())
    finally:
        app[SESSIONS].discard(session)
        metrics.sessions.labels(provider.name).dec()
        await upstream.close()
    return client


def add_routes(app: web.Application) -> None:
    for path, takers in app[REGISTRY].paths().items():
        app.router.add_get(path, functools.partial(relay_endpoint, takers=takers))
