"""structlog set-up: one line per action, capitalised and past tense, with key/value pairs
("Created VirtualMachine", namespace=..., name=...), as Kubernetes components log.

kopf, aiohttp and the kubernetes client log through the standard library; their records are
rendered by the same structlog processors, so `--log-json` gives one JSON object per line
for every line the operator prints, whoever wrote it.
"""

from __future__ import annotations

import logging
import sys

import structlog

#: Libraries whose chatter stays at warnings unless -v asks for more.
QUIET_LIBRARIES = ("kopf", "aiohttp", "kubernetes", "asyncio")


def configure_logging(*, json_lines: bool = False, verbose: bool = False) -> None:
    """Console lines for people (`vdcos up`), JSON lines for log collectors (`vdcos run`)."""
    level = logging.DEBUG if verbose else logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json_lines else _keep_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(level if verbose else logging.WARNING)


def _keep_exc_info(
    _: structlog.typing.WrappedLogger, __: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """The console renderer formats tracebacks itself (plainly: no locals are printed)."""
    return event


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """The logger of one controller."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
