"""A host powered off: NotReady, no new VMIs, and its VMs back elsewhere once fenced."""

from __future__ import annotations

import pytest

from tests.harness import DevCluster

from .conftest import apply, condition, get, vm_manifest, wait_for

pytestmark = pytest.mark.slow


def test_powered_off_host_and_out_of_service_taint(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("victim"))
    vmi = wait_for(lambda: (v := get(cluster, "vmi", "victim")) and
                   (v.get("status") or {}).get("phase") == "Running" and v,
                   message="victim Running")
    host = vmi["status"]["nodeName"]
    cluster.kubectl("annotate", "node", host, "sim.vdcos.io/power=off")

    node = wait_for(lambda: (n := get(cluster, "node", host, namespace="")) and
                    condition(n, "Ready").get("status") == "Unknown" and n,
                    message="host NotReady")
    assert condition(node, "Ready")["reason"] == "NodeStatusUnknown"
    wait_for(lambda: (get(cluster, "node", host, namespace="")["metadata"]["labels"]
                      .get("kubevirt.io/schedulable") == "false"),
             message="virt-controller marks the host unschedulable for VMIs")
    # The launcher pod still exists (the kubelet is gone): the VMI is not failed yet.
    still = get(cluster, "vmi", "victim")
    assert still["metadata"]["uid"] == vmi["metadata"]["uid"]
    assert still["status"]["phase"] == "Running"

    apply(cluster, vm_manifest("newcomer"))
    newcomer = wait_for(lambda: (v := get(cluster, "vmi", "newcomer")) and
                        (v.get("status") or {}).get("phase") == "Running" and v,
                        message="a new VM runs elsewhere")
    assert newcomer["status"]["nodeName"] != host

    cluster.kubectl("taint", "node", host,
                    "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute")

    def replaced() -> dict[str, object] | None:
        current = get(cluster, "vmi", "victim")
        status = current.get("status") or {}
        moved = current and current["metadata"]["uid"] != vmi["metadata"]["uid"]
        return current if moved and status.get("phase") == "Running" else None

    again = wait_for(replaced, timeout=60, message="victim running again on another host")
    assert again["status"]["nodeName"] != host  # type: ignore[index]
    wait_for(lambda: get(cluster, "vm", "victim")["status"]["printableStatus"] == "Running",
             message="the VM reports Running again")
