"""Helpers shared by the Server-Sent Events routes (/v1/visemes, /v1/visemes-audio)."""

from __future__ import annotations

import json

from aiohttp import web

from .errors import AuthError, ForbiddenKey
from .guard import caller
from .keys import Key

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def require_api_key(request: web.Request) -> Key:
    """Bearer API key check answering 403, as the Mascot Bot API these routes mimic did."""
    try:
        return caller(request)
    except AuthError:
        raise ForbiddenKey() from None


def sse(payload: dict[str, object], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()
