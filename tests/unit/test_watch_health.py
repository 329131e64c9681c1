"""Watch health from kopf's records: parsed as kopf words them, logged once then every N."""

from __future__ import annotations

import logging

from structlog.testing import capture_logs

from controllers.common.metrics import exposition
from controllers.common.watch_health import (
    KOPF_WATCH_LOGGER,
    WatchFailure,
    WatchHealth,
    install,
    parse_kopf_record,
    uninstall,
)

# As kopf 1.45 logs it (kopf/_cogs/clients/api.py), for a watch the server answered 500.
KOPF_LINE = (
    "Request attempt #3/9 failed; will retry: GET https://127.0.0.1:6443/apis/vdcos.io/"
    "v1alpha1/namespaces/fleet/virtualmachines?watch=true&resourceVersion=42 -> "
    "APIServerError('etcdserver: request timed out', {'kind': 'Status', 'apiVersion': 'v1', "
    "'metadata': {}, 'status': 'Failure', 'message': 'etcdserver: request timed out', "
    "'reason': 'InternalError', 'code': 500}, status=500)")


def test_kopfs_line_gives_the_resource_and_the_servers_message() -> None:
    assert parse_kopf_record(KOPF_LINE) == WatchFailure(
        "virtualmachines.vdcos.io", "etcdserver: request timed out", 500, final=False)
    core = parse_kopf_record(
        "Request attempt #9/9 failed; escalating: GET https://h/api/v1/pods?watch=true -> "
        "ClientConnectorError(ConnectionKey(host='h'), ConnectionRefusedError(111, 'no'))")
    assert core is not None and core.resource == "pods" and core.final and core.code is None
    assert "ConnectionRefusedError" in core.message
    assert parse_kopf_record("Watcher for pods has failed") is None


def test_logged_on_the_first_failure_then_every_tenth_then_recovered() -> None:
    health = WatchHealth(log_every=10)
    failure = parse_kopf_record(KOPF_LINE)
    assert failure is not None
    with capture_logs() as logs:
        for second in range(25):
            health.record_failure(failure, now=1000.0 + second)
        health.record_success("virtualmachines.vdcos.io", now=1030.0)
        health.record_success("virtualmachines.vdcos.io", now=1031.0)
    assert [(entry["event"], entry.get("failures")) for entry in logs] == [
        ("Watch failing", None), ("Watch still failing", 10), ("Watch still failing", 20),
        ("Watch recovered", 25)]
    assert logs[0]["message"] == "etcdserver: request timed out"
    assert logs[-1]["failing_seconds"] == 30
    assert health.report() == {"failingWatches": []}
    assert 'vdcos_watch_failures_total{resource="virtualmachines.vdcos.io"} 25' in exposition(
        health)


def test_the_filter_replaces_kopfs_line_per_retry_but_keeps_its_last() -> None:
    health = WatchHealth()
    watch_filter = install(health)
    kopf_logger = logging.getLogger(KOPF_WATCH_LOGGER)
    try:
        assert not watch_filter.filter(kopf_logger.makeRecord(
            KOPF_WATCH_LOGGER, logging.ERROR, "", 0, KOPF_LINE, (), None))
        last = KOPF_LINE.replace("#3/9 failed; will retry", "#9/9 failed; escalating")
        assert watch_filter.filter(kopf_logger.makeRecord(
            KOPF_WATCH_LOGGER, logging.ERROR, "", 0, last, (), None))
    finally:
        uninstall(watch_filter)
    assert watch_filter not in kopf_logger.filters
    [failing] = health.report()["failingWatches"]
    assert (failing["resource"], failing["failures"], failing["lastCode"]) == (
        "virtualmachines.vdcos.io", 2, 500)


def test_the_probe_clears_only_what_it_reported() -> None:
    health = WatchHealth()
    kopf_failure = parse_kopf_record(KOPF_LINE)
    assert kopf_failure is not None
    health.record_failure(kopf_failure, now=1.0)
    health.record_success("virtualmachines.vdcos.io", now=2.0, source="probe")
    assert [w["resource"] for w in health.report()["failingWatches"]] == [
        "virtualmachines.vdcos.io"]
    health.record_failure(WatchFailure("pods", "the watch stream broke", None, final=False,
                                       source="probe"), now=3.0)
    health.record_success("pods", now=4.0, source="probe")
    health.record_success("virtualmachines.vdcos.io", now=5.0)  # an event through kopf
    assert health.report() == {"failingWatches": []}
