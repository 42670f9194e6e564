"""Logging set-up: one format, and client garbage logged as a line, not a traceback."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


class _BadRequestFilter(logging.Filter):
    """aiohttp logs a malformed HTTP request at ERROR with a traceback, although it
    only answers 400: that is the client's fault, worth one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {exc.message or type(exc).__name__}"
            record.args = None
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.server").addFilter(_BadRequestFilter())
