"""HTTP plumbing shared by the routes: JSON bodies, errors and request metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestPayloadError

from .errors import BadRequest, GatewayError, PayloadTooLarge
from .state import METRICS

log = logging.getLogger("gateway")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def read_json(request: web.Request, limit: int) -> object:
    """The request body as JSON, refusing bodies over `limit` bytes with 413."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body larger than {limit} bytes")
    body = bytearray()
    try:
        while len(body) <= limit:
            chunk = await request.content.read(limit + 1 - len(body))
            if not chunk:
                break
            body += chunk
    except (BadHttpMessage, RequestPayloadError):  # e.g. "gzip" on a body that is not gzip
        raise BadRequest("Request body could not be decoded (Content-Encoding)") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body larger than {limit} bytes")
    try:
        return json.loads(body)
    except RecursionError:
        raise BadRequest("Request body is nested too deeply") from None
    except ValueError:  # not JSON, not UTF-8, or an integer of more than 4,300 digits
        raise BadRequest("Request body is not valid JSON") from None


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map the error tree to JSON responses; nothing unexpected leaks a traceback."""
    try:
        return await handler(request)
    except GatewayError as exc:
        response = json_error(exc.status, exc.message)
        response.headers.update(exc.headers)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_error(exc.status, exc.reason)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "Internal server error")


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        metrics.requests.labels(name, request.method, str(status)).inc()
        metrics.latency.labels(name).observe(time.perf_counter() - started)
