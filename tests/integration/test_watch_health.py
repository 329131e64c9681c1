"""The operator notices a watch that keeps failing: one log line (not one per retry), the
failing watch in `/healthz` (resource, since when, the server's message), a metric counting
the failures; and it says so when the watch works again.

The operator runs as deployed (`vdcos run --liveness --metrics`) against `python -m
devcluster --no-sim`, whose fault API answers 500 to every list and watch of VDC VMs, or
breaks every watch stream of them after its headers (which kopf retries without a word).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import devcluster_with_vdc_crds
from tests.integration.faults import get_faults, put_faults

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

SERVER_MESSAGE = "etcdserver: request timed out"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def until(check: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    """Ask `check` until it answers; the operator's HTTP endpoints have nothing to watch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:g}s: {what}")


class Operator:
    def __init__(self, cluster: DevCluster, *extra: str) -> None:
        self.health_url = f"http://127.0.0.1:{free_port()}/healthz"
        self.metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
        self.log_path = cluster.workdir / "operator.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "controllers.cli", "run", "--kubeconfig",
                 str(cluster.kubeconfig), "--liveness", self.health_url,
                 "--metrics", self.metrics_url, *extra],
                stdout=log, stderr=subprocess.STDOUT, cwd=cluster.workdir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(http_get(self.health_url))
        return answer

    def failing_watches(self) -> list[dict[str, Any]]:
        return list(self.health()["watches"]["failingWatches"])

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def apply_vm(cluster: DevCluster, name: str) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=(
        f"apiVersion: vdcos.io/v1alpha1\nkind: VirtualMachine\nmetadata:\n  name: {name}\n"
        "  namespace: default\nspec:\n  cpu:\n    count: 1\n  memory:\n    size: 256Mi\n"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevCluster]:
    # kopf's watches are cut every second, so that a re-watch meets a fault soon after it
    # is set (a cut applies to the watches that start after it).
    cluster = devcluster_with_vdc_crds(tmp_path, "--no-sim", "--fault-watch-cut-seconds", "1")
    yield cluster
    cluster.stop()


@pytest.fixture
def operator(server: DevCluster) -> Iterator[Operator]:
    # The probe looks every second, so that a stream kopf retries silently shows up soon.
    running = Operator(server, "--watch-probe-seconds", "1")
    until(lambda: running.health(), "the operator serves /healthz")
    yield running
    running.stop()


def test_a_failing_watch_is_logged_shown_in_healthz_and_counted(
    server: DevCluster, operator: Operator,
) -> None:
    assert operator.failing_watches() == []
    put_faults(server, {
        "errors": [{"code": 500, "share": 1, "verbs": ["list", "watch"],
                    "resource": "vdcos.io/virtualmachines", "message": SERVER_MESSAGE}],
        "watchCut": {"seconds": 1},
    })
    failing = until(lambda: [w for w in operator.failing_watches() if w["failures"] >= 2]
                    or None, "/healthz lists the failing watch")
    assert [(w["resource"], w["lastMessage"], w["lastCode"]) for w in failing] == [
        ("virtualmachines.vdcos.io", SERVER_MESSAGE, 500)]
    since = time.mktime(time.strptime(failing[0]["since"], "%Y-%m-%dT%H:%M:%S+00:00"))
    assert abs(since - time.mktime(time.gmtime())) < 60

    metrics = http_get(operator.metrics_url)
    sample = 'vdcos_watch_failures_total{resource="virtualmachines.vdcos.io"}'
    counted = [line for line in metrics.splitlines() if line.startswith(sample)]
    assert len(counted) == 1 and float(counted[0].split()[-1]) >= 2, metrics
    assert 'vdcos_watch_failing{resource="virtualmachines.vdcos.io"} 1' in metrics

    # One line for the first failure, with the resource and the server's message; kopf's
    # own line per retry is replaced by it.
    log = operator.log()
    failing_lines = [line for line in log.splitlines() if "Watch failing" in line]
    assert len(failing_lines) == 1, log
    assert "virtualmachines.vdcos.io" in failing_lines[0]
    assert SERVER_MESSAGE in failing_lines[0]
    assert "will retry" not in log

    # The server heals: the next event of the resource shows the watch works again.
    put_faults(server, {"errors": [], "watchCut": {"seconds": 1}})
    apply_vm(server, "probe")
    until(lambda: operator.failing_watches() == [] or None, "/healthz lists no failing watch")
    assert "Watch recovered" in operator.log()
    assert 'vdcos_watch_failing{resource="virtualmachines.vdcos.io"} 0' in http_get(
        operator.metrics_url)
    assert operator.process.poll() is None


def test_a_watch_stream_that_always_breaks_is_noticed(
    server: DevCluster, operator: Operator,
) -> None:
    """kopf logs nothing when a stream breaks after its headers and watches again at once
    (kopf/_cogs/clients/watching.py): the operator's probe sees it."""
    apply_vm(server, "seen")  # the operator has a resourceVersion of the kind to watch from
    until(lambda: "Created VirtualMachine" in operator.log() or "Failed reconcile" in
          operator.log() or None, "the operator saw the VM")
    put_faults(server, {
        "errors": [{"code": 500, "share": 1, "verbs": ["watch"],
                    "resource": "vdcos.io/virtualmachines", "midStream": True}],
        "watchCut": {"seconds": 1},
    })
    [failing] = until(lambda: operator.failing_watches() or None,
                      "/healthz lists the broken watch")
    assert failing["resource"] == "virtualmachines.vdcos.io"
    assert failing["lastMessage"].startswith("the watch stream broke before its end")
    assert get_faults(server)["brokenWatches"] > 1
    failing_lines = [line for line in operator.log().splitlines() if "Watch failing" in line]
    assert len(failing_lines) == 1 and "virtualmachines.vdcos.io" in failing_lines[0]

    put_faults(server, {"errors": [], "watchCut": {"seconds": 1}})
    until(lambda: "Watch recovered" in operator.log() or None, "the operator says it recovered")
    until(lambda: operator.failing_watches() == [] or None, "/healthz lists no failing watch")
