"""The WebSocket endpoints the signed URLs point to; one relay per connection.

- ElevenLabs and OpenAI: GET /v1/conversation?token=..., plus the shapes the
  official SDKs produce from it (OpenAI's Python SDK appends /realtime and
  ?model=...; with websocket_base_url=<gateway>/v1 it sends the token as its
  Bearer api_key to /v1/realtime).
- Gemini: /ws/google.ai.generativelanguage.{version}.GenerativeService.{method},
  `//ws/` tolerated, token in x-goog-api-key, ?key=, ?access_token= or
  Authorization: Token|Bearer.
The token is checked before the upgrade: a bad one gets an HTTP error, not a socket.
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from providers import PROVIDERS
from providers.base import UpstreamRefused
from providers.gemini_live import parse_path
from providers.relay import Relay, client_response, connect_options

from . import schemas
from .access import verify_token
from .errors import BadRequest, TokenMalformed
from .sessions import SESSIONS, Session
from .state import ENGINE, HTTP, METRICS, SETTINGS
from .tokens import TokenClaims

log = logging.getLogger("gateway")


def _bearer(request: web.Request, *schemes: str) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() in schemes and value.strip() else None


async def conversation(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token") or _bearer(request, "bearer")
    claims = await _claims(request, token, ("elevenlabs", "openai"))
    return await _relay(request, claims)


async def gemini(request: web.Request) -> web.StreamResponse:
    if parse_path(request.path) is None:
        raise web.HTTPNotFound()
    token = (
        request.headers.get("x-goog-api-key")
        or request.query.get("key")
        or request.query.get("access_token")
        or _bearer(request, "token", "bearer")
    )
    claims = await _claims(request, token, ("gemini",))
    return await _relay(request, claims)


async def _claims(
    request: web.Request, token: str | None, providers: tuple[str, ...]
) -> TokenClaims:
    if not token:
        raise TokenMalformed("A signed-URL token is required")
    claims = await verify_token(request.app, token)
    if claims.provider not in providers:
        raise TokenMalformed(f"This token is for {claims.provider}, not this endpoint")
    # Checked again as when it was signed: a config short of a field would fail
    # only later, mid-connect (only a holder of the token key could make one).
    spec = {**claims.provider_config, "viseme_model": claims.viseme_model}
    try:
        schemas.parse(
            schemas.SignedUrlRequest,
            {"config": {"provider": claims.provider, "provider_config": spec}},
            "Token config",
        )
    except BadRequest:
        raise TokenMalformed("Token config is not valid") from None
    return claims


async def _relay(request: web.Request, claims: TokenClaims) -> web.StreamResponse:
    app = request.app
    metrics = app[METRICS]
    provider = PROVIDERS[claims.provider](claims.provider_config, app[SETTINGS])
    client = client_response(provider)
    await client.prepare(request)
    try:
        target = await provider.target(app[HTTP], request.path)
        upstream = await connect(target.url, additional_headers=target.headers, **connect_options())
    except (UpstreamRefused, InvalidStatus) as exc:
        status = exc.status if isinstance(exc, UpstreamRefused) else exc.response.status_code
        metrics.upstream_errors.labels(provider.name, "refused").inc()
        await client.close(code=1011, message=f"upstream refused: HTTP {status}".encode())
        return client
    except (OSError, TimeoutError, InvalidHandshake, aiohttp.ClientError) as exc:
        metrics.upstream_errors.labels(provider.name, "unreachable").inc()
        log.warning("%s upstream unreachable: %s", provider.name, type(exc).__name__)
        await client.close(code=1011, message=b"upstream unreachable")
        return client
    relay = Relay(
        provider,
        client,
        upstream,
        lambda: app[ENGINE].engine,
        claims.viseme_model,
        metrics,
        inject=app[SETTINGS].visemes,
        use_text=app[SETTINGS].text_informed,
    )
    session = Session(claims, relay)
    app[SESSIONS].add(session)
    metrics.sessions.labels(provider.name).inc()
    try:
        await relay.run()
    finally:
        app[SESSIONS].discard(session)
        metrics.sessions.labels(provider.name).dec()
        await upstream.close()
    return client


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/conversation", conversation)
    app.router.add_get("/v1/conversation/realtime", conversation)
    app.router.add_get("/v1/realtime", conversation)
    # One or more slashes before ws/: SDKs given a base URL ending in / send //ws/.
    app.router.add_get(r"/{slashes:/*}ws/{method:[^/]+}", gemini)
