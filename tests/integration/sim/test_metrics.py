"""metrics.k8s.io answers `kubectl top` from the simulated load."""

from __future__ import annotations

import json

import pytest

from tests.harness import DevCluster
from tests.integration.sim.conftest import HOSTS

from .helpers import apply, busybox_pod

pytestmark = pytest.mark.kubectl


def test_kubectl_top_nodes(datacenter: DevCluster) -> None:
    rows = [line.split() for line in
            datacenter.kubectl("top", "node", "--no-headers").stdout.splitlines()]
    assert sorted(row[0] for row in rows) == sorted(HOSTS)
    raw = json.loads(datacenter.kubectl(
        "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout)
    assert raw["kind"] == "NodeMetricsList"
    for item in raw["items"]:
        assert item["usage"]["cpu"].endswith("n") and item["usage"]["memory"].endswith("Ki")


def test_pod_usage_follows_the_vm_annotation(datacenter: DevCluster) -> None:
    datacenter.kubectl("wait", "--for=create", "crd/virtualmachines.kubevirt.io",
                       "--timeout=60s", timeout=70)
    datacenter.kubectl("wait", "crd/virtualmachines.kubevirt.io",
                       "--for=condition=Established", "--timeout=60s", timeout=70)
    apply(datacenter, """
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: loaded
  annotations: {sim.vdcos.io/cpu-usage: "1.5", sim.vdcos.io/memory-usage: 3Gi}
spec:
  runStrategy: Halted
  template:
    spec:
      domain:
        devices: {}
        resources: {requests: {memory: 64Mi}}
""")
    # A pod standing in for the VM's launcher: the same label virt-controller sets.
    apply(datacenter, busybox_pod("launcher", spec_extra="""
  - name: compute
    image: busybox:1.36
    command: ["sleep", "3600"]
""").replace("labels: {app: launcher}", "labels: {vm.kubevirt.io/name: loaded}"))
    datacenter.kubectl("wait", "pod/launcher", "--for=condition=Ready", "--timeout=30s")
    top = datacenter.kubectl("top", "pod", "launcher", "--containers", "--no-headers").stdout
    usage = {line.split()[1]: line.split()[2:] for line in top.splitlines()}
    assert usage["compute"] == ["1500m", "3072Mi"]
    assert usage["main"] == ["1m", "8Mi"]
    node = json.loads(datacenter.kubectl("get", "pod", "launcher", "-o", "json").stdout)[
        "spec"]["nodeName"]
    metrics = json.loads(datacenter.kubectl(
        "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{node}").stdout)
    assert metrics["usage"]["cpu"] == f"{(250 + 1500 + 1) * 1_000_000}n"
