"""vMotion on request: VirtualMachineMigration driven with kubectl against `vdcos up`.

One datacenter of 3 hosts for the module; each test works in its own namespace and, where
placement matters, its own ComputeCluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import apply_yaml, get_json, wait

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

HOSTS = ("host-1", "host-2", "host-3")


def cluster_of(name: str, hosts: Iterable[str], rules: str = "") -> str:
    """A ComputeCluster of exactly these hosts."""
    values = ", ".join(hosts)
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata:
  name: {name}
spec:
  hostSelector:
    matchExpressions:
      - key: kubernetes.io/hostname
        operator: In
        values: [{values}]
{rules}
"""


def vm(name: str, cluster: str, *, memory: str = "1Gi", labels: str = "",
       disks: str = "") -> str:
    """A VM on the pod network (live-migratable unless a disk pins it)."""
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
  clusterName: {cluster}
  cpu:
    count: 1
  memory:
    size: {memory}
{disks}
"""


def migration(name: str, vm_name: str, target: str | None = None) -> str:
    target_line = f"\n  targetHost: {target}" if target else ""
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachineMigration
metadata:
  name: {name}
spec:
  virtualMachineName: {vm_name}{target_line}
"""


def host_of(cluster: DevCluster, namespace: str, name: str) -> str:
    wait(cluster, "--for=condition=Ready", f"vdcvm/{name}", "-n", namespace, timeout=90)
    host: str = get_json(cluster, "vdcvm", name, "-n", namespace)["status"]["host"]
    return host


def wait_phase(cluster: DevCluster, namespace: str, name: str, phase: str,
               timeout: int = 60) -> dict[str, Any]:
    wait(cluster, f"--for=jsonpath={{.status.phase}}={phase}", f"vdcvmm/{name}", "-n",
         namespace, timeout=timeout)
    result: dict[str, Any] = get_json(cluster, "vdcvmm", name, "-n", namespace)
    return result


def wait_host(cluster: DevCluster, namespace: str, name: str, host: str) -> None:
    """The VM's status follows its migration within moments (its status writes are paced)."""
    wait(cluster, f"--for=jsonpath={{.status.host}}={host}", f"vdcvm/{name}", "-n", namespace)


def vm_events(cluster: DevCluster, namespace: str, name: str) -> list[str]:
    events = get_json(cluster, "events", "-n", namespace,
                      f"--field-selector=involvedObject.name={name},"
                      "involvedObject.kind=VirtualMachine")
    return [f"{e['reason']}: {e['message']}" for e in events["items"]
            if e["involvedObject"].get("apiVersion", "").startswith("vdcos.io")]


def wait_event(cluster: DevCluster, namespace: str, name: str, text: str,
               timeout: float = 30) -> list[str]:
    """The VM's Events once one contains `text` (Events are posted right after the status
    write that a test waits for)."""
    deadline = time.monotonic() + timeout
    while True:
        events = vm_events(cluster, namespace, name)
        if any(text in event for event in events) or time.monotonic() > deadline:
            assert any(text in event for event in events), events
            return events


def test_vmotion_to_a_named_host(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, cluster_of("vmotion-named", HOSTS))
    apply_yaml(datacenter, vm("web", "vmotion-named"), namespace)
    source = host_of(datacenter, namespace, "web")
    target = next(host for host in HOSTS if host != source)

    apply_yaml(datacenter, migration("move-web", "web", target), namespace)
    done = wait_phase(datacenter, namespace, "move-web", "Succeeded")

    assert (done["status"]["sourceHost"], done["status"]["targetHost"]) == (source, target)
    assert done["status"]["startTime"] <= done["status"]["completionTime"]
    wait_host(datacenter, namespace, "web", target)
    kubevirt = get_json(datacenter, "vmim", done["status"]["kubevirtMigrationName"], "-n",
                        namespace)
    assert kubevirt["spec"]["addedNodeSelector"] == {"kubernetes.io/hostname": target}
    assert kubevirt["status"]["phase"] == "Succeeded"
    wait_event(datacenter, namespace, "web",
               f"VMotion: Migrated from {source} to {target} on request")
    table = datacenter.kubectl("get", "vdcvmm", "-n", namespace).stdout.split("\n")
    assert table[0].split() == ["NAME", "VM", "SOURCE", "TARGET", "PHASE", "AGE"]
    assert table[1].split()[:5] == ["move-web", "web", source, target, "Succeeded"]


def test_vmotion_without_a_target_lets_drs_pick(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, cluster_of("vmotion-any", HOSTS[:2]))
    apply_yaml(datacenter, vm("app", "vmotion-any"), namespace)
    source = host_of(datacenter, namespace, "app")

    apply_yaml(datacenter, migration("move-app", "app"), namespace)
    done = wait_phase(datacenter, namespace, "move-app", "Succeeded")

    # Two hosts in the cluster: the other one is the only choice.
    other = next(host for host in HOSTS[:2] if host != source)
    assert done["status"]["targetHost"] == other
    wait_host(datacenter, namespace, "app", other)


def refused(cluster: DevCluster, namespace: str, name: str, vm_name: str,
            target: str) -> dict[str, Any]:
    apply_yaml(cluster, migration(name, vm_name, target), namespace)
    result = wait_phase(cluster, namespace, name, "Failed")
    assert "kubevirtMigrationName" not in result["status"], result["status"]
    return result


def test_each_refusal_reason(datacenter: DevCluster, namespace: str) -> None:
    # Two hosts in the cluster (host-3 is outside), a Required rule keeping the db VMs apart,
    # two large VMs that leave no room for each other, and a VM pinned by an RWO disk.
    rules = """
  rules:
    - name: db-apart
      type: SeparateVirtualMachines
      enforcement: Required
      virtualMachineSelector:
        matchLabels: {app: db}
"""
    apply_yaml(datacenter, cluster_of("vmotion-refusals", HOSTS[:2], rules))
    apply_yaml(datacenter, """
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: vmotion-local
spec:
  provisioning: Thin
  storageClassName: standard
  accessMode: ReadWriteOnce
""")
    disk = """
  disks:
    - name: root
      size: 1Gi
      storagePolicyName: vmotion-local
"""
    apply_yaml(datacenter, "---".join([
        vm("db-a", "vmotion-refusals", labels="app: db"),
        vm("db-b", "vmotion-refusals", labels="app: db"),
        vm("big-a", "vmotion-refusals", memory="100Gi"),
        vm("big-b", "vmotion-refusals", memory="100Gi"),
        vm("pinned", "vmotion-refusals", disks=disk),
    ]), namespace)
    db_a, db_b = host_of(datacenter, namespace, "db-a"), host_of(datacenter, namespace, "db-b")
    if db_a == db_b:  # placed together before the rule applied: move one away first
        other = next(host for host in HOSTS[:2] if host != db_a)
        apply_yaml(datacenter, migration("apart", "db-b", other), namespace)
        wait_phase(datacenter, namespace, "apart", "Succeeded")
        db_b = other
    big_a, big_b = host_of(datacenter, namespace, "big-a"), host_of(datacenter, namespace, "big-b")
    assert big_a != big_b  # 100Gi each on 128Gi hosts
    pinned = host_of(datacenter, namespace, "pinned")

    outside = refused(datacenter, namespace, "to-outside", "db-a", "host-3")
    assert outside["status"]["reason"] == "TargetNotInCluster"
    assert "host-3 is not in the cluster" in outside["status"]["message"]

    rule = refused(datacenter, namespace, "to-db-b", "db-a", db_b)
    assert rule["status"]["reason"] == "RuleViolation"
    assert "db-apart" in rule["status"]["message"]

    room = refused(datacenter, namespace, "to-big-b", "big-a", big_b)
    assert room["status"]["reason"] == "InsufficientCapacity"
    assert f"host {big_b} lacks room" in room["status"]["message"]

    stuck = refused(datacenter, namespace, "move-pinned", "pinned",
                    next(host for host in HOSTS[:2] if host != pinned))
    assert stuck["status"]["reason"] == "NotLiveMigratable"
    assert f"ReadWriteOnce on {pinned}" in stuck["status"]["message"]
    wait_event(datacenter, namespace, "pinned", "MigrationRefused: virtual machine")

    # A host that stops answering turns NotReady: a move there is refused.
    down = next(host for host in HOSTS[:2] if host != db_a)
    datacenter.kubectl("annotate", "node", down, "sim.vdcos.io/power=off", "--overwrite")
    try:
        wait(datacenter, "--for=condition=Ready=Unknown", f"node/{down}", timeout=60)
        not_ready = refused(datacenter, namespace, "to-down", "db-a", down)
        assert not_ready["status"]["reason"] == "TargetNotReady"
        assert f"host {down} is not Ready" in not_ready["status"]["message"]
    finally:
        datacenter.kubectl("annotate", "node", down, "sim.vdcos.io/power=on", "--overwrite")
        wait(datacenter, "--for=condition=Ready", f"node/{down}", timeout=60)
    # Nothing moved.
    assert get_json(datacenter, "vdcvm", "db-a", "-n", namespace)["status"]["host"] == db_a
    # The large VMs would crowd the later tests out of the hosts.
    datacenter.kubectl("delete", "vdcvm", "big-a", "big-b", "-n", namespace, "--wait=true",
                       timeout=90)


def kubevirt_phases(cluster: DevCluster, namespace: str) -> dict[str, str]:
    items = get_json(cluster, "vmim", "-n", namespace)["items"]
    return {item["metadata"]["name"]: item.get("status", {}).get("phase", "") for item in items}


def test_a_large_memory_vm_takes_longer(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, cluster_of("vmotion-sizes", HOSTS))
    apply_yaml(datacenter, vm("small", "vmotion-sizes", memory="1Gi") + "---"
               + vm("large", "vmotion-sizes", memory="12Gi"), namespace)
    sources = {name: host_of(datacenter, namespace, name) for name in ("small", "large")}
    apply_yaml(datacenter, migration("move-large", "large") + "---"
               + migration("move-small", "small"), namespace)

    wait_phase(datacenter, namespace, "move-small", "Succeeded")
    # 12 GiB at 10 Gb/s copies for about 10 s, 1 GiB for under 1 s: the small VM, which
    # started at the same time, is done while the large one still copies.
    assert get_json(datacenter, "vdcvmm", "move-large", "-n", namespace)["status"]["phase"] in (
        "Pending", "Scheduling", "Running")
    wait_phase(datacenter, namespace, "move-large", "Succeeded")
    for name in sources:
        moved = get_json(datacenter, "vdcvmm", f"move-{name}", "-n", namespace)["status"]
        assert moved["sourceHost"] == sources[name] != moved["targetHost"]


def test_the_sixth_concurrent_migration_in_a_cluster_stays_pending(
        datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, cluster_of("vmotion-limits", HOSTS))
    names = [f"vm-{index}" for index in range(9)]
    apply_yaml(datacenter, "---".join(vm(name, "vmotion-limits", memory="10Gi")
                                      for name in names), namespace)
    by_host: dict[str, list[str]] = {}
    for name in names:
        by_host.setdefault(host_of(datacenter, namespace, name), []).append(name)
    # Two from each host (the outbound limit per host is 2), each to the next host: only
    # the cluster-wide limit of 5 can hold one back.
    picked = [(name, host) for host, vms in sorted(by_host.items()) for name in vms[:2]]
    assert len(picked) == 6, by_host
    ring = {host: HOSTS[(HOSTS.index(host) + 1) % 3] for host in HOSTS}
    apply_yaml(datacenter, "---".join(migration(f"move-{name}", name, ring[host])
                                      for name, host in picked), namespace)

    deadline = time.monotonic() + 60
    while True:
        phases = [m.get("status", {}).get("phase") for m in
                  get_json(datacenter, "vdcvmm", "-n", namespace)["items"]]
        started = [p for p in phases if p in ("Scheduling", "Running", "Succeeded")]
        if len(started) >= 5 or time.monotonic() > deadline:
            break
    assert sorted(phases) == sorted(["Pending", *started]) and len(started) == 5, phases
    assert "Succeeded" not in started, "a 10 GiB migration ended before the sixth was seen"
    pending = [name for name, phase in kubevirt_phases(datacenter, namespace).items()
               if phase == "Pending"]
    assert len(pending) == 1
    target_pods = get_json(datacenter, "pods", "-n", namespace, "-l",
                           "kubevirt.io/migrationJobUID")["items"]
    assert len(target_pods) == 5
    for name, _ in picked:
        wait_phase(datacenter, namespace, f"move-{name}", "Succeeded", timeout=90)
