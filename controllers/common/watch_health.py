"""The health of the operator's watches: which keep failing, since when, and why.

kopf retries a failing list or watch by itself (9 attempts over about a minute, then the
whole operator stops), and logs each attempt as one ERROR line with a traceback-free repr.
It offers no hook for watch errors, so we read them where kopf reports them: its log records
(`KopfWatchErrors`, a logging filter). From them `WatchHealth` keeps one entry per failing
resource, logs one line on the first failure and then one every `log_every` failures (in
place of kopf's line per retry), answers `/healthz` (through `@kopf.on.probe`) and counts
failures for `/metrics`. A watch is healthy again when an event of its resource arrives.
"""

from __future__ import annotations

import ast
import logging
import re
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from controllers.common.logging import get_logger

log = get_logger("vdcos.watches")

#: The logger kopf's list and watch requests log through (kopf/_cogs/clients/watching.py
#: hands its own logger to the API calls it makes).
KOPF_WATCH_LOGGER: Final = "kopf._cogs.clients.watching"
#: After the first failure of a watch, one line every this many failures.
LOG_EVERY: Final = 10

# kopf/_cogs/clients/api.py: f"Request attempt {idx} failed; will retry: {what} -> {e!r}"
# (or "escalating" for the last attempt), where `what` is "GET <url>".
_ATTEMPT_FAILED = re.compile(
    r"^Request attempt #\d+(?:/\d+)? failed; (?P<outcome>will retry|escalating): "
    r"GET (?P<url>\S+) -> (?P<error>.*)$", re.DOTALL)
# kopf's APIError repr: APIServerError('<the Status message>', {<the Status>}, status=500)
_API_ERROR = re.compile(r"^(?P<kind>\w+)\((?P<message>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")
_STATUS = re.compile(r"status=(?P<code>\d+)\)$")
_MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class WatchFailure:
    """One failed list or watch request, as kopf reported it."""

    resource: str  # "virtualmachines.vdcos.io", "pods"
    message: str  # the server's message, or the client error
    code: int | None  # the HTTP status, when the server answered
    final: bool  # kopf's last attempt: it stops the operator after this
    source: str = "kopf"  # "kopf" (its log records) or "probe" (common/watch_probe.py)


def resource_label(group: str, plural: str) -> str:
    """How a resource is named in logs, /healthz and metrics: `plural.group`, or `plural`."""
    return f"{plural}.{group}" if group else plural


def resource_of(url: str) -> str:
    """`plural.group` (`plural` for the core group) of a list or watch URL."""
    parts = [part for part in urllib.parse.urlsplit(url).path.split("/") if part]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return "/".join(parts)
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    return resource_label(group, rest[0] if rest else "")


def parse_kopf_record(message: str) -> WatchFailure | None:
    """The failure a kopf log line reports, or None for any other line."""
    attempt = _ATTEMPT_FAILED.match(message)
    if attempt is None:
        return None
    error = attempt["error"].strip()
    text = error
    api_error = _API_ERROR.match(error)
    if api_error is not None:
        try:
            text = str(ast.literal_eval(api_error["message"]))
        except (ValueError, SyntaxError):
            text = error
    status = _STATUS.search(error)
    return WatchFailure(resource=resource_of(attempt["url"]), message=text[:_MESSAGE_LIMIT],
                        code=int(status["code"]) if status else None,
                        final=attempt["outcome"] == "escalating")


@dataclass
class FailingWatch:
    resource: str
    since: float  # epoch seconds of the first failure in a row
    failures: int
    last_message: str
    last_code: int | None
    last_source: str = "kopf"

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource,
                "since": datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds"),
                "failures": self.failures, "lastMessage": self.last_message,
                "lastCode": self.last_code}


class WatchHealth:
    """Failing watches now, and failures counted since start (for the metric)."""

    def __init__(self, log_every: int = LOG_EVERY) -> None:
        self.log_every = log_every
        self.failing: dict[str, FailingWatch] = {}
        self.failures_total: Counter[str] = Counter()

    def record_failure(self, failure: WatchFailure, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.failures_total[failure.resource] += 1
        entry = self.failing.get(failure.resource)
        if entry is None:
            entry = self.failing[failure.resource] = FailingWatch(
                failure.resource, now, 0, failure.message, failure.code)
        entry.failures += 1
        entry.last_message, entry.last_code = failure.message, failure.code
        entry.last_source = failure.source
        if failure.final:
            log.error("Gave up watching; the operator stops", resource=failure.resource,
                      failures=entry.failures, failing_seconds=round(now - entry.since),
                      code=failure.code, message=failure.message)
        elif entry.failures == 1:
            log.warning("Watch failing", resource=failure.resource, code=failure.code,
                        message=failure.message)
        elif entry.failures % self.log_every == 0:
            log.warning("Watch still failing", resource=failure.resource,
                        failures=entry.failures, failing_seconds=round(now - entry.since),
                        code=failure.code, message=failure.message)

    def record_success(self, resource: str, now: float | None = None,
                       source: str | None = None) -> None:
        """An event of `resource` arrived (source None), or the probe's watch of it worked
        (source "probe": that clears only what the probe reported, since kopf's own list or
        watch may still fail where the probe's does not). Cheap when it was not failing."""
        entry = self.failing.get(resource)
        if entry is None or (source is not None and entry.last_source != source):
            return
        del self.failing[resource]
        now = time.time() if now is None else now
        log.info("Watch recovered", resource=resource, failures=entry.failures,
                 failing_seconds=round(now - entry.since))

    def report(self) -> dict[str, Any]:
        """What `/healthz` shows (kopf puts it under the probe's id)."""
        return {"failingWatches": [entry.to_json() for _, entry in sorted(self.failing.items())]}


class KopfWatchErrors(logging.Filter):
    """Feeds kopf's list/watch failure records to a WatchHealth, and drops kopf's own line
    for each retry: WatchHealth logs the first and every `log_every`-th instead.

    A filter on kopf's logger rather than a hook into kopf because kopf has none for watch
    errors: they stay inside kopf/_cogs/clients/watching.py, and patching that would break
    with any kopf release. The record format is pinned by tests/integration/test_watch_health.py.
    """

    def __init__(self, health: WatchHealth) -> None:
        super().__init__(KOPF_WATCH_LOGGER)
        self.health = health

    def filter(self, record: logging.LogRecord) -> bool:
        failure = parse_kopf_record(record.getMessage())
        if failure is None:
            return True
        self.health.record_failure(failure)
        return failure.final  # kopf's last attempt is kept: it says the operator stops


def install(health: WatchHealth) -> KopfWatchErrors:
    """Attach a filter feeding `health` to kopf's watch logger; `uninstall` removes it."""
    watch_filter = KopfWatchErrors(health)
    logging.getLogger(KOPF_WATCH_LOGGER).addFilter(watch_filter)
    return watch_filter


def uninstall(watch_filter: KopfWatchErrors) -> None:
    logging.getLogger(KOPF_WATCH_LOGGER).removeFilter(watch_filter)
