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
    return wait_for(lambda: (v := get(cluster, "vmi", name)) and phase(v) == "Running" and v,
                    timeout=timeout, message=f"VMI {name} Running")


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
