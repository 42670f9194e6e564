"""POST /v1/get-signed-url, /v1/tokens/revoke and /v1/tokens/introspect."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from providers.base import signed_url_answer

from . import routes_stream, schemas
from .access import api_key
from .errors import Forbidden, TokenError
from .guard import allow
from .http import read_json
from .state import CODEC, LIMITER, METRICS, REGISTRY, SETTINGS, STORE

# Token requests are small; a tight limit keeps junk from being buffered.
BODY_LIMIT = 64 * 1024


def public_base(request: web.Request) -> str:
    """The configured public URL, or the one the client used to reach us."""
    configured = request.app[SETTINGS].public_url
    return configured or f"{request.scheme}://{request.host}"


async def get_signed_url(request: web.Request) -> web.Response:
    key = api_key(request)
    providers = request.app[REGISTRY]
    body = schemas.parse(
        providers.signed_url_request,
        await read_json(request, BODY_LIMIT),
        "Invalid provider config",
    )
    spec: Any = getattr(body, "config")  # noqa: B009  # a model built from the registry
    provider_config = spec.provider_config.model_dump(exclude_none=True)
    viseme_model = provider_config.pop("viseme_model")
    allow(key, spec.provider, viseme_model)
    policy = key.policy  # counted once the request is valid, before any work
    await request.app[LIMITER].rate(
        "signed-url", key.key_id, policy.signed_urls_per_second, policy.signed_url_burst
    )
    token, claims = request.app[CODEC].issue(
        sub=key.key_id,
        provider=spec.provider,
        provider_config=provider_config,
        viseme_model=viseme_model,
    )
    request.app[METRICS].tokens_issued.labels(spec.provider).inc()
    base, expires_at = public_base(request), int(claims.exp)
    if spec.provider in providers.local:  # served here: the streaming viseme endpoint
        answer = signed_url_answer(base, routes_stream.PATH, token, expires_at)
    else:
        answer = providers[spec.provider].signed_response(token, base, expires_at)
    return web.json_response(answer)


async def revoke(request: web.Request) -> web.Response:
    key = api_key(request)
    body = schemas.parse(schemas.RevokeRequest, await read_json(request, BODY_LIMIT), "Invalid")
    codec, store = request.app[CODEC], request.app[STORE]
    now = time.time()
    longest = codec.lifetime + codec.leeway
    kind: str
    result: dict[str, object]
    if body.token is not None:
        try:
            claims = codec.decode(body.token, verify_exp=False)
        except TokenError as exc:
            # RFC 7009 2.2: an invalid token is no error; it cannot be used anyway.
            return web.json_response({"revoked": "none", "detail": exc.message})
        if claims.sub != key.key_id:
            raise Forbidden("Token was issued to another API key")
        remaining = claims.exp + codec.leeway - now
        if remaining > 0:
            await store.revoke_jti(key.key_id, claims.jti, remaining)
        kind, result = "token", {"revoked": "token", "jti": claims.jti}
    elif body.jti is not None:
        await store.revoke_jti(key.key_id, body.jti, longest)
        kind, result = "jti", {"revoked": "jti", "jti": body.jti}
    else:
        await store.revoke_all(key.key_id, now, longest)
        kind, result = "all", {"revoked": "all", "issued_before": now}
    request.app[METRICS].revocations.labels(kind).inc()
    return web.json_response(result)


async def introspect(request: web.Request) -> web.Response:
    """RFC 7662 style: `active` and a few public claims, never provider secrets."""
    key = api_key(request)
    body = schemas.parse(schemas.IntrospectRequest, await read_json(request, BODY_LIMIT), "Invalid")
    rejected = request.app[METRICS].tokens_rejected
    try:
        claims = request.app[CODEC].decode(body.token)
    except TokenError as exc:
        rejected.labels(exc.reason).inc()
        return web.json_response({"active": False})
    if claims.sub != key.key_id:
        return web.json_response({"active": False})
    revoked = await request.app[STORE].is_revoked(claims.sub, claims.jti, claims.iat)
    if revoked:
        rejected.labels("revoked").inc()
    return web.json_response(
        {
            "active": not revoked,
            "jti": claims.jti,
            "exp": claims.exp,
            "iat": claims.iat,
            "provider": claims.provider,
            "viseme_model": claims.viseme_model,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/get-signed-url", get_signed_url)
    app.router.add_post("/v1/tokens/revoke", revoke)
    app.router.add_post("/v1/tokens/introspect", introspect)
