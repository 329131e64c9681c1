"""Logging of the embedded datacenter's processes: info, or debug with DEVCLUSTER_DEBUG=1.

Without it structlog prints debug lines too (retried conflicts, broken watches), which are
normal traffic, not news for a user watching `vdcos up`.

Tracebacks are printed plain: structlog's default renderer uses rich when it is installed,
with the locals of every frame, and rendering those for a deeply nested request body cost
the API server seconds of its event loop and kilobytes of log per request.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog
from aiohttp.http_exceptions import HttpProcessingError


class OneLineClientErrors(logging.Filter):
    """aiohttp logs a request it could not parse (a request line over 8 KiB, a broken
    header) with a traceback, though it only answered 400: one line says as much."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error.message[:200]}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def configure_log_level() -> None:
    level = logging.DEBUG if os.environ.get("DEVCLUSTER_DEBUG") == "1" else logging.INFO
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.StackInfoRenderer(),
            structlog.dev.set_exc_info,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            # Colours only on a terminal: a log file or a pipe (`vdcos up`'s children, CI)
            # gets plain text that grep finds.
            structlog.dev.ConsoleRenderer(
                colors=sys.stdout.isatty() and "NO_COLOR" not in os.environ,
                exception_formatter=structlog.dev.plain_traceback),
        ],
    )
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, OneLineClientErrors) for f in server_log.filters):
        server_log.addFilter(OneLineClientErrors())
