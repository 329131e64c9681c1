"""VMs that were live-migrated (a CPU hot-plug's workload update, or a plain migration) stop,
start and recover from a host failure like VMs that never moved.

A migration leaves the source virt-launcher pod behind in phase Succeeded; these scenarios
are the ones that once tripped over that pod.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import DevCluster

from .conftest import apply, get, subresource, vm_manifest, wait_for

pytestmark = pytest.mark.slow


def phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def printable_status(cluster: DevCluster, name: str) -> str:
    return str((get(cluster, "vm", name).get("status") or {}).get("printableStatus") or "")


def running_vmi(cluster: DevCluster, name: str, timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        vmi = get(cluster, "vmi", name)
        return vmi if phase(vmi) == "Running" else None

    return wait_for(check, timeout=timeout, message=f"VMI {name} Running")


def hot_plug_one_socket(cluster: DevCluster, name: str) -> dict[str, Any]:
    """sockets 1 -> 2 on a running VM: applied by a workload-update migration."""
    cluster.kubectl("patch", "vm", name, "--type", "merge", "-p", json.dumps(
        {"spec": {"template": {"spec": {"domain": {"cpu": {"sockets": 2}}}}}}))

    def migrated() -> dict[str, Any] | None:
        migrations = json.loads(cluster.kubectl(
            "get", "vmim", "-l", f"kubevirt.io/vmi-name={name}", "-o", "json").stdout)["items"]
        done = [m for m in migrations if phase(m) == "Succeeded"]
        return done[0] if done else None

    migration = wait_for(migrated, message=f"the workload-update migration of {name}")
    assert migration["metadata"]["name"].startswith("kubevirt-workload-update-")
    vmi = get(cluster, "vmi", name)
    assert vmi["status"]["currentCPUTopology"]["sockets"] == 2
    return vmi


def launcher_pods(cluster: DevCluster, name: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = json.loads(cluster.kubectl(
        "get", "pods", "-l", f"vm.kubevirt.io/name={name}", "-o", "json").stdout)["items"]
    return pods


def halt(cluster: DevCluster, name: str) -> None:
    cluster.kubectl("patch", "vm", name, "--type", "merge", "-p",
                    json.dumps({"spec": {"runStrategy": "Halted"}}))


def test_vm_halted_after_cpu_hotplug_stops(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("hot-halt").replace("sockets: 1", "sockets: 1\n          "
                                                  "maxSockets: 4"))
    running_vmi(cluster, "hot-halt")
    hot_plug_one_socket(cluster, "hot-halt")
    phases = sorted(phase(p) for p in launcher_pods(cluster, "hot-halt"))
    assert phases == ["Running", "Succeeded"]  # the migration's source pod stays, Completed

    halt(cluster, "hot-halt")
    wait_for(lambda: printable_status(cluster, "hot-halt") == "Stopped", timeout=30,
             message="the VM Stopped")
    wait_for(lambda: not get(cluster, "vmi", "hot-halt"), message="the VMI gone")
    assert launcher_pods(cluster, "hot-halt") == []


def test_vm_halted_after_live_migration_starts_again(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("moved-restart"))
    before = running_vmi(cluster, "moved-restart")
    assert subresource(cluster, "virtualmachines", "moved-restart", "migrate") == 202
    moved = wait_for(lambda: (v := get(cluster, "vmi", "moved-restart")) and
                     v["status"]["nodeName"] != before["status"]["nodeName"] and v,
                     message="the VMI on another host")
    assert moved["metadata"]["uid"] == before["metadata"]["uid"]

    halt(cluster, "moved-restart")
    wait_for(lambda: printable_status(cluster, "moved-restart") == "Stopped",
             message="the VM Stopped")
    assert subresource(cluster, "virtualmachines", "moved-restart", "start") == 202
    again = running_vmi(cluster, "moved-restart")
    assert again["metadata"]["uid"] != before["metadata"]["uid"]
    wait_for(lambda: printable_status(cluster, "moved-restart") == "Running",
             message="the VM Running again")


def power(cluster: DevCluster, host: str, state: str) -> None:
    cluster.kubectl("annotate", "node", host, f"sim.vdcos.io/power={state}", "--overwrite")


def node_ready(cluster: DevCluster, host: str) -> str:
    node = get(cluster, "node", host, namespace="")
    for item in (node.get("status") or {}).get("conditions") or []:
        if item.get("type") == "Ready":
            return str(item.get("status"))
    return ""


OUT_OF_SERVICE = "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute"


def test_hotplugged_restarted_vm_comes_back_after_its_host_is_fenced(
        cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("fenced"))
    running_vmi(cluster, "fenced")
    hot_plug_one_socket(cluster, "fenced")
    halt(cluster, "fenced")
    wait_for(lambda: printable_status(cluster, "fenced") == "Stopped", message="Stopped")
    assert subresource(cluster, "virtualmachines", "fenced", "start") == 202
    started = running_vmi(cluster, "fenced")
    host = started["status"]["nodeName"]

    power(cluster, host, "off")
    try:
        wait_for(lambda: node_ready(cluster, host) == "Unknown", message="the host NotReady")
        cluster.kubectl("taint", "node", host, OUT_OF_SERVICE)
        cluster.kubectl("delete", "vmi", "fenced", "--force", "--grace-period=0",
                        "--wait=false")

        def elsewhere() -> dict[str, Any] | None:
            vmi = get(cluster, "vmi", "fenced")
            moved = vmi and vmi["metadata"]["uid"] != started["metadata"]["uid"]
            return vmi if moved and phase(vmi) == "Running" else None

        again = wait_for(elsewhere, timeout=90, message="the VM Running on another host")
        assert again["status"]["nodeName"] != host
        assert again["status"]["currentCPUTopology"]["sockets"] == 2
        wait_for(lambda: printable_status(cluster, "fenced") == "Running",
                 message="the VM reports Running")
    finally:
        cluster.kubectl("taint", "node", host, OUT_OF_SERVICE + "-", check=False)
        power(cluster, host, "on")
        wait_for(lambda: node_ready(cluster, host) == "True", message="the host back")


def test_migrated_vm_whose_host_failed_runs_again_once_the_host_is_back(
        cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("moved-failed"))
    before = running_vmi(cluster, "moved-failed")
    assert subresource(cluster, "virtualmachines", "moved-failed", "migrate") == 202
    moved = wait_for(lambda: (v := get(cluster, "vmi", "moved-failed")) and
                     v["status"]["nodeName"] != before["status"]["nodeName"] and v,
                     message="the VMI on another host")
    host = moved["status"]["nodeName"]

    power(cluster, host, "off")
    try:
        wait_for(lambda: node_ready(cluster, host) == "Unknown", message="the host NotReady")
        cluster.kubectl("taint", "node", host, OUT_OF_SERVICE)

        def failed() -> bool:
            vmi = get(cluster, "vmi", "moved-failed")
            return not vmi or vmi["metadata"]["uid"] != moved["metadata"]["uid"] or \
                phase(vmi) == "Failed"

        wait_for(failed, timeout=60, message="the VMI of the fenced host Failed")
    finally:
        cluster.kubectl("taint", "node", host, OUT_OF_SERVICE + "-", check=False)
        power(cluster, host, "on")
    wait_for(lambda: node_ready(cluster, host) == "True", message="the host back")

    def running_again() -> dict[str, Any] | None:
        vmi = get(cluster, "vmi", "moved-failed")
        replaced = vmi and vmi["metadata"]["uid"] != moved["metadata"]["uid"]
        return vmi if replaced and phase(vmi) == "Running" else None

    wait_for(running_again, timeout=60, message="a new VMI Running")
    wait_for(lambda: printable_status(cluster, "moved-failed") == "Running",
             message="the VM reports Running")
