"""Log level of the embedded datacenter's processes: info, or debug with DEVCLUSTER_DEBUG=1.

Without it structlog prints debug lines too (retried conflicts, broken watches), which are
normal traffic, not news for a user watching `vdcos up`.
"""

from __future__ import annotations

import logging
import os

import structlog


def configure_log_level() -> None:
    level = logging.DEBUG if os.environ.get("DEVCLUSTER_DEBUG") == "1" else logging.INFO
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
