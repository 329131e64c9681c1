"""Fixtures for the simulated-hosts tests: `python -m devcluster` with 3 hosts, no operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import DevCluster, start_devcluster

HOSTS = ("host-1", "host-2", "host-3")
# Short timings so that failures show within seconds (the defaults are Kubernetes' own).
FAST_TIMINGS = ("--node-grace-seconds", "3", "--node-monitor-seconds", "0.5",
                "--node-status-seconds", "0.5", "--pod-gc-seconds", "1")


def wait_for_hosts(cluster: DevCluster, hosts: tuple[str, ...] = HOSTS) -> None:
    names = [f"node/{host}" for host in hosts]
    cluster.kubectl("wait", "--for=create", *names, "--timeout=60s", timeout=70)
    cluster.kubectl("wait", "--for=condition=Ready", *names, "--timeout=60s", timeout=70)


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """`python -m devcluster` with 3 simulated hosts, one per test module, all Ready."""
    cluster = start_devcluster(tmp_path_factory.mktemp("datacenter"), "--hosts", str(len(HOSTS)),
                               *FAST_TIMINGS)
    try:
        wait_for_hosts(cluster)
        yield cluster
    finally:
        cluster.stop()
