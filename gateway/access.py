"""Who is calling (a request's API key) and whether a signed-URL token is alive."""

from __future__ import annotations

from aiohttp import web

from .apikeys import ApiKey
from .errors import TokenError, TokenRevoked
from .state import AUTH, CODEC, METRICS, STORE
from .tokens import TokenClaims


def api_key(request: web.Request) -> ApiKey:
    return request.app[AUTH].authenticate(request.headers.get("Authorization"))


async def verify_token(app: web.Application, token: str) -> TokenClaims:
    """Decrypt, validate and check revocation; StoreUnavailable fails closed."""
    try:
        claims = app[CODEC].decode(token)
        if await app[STORE].is_revoked(claims.sub, claims.jti, claims.iat):
            raise TokenRevoked("Token has been revoked")
    except TokenError as exc:
        app[METRICS].tokens_rejected.labels(exc.reason).inc()
        raise
    return claims
