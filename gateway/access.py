"""Who is calling (a request's API key) and whether a signed-URL token is alive."""

from __future__ import annotations

from aiohttp import web

from .errors import TokenError, TokenRevoked
from .guard import caller
from .keys import Key
from .state import CODEC, METRICS, STORE
from .tokens import TokenClaims


def api_key(request: web.Request) -> Key:
    """The calling key (gateway/guard.py: enabled, from an allowed Origin)."""
    return caller(request)


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
