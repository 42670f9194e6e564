"""HTTP plumbing shared by the routes: JSON bodies, errors and request metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestPayloadError

from .errors import HTTP_CODES, BadRequest, GatewayError, PayloadTooLarge, RequestTimeout
from .state import KEY_ID, METRICS, SETTINGS

log = logging.getLogger("gateway")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str, code: str, **extra: Any) -> web.Response:
    """Every JSON error: a message for people and a stable `code` for programs."""
    return web.json_response({"error": message, "code": code, **extra}, status=status)


async def read_json(request: web.Request, limit: int) -> object:
    """The request body as JSON, refusing bodies over `limit` bytes with 413."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body larger than {limit} bytes")
    body = bytearray()
    wait = request.app[SETTINGS].body_timeout_seconds  # between two reads, as nginx counts
    try:
        while len(body) <= limit:
            async with asyncio.timeout(wait):
                chunk = await request.content.read(limit + 1 - len(body))
            if not chunk:
                break
            body += chunk
    except (BadHttpMessage, RequestPayloadError):  # e.g. "gzip" on a body that is not gzip
        raise BadRequest("Request body could not be decoded (Content-Encoding)") from None
    except TimeoutError:
        raise RequestTimeout(f"No request body data for {wait:g} s") from None
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
        response = json_error(exc.status, exc.message, exc.code)
        response.headers.update(exc.headers)
        refused = request.app[METRICS].refusals
        refused.labels(request.get(KEY_ID, "-"), exc.code).inc()
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_CODES.get(exc.status, "BAD_REQUEST" if exc.status < 500 else "INTERNAL")
        response = json_error(exc.status, exc.reason, code)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "Internal server error", "INTERNAL")


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
