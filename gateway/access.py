"""Who is calling: the Bearer API key of a request."""

from __future__ import annotations

from aiohttp import web

from .apikeys import ApiKey
from .state import AUTH


def api_key(request: web.Request) -> ApiKey:
    return request.app[AUTH].authenticate(request.headers.get("Authorization"))
