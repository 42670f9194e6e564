"""Browsers on the HTTP API: CORS per key, closed unless the key's policy lists the Origin.

A preflight (OPTIONS with Access-Control-Request-Method) carries no API key, so
it is answered for an Origin that any enabled key allows; the request itself
is then checked against its own key (gateway/guard.py, 403 ORIGIN_NOT_ALLOWED)
and only an allowed Origin gets Access-Control-Allow-Origin back. A request
without Origin (a server) and one from the gateway's own origin (/demo) need
none of this. Every response also gets nosniff and a Referrer-Policy.
"""

from __future__ import annotations

from aiohttp import web

from .errors import OriginNotAllowed
from .guard import own_origin
from .http import Handler
from .state import AUTH, KEY_ID

PREFLIGHT_MAX_AGE = "600"
ALLOW_HEADERS = "Authorization, Content-Type"
EXPOSE_HEADERS = "Retry-After"


def _cross_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin is None or origin.lower() == own_origin(request):
        return None
    return origin


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = _cross_origin(request)
    preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    if origin is None or not preflight or not request.path.startswith("/v1/"):
        return await handler(request)
    keys = request.app[AUTH].ring.keys
    if not any(k.enabled and k.policy.allows_origin(origin) for k in keys):
        raise OriginNotAllowed(f"Origin {origin} is not allowed")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            "Vary": "Origin",
        },
    )


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Before any response's headers go out: its CORS headers, if its key allows the Origin."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    origin = _cross_origin(request)
    key_id = request.get(KEY_ID)
    if origin is None or key_id is None or not request.path.startswith("/v1/"):
        return
    key = request.app[AUTH].get(key_id)
    if key is not None and key.policy.allows_origin(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response.headers.add("Vary", "Origin")
