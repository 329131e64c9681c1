"""structlog set-up: one line per action, capitalised and past tense, with key/value pairs
("Created VirtualMachine", namespace=..., name=...), as Kubernetes components log."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(*, json_lines: bool = False, verbose: bool = False) -> None:
    """Console lines for people (`vdcos up`), JSON lines for log collectors (`vdcos run`)."""
    level = logging.DEBUG if verbose else logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # kopf logs through the standard library; keep its chatter at warnings unless asked.
    logging.basicConfig(
        level=level if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kopf").setLevel(level if verbose else logging.WARNING)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """The logger of one controller."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
