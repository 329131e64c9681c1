"""Simulated hosts join as Nodes with capacity, labels, NICs and Lease heartbeats."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from kubernetes import client, watch

from tests.harness import DevCluster
from tests.integration.sim.conftest import HOSTS

from .helpers import get_json

pytestmark = pytest.mark.kubectl


def test_hosts_join_with_capacity_labels_and_nics(datacenter: DevCluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in get_json(datacenter, "nodes")["items"]}
    assert sorted(nodes) == sorted(HOSTS)
    cidrs = set()
    for name, node in nodes.items():
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == name
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["kubernetes.io/arch"] == "amd64"
        assert labels["topology.kubernetes.io/zone"] == "zone-a"
        assert "node-role.kubernetes.io/worker" in labels
        assert node["status"]["capacity"]["cpu"] == "32"
        assert node["status"]["capacity"]["memory"] == "128Gi"
        assert node["status"]["allocatable"]["pods"] == "110"
        nics = json.loads(node["metadata"]["annotations"]["sim.vdcos.io/nics"])
        assert [nic["name"] for nic in nics] == ["eth0", "eth1", "eth2"]
        assert all(nic["state"] == "up" for nic in nics)
        cidrs.add(ipaddress.ip_network(node["spec"]["podCIDR"]))
    assert len(cidrs) == len(HOSTS), "every host has its own pod CIDR"
    assert "Host host-1 joined" in datacenter.log()


def test_kubectl_shows_hosts_ready(datacenter: DevCluster) -> None:
    table = datacenter.kubectl("get", "nodes", "--no-headers").stdout
    rows = [line.split() for line in table.splitlines()]
    assert {(row[0], row[1]) for row in rows} == {(host, "Ready") for host in HOSTS}


def test_leases_are_renewed(datacenter: DevCluster) -> None:
    api = client.CoordinationV1Api(datacenter.api_client())
    first: Any = api.read_namespaced_lease("host-2", "kube-node-lease")
    assert first.spec.holder_identity == "host-2"
    renewed: Any = None
    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    for event in watcher.stream(
        api.list_namespaced_lease, "kube-node-lease", field_selector="metadata.name=host-2",
        resource_version=first.metadata.resource_version, timeout_seconds=15,
    ):
        lease = event["object"]
        if lease.spec.renew_time != first.spec.renew_time:
            renewed = lease
            break
    assert renewed is not None, "the lease was not renewed within 15 s"
    assert renewed.spec.renew_time > first.spec.renew_time
