"""Host maintenance and `kubectl drain`, driven with kubectl against `vdcos up`.

A host in maintenance is cordoned and emptied by live migration; a VM that cannot move
(its disk data is ReadWriteOnce on the host) is never shut down silently: the
HostMaintenance names it and its disk, and a plain drain waits with KubeVirt's message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import apply_yaml, get_json, wait
from tests.integration.test_vmotion import (
    HOSTS,
    cluster_of,
    host_of,
    migration,
    vm,
    wait_event,
    wait_phase,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

RWO_POLICY = """
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: maint-local
spec:
  provisioning: Thin
  storageClassName: standard
  accessMode: ReadWriteOnce
"""
RWO_DISK = """
  disks:
    - name: root
      size: 1Gi
      storagePolicyName: maint-local
"""


def maintenance(name: str, host: str, strategy: str = "Migrate", force: bool = False) -> str:
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: HostMaintenance
metadata:
  name: {name}
spec:
  hostName: {host}
  strategy: {strategy}
  force: {str(force).lower()}
"""


def hm(cluster: DevCluster, name: str) -> dict[str, Any]:
    result: dict[str, Any] = get_json(cluster, "hm", name)
    return result


def wait_hm_phase(cluster: DevCluster, name: str, phase: str, timeout: int = 90) -> dict[str, Any]:
    wait(cluster, f"--for=jsonpath={{.status.phase}}={phase}", f"hm/{name}", timeout=timeout)
    return hm(cluster, name)


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def end_maintenance(cluster: DevCluster, name: str, host: str) -> None:
    assert "vdcos.io/host-maintenance" in hm(cluster, name)["metadata"]["finalizers"]
    cluster.kubectl("delete", "hm", name, "--wait=true", timeout=60)
    assert not get_json(cluster, "node", host)["spec"].get("unschedulable")


def remove(cluster: DevCluster, namespace: str, cluster_name: str) -> None:
    """Rules and HA settings hold for every maintenance of their hosts: the tests that
    declare them take them away again."""
    cluster.kubectl("delete", "vdcvm", "--all", "-n", namespace, "--wait=true", timeout=90)
    cluster.kubectl("delete", "cc", cluster_name, "--wait=true", timeout=60)


def test_maintenance_empties_the_host_and_ends_on_delete(
        datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, cluster_of("maint-basic", HOSTS))
    apply_yaml(datacenter, "---".join(vm(f"app-{i}", "maint-basic") for i in range(4)),
               namespace)
    placed = {f"app-{i}": host_of(datacenter, namespace, f"app-{i}") for i in range(4)}
    host = placed["app-0"]

    apply_yaml(datacenter, maintenance("maint-basic", host))
    try:
        done = wait_hm_phase(datacenter, "maint-basic", "InMaintenance")
        assert get_json(datacenter, "node", host)["spec"]["unschedulable"] is True
        assert done["status"].get("remainingVirtualMachines", []) == []
        assert ready_condition(done)["status"] == "True"
        assert done["status"]["clusterName"] == "maint-basic"
        wait(datacenter, "--for=jsonpath={.status.phase}=Succeeded", "vdcvmm", "-n",
             namespace, "-l", "vdcos.io/host-maintenance=maint-basic")
        for name in (n for n, h in placed.items() if h == host):
            moved_to = get_json(datacenter, "vmi", name, "-n", namespace)["status"]["nodeName"]
            assert moved_to != host
            wait_event(datacenter, namespace, name,
                       f"Migrated from {host} to {moved_to} for maintenance of {host} "
                       "(HostMaintenance maint-basic)")
        # DRS and users cannot put a VM there meanwhile: the host is cordoned.
        table = datacenter.kubectl("get", "hm", "maint-basic").stdout
        assert "InMaintenance" in table and host in table
    finally:
        end_maintenance(datacenter, "maint-basic", host)


def test_maintenance_refused_by_a_required_rule_unless_forced(
        datacenter: DevCluster, namespace: str) -> None:
    # The VM must run on host-1 (Required): evacuating host-1 would break that.
    rules = """
  rules:
    - name: stay-on-1
      type: VirtualMachinesToHosts
      enforcement: Required
      virtualMachineSelector:
        matchLabels: {app: licensed}
      hostSelector:
        matchLabels: {kubernetes.io/hostname: host-1}
"""
    apply_yaml(datacenter, cluster_of("maint-rule", HOSTS, rules))
    apply_yaml(datacenter, vm("licensed", "maint-rule", labels="app: licensed"), namespace)
    if host_of(datacenter, namespace, "licensed") != "host-1":
        apply_yaml(datacenter, migration("to-1", "licensed", "host-1"), namespace)
        wait_phase(datacenter, namespace, "to-1", "Succeeded")

    apply_yaml(datacenter, maintenance("maint-rule", "host-1"))
    try:
        refused = wait_hm_phase(datacenter, "maint-rule", "Failed")
        assert ready_condition(refused)["reason"] == "RuleViolation"
        assert "stay-on-1" in ready_condition(refused)["message"]
        assert not get_json(datacenter, "node", "host-1")["spec"].get("unschedulable")

        datacenter.kubectl("patch", "hm", "maint-rule", "--type", "merge",
                           "-p", '{"spec":{"force":true}}')
        forced = wait_hm_phase(datacenter, "maint-rule", "Entering")
        assert get_json(datacenter, "node", "host-1")["spec"]["unschedulable"] is True
        [held] = forced["status"]["remainingVirtualMachines"]
        assert (held["namespace"], held["name"]) == (namespace, "licensed")
        assert "stay-on-1" in held["reason"]
    finally:
        end_maintenance(datacenter, "maint-rule", "host-1")
        remove(datacenter, namespace, "maint-rule")


def test_maintenance_refused_when_ha_could_not_fail_over(
        datacenter: DevCluster, namespace: str) -> None:
    # Two hosts tolerating one failure: with one in maintenance, none would be left.
    apply_yaml(datacenter, cluster_of("maint-ha", HOSTS[1:]) + """
  ha:
    enabled: true
    hostFailuresToTolerate: 1
""")
    apply_yaml(datacenter, vm("protected", "maint-ha"), namespace)
    host = host_of(datacenter, namespace, "protected")
    apply_yaml(datacenter, maintenance("maint-ha", host))
    try:
        refused = wait_hm_phase(datacenter, "maint-ha", "Failed")
        assert ready_condition(refused)["reason"] == "InsufficientFailoverCapacity"
        assert "hostFailuresToTolerate" in ready_condition(refused)["message"]
        assert not get_json(datacenter, "node", host)["spec"].get("unschedulable")
    finally:
        end_maintenance(datacenter, "maint-ha", host)
        remove(datacenter, namespace, "maint-ha")


def test_an_rwo_vm_is_named_then_powered_off_by_shutdown_and_back_on_at_exit(
        datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, RWO_POLICY)
    apply_yaml(datacenter, cluster_of("maint-rwo", HOSTS))
    apply_yaml(datacenter, vm("db", "maint-rwo", disks=RWO_DISK), namespace)
    host = host_of(datacenter, namespace, "db")

    apply_yaml(datacenter, maintenance("maint-rwo", host))
    try:
        wait(datacenter, "--for=condition=Ready=False", "hm/maint-rwo")
        wait(datacenter, "--for=jsonpath={.status.remainingVirtualMachines[0].name}=db",
             "hm/maint-rwo")
        entering = hm(datacenter, "maint-rwo")
        assert entering["status"]["phase"] == "Entering"
        [held] = entering["status"]["remainingVirtualMachines"]
        assert f"disk data is ReadWriteOnce on {host} (PVC db-root)" in held["reason"]
        assert ready_condition(entering)["reason"] == "VirtualMachinesPinned"
        # Never shut down silently: it still runs there.
        assert get_json(datacenter, "vdcvm", "db", "-n", namespace)["status"][
            "powerState"] == "PoweredOn"

        datacenter.kubectl("patch", "hm", "maint-rwo", "--type", "merge",
                           "-p", '{"spec":{"strategy":"Shutdown"}}')
        wait_hm_phase(datacenter, "maint-rwo", "InMaintenance")
        db = get_json(datacenter, "vdcvm", "db", "-n", namespace)
        assert db["spec"]["powerState"] == "PoweredOff"
        assert db["metadata"]["annotations"]["vdcos.io/powered-off-by-maintenance"] == \
            "maint-rwo"
        wait_event(datacenter, namespace, "db",
                   f"MaintenanceShutdown: Powered off for maintenance of {host}")
    finally:
        end_maintenance(datacenter, "maint-rwo", host)
    wait(datacenter, "--for=jsonpath={.status.powerState}=PoweredOn", "vdcvm/db", "-n",
         namespace, timeout=90)
    assert get_json(datacenter, "vdcvm", "db", "-n", namespace)["status"]["host"] == host


def test_kubectl_drain_migrates_and_waits_for_the_vm_an_rwo_disk_pins(
        datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, RWO_POLICY)
    apply_yaml(datacenter, cluster_of("maint-drain", HOSTS))
    apply_yaml(datacenter, vm("pinned", "maint-drain", disks=RWO_DISK) + "---"
               + vm("mobile", "maint-drain"), namespace)
    host = host_of(datacenter, namespace, "pinned")
    if host_of(datacenter, namespace, "mobile") != host:
        apply_yaml(datacenter, migration("join", "mobile", host), namespace)
        wait_phase(datacenter, namespace, "join", "Succeeded")
    # The operator asks KubeVirt to live-migrate on eviction, for every VM.
    assert get_json(datacenter, "vm", "pinned", "-n", namespace)["spec"]["template"]["spec"][
        "evictionStrategy"] == "LiveMigrate"

    try:
        result = datacenter.kubectl(
            "drain", host, "--ignore-daemonsets", "--delete-emptydir-data",
            "--pod-selector", "vdcos.io/cluster=maint-drain", "--timeout=20s",
            check=False, timeout=60)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output  # it waits for the pinned VM, then times out
        assert f'Eviction triggered evacuation of VMI "{namespace}/mobile"' in output
        assert ("VMI pinned is configured with an eviction strategy but is not "
                "live-migratable") in output
        mobile = get_json(datacenter, "vmi", "mobile", "-n", namespace)
        assert mobile["status"]["nodeName"] != host
        pinned = get_json(datacenter, "vmi", "pinned", "-n", namespace)
        assert pinned["status"]["phase"] == "Running" and pinned["status"]["nodeName"] == host
        launchers = json.loads(datacenter.kubectl(
            "get", "pods", "-n", namespace, "-l", "vdcos.io/vm=pinned", "-o", "json").stdout)
        assert [p["status"]["phase"] for p in launchers["items"]] == ["Running"]
    finally:
        datacenter.kubectl("uncordon", host)
