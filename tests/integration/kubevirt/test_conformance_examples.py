"""KubeVirt's own example manifests, applied to the emulated KubeVirt.

Every manifest of KubeVirt's examples (`conformance/kubevirt-examples`, found by
tests/upstream.py) is applied in a namespace of its own. Those whose features are emulated
reach Running (VMIs) or Ready (VMs, started through the start subresource); the others get
the behaviour docs/kubevirt-emulation.md chooses: rejected by the admission webhook (feature
gates that are off), or accepted and pending with KubeVirt's reason (devices no host has, a
NAD that does not exist), or stored but not reconciled (VMIRS, VM pools, presets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import upstream
from tests.harness import DevCluster

from .conftest import apply, condition, get, subresource, wait_for

pytestmark = pytest.mark.slow

EXAMPLES = upstream.path("conformance/kubevirt-examples")

RUNNING_VMIS = {
    "vmi-alpine-efi", "vmi-arm", "vmi-ephemeral", "vmi-fedora", "vmi-kernel-boot",
    "vmi-masquerade", "vmi-migratable", "vmi-nocloud", "vmi-sata", "vmi-secureboot",
    "vmi-windows", "vmi-multus-ptp", "vmi-multus-multiple-net", "vmi-pvc",
}
READY_VMS = {
    "vm-alpine-datavolume", "vm-alpine-multipvc", "vm-cirros-clarge-virtio",
    "vm-cirros-clarge-windows", "vm-cirros-clarge", "vm-cirros-cluster-csmall",
    "vm-cirros-csmall", "vm-cirros-sata", "vm-cirros", "vm-priorityclass",
    "vm-windows-clarge-windows",
}
REJECTED = {
    "vmi-dra-pgpu": "GPUsWithDRA or HostDevicesWithDRA feature gate",
    "vmi-host-disk": "HostDisk feature gate is not enabled",
    "vmi-with-sidecar-hook": "Sidecar feature gate is not enabled",
    "vmi-with-sidecar-hook-configmap": "Sidecar feature gate is not enabled",
}
UNSCHEDULABLE = {
    "vmi-gpu": "Insufficient nvidia.com/GP102GL_Tesla_P40",
    "vmi-usb": "Insufficient kubevirt.io/storage",
    "vmi-fedora-isolated": "didn't match Pod's node affinity/selector",
}
STORED_ONLY = {"example-migration-policy", "vm-pool-cirros", "vmi-preset-small",
               "vmi-replicaset-cirros"}
SPECIAL = {"migration-job", "vmi-sriov", "vm-cirros-with-sidecar-hook-configmap"}


def _documents(path: Path) -> list[dict[str, Any]]:
    import yaml

    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _prepare(cluster: DevCluster, namespace: str) -> None:
    """What KubeVirt's test cluster provides for its examples: a `local` class, the
    disk-alpine/disk-custom/disk-windows claims, the ptp-conf network and the priority
    class."""
    cluster.kubectl("create", "namespace", namespace)
    apply(cluster, """
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: ptp-conf
spec:
  config: '{"cniVersion":"0.3.1","name":"mynet","plugins":[{"type":"ptp",
    "ipam":{"type":"host-local","subnet":"10.1.1.0/24"}}]}'
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: disk-alpine
spec:
  accessModes: [ReadWriteMany]
  storageClassName: shared
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: disk-windows
spec:
  accessModes: [ReadWriteMany]
  storageClassName: shared
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: disk-custom
spec:
  accessModes: [ReadWriteMany]
  storageClassName: shared
  resources: {requests: {storage: 1Gi}}
""", namespace=namespace)


@pytest.fixture(scope="module")
def examples(cluster: DevCluster) -> dict[str, Path]:
    upstream.require(EXAMPLES)
    found = {path.stem: path for path in sorted(EXAMPLES.glob("*.yaml"))}
    cluster.kubectl("apply", "-f", "-", stdin="""
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: non-preemtible
value: 1000000
preemptionPolicy: Never
""")
    for stem in found:
        _prepare(cluster, stem)
    return found


def test_every_example_is_classified(examples: dict[str, Path]) -> None:
    classified = (RUNNING_VMIS | READY_VMS | set(REJECTED) | set(UNSCHEDULABLE) | STORED_ONLY
                  | SPECIAL)
    assert set(examples) == classified


def test_emulated_examples_run(cluster: DevCluster, examples: dict[str, Path]) -> None:
    for stem in sorted(RUNNING_VMIS | READY_VMS):
        cluster.kubectl("apply", "-n", stem, "-f", str(examples[stem]))
    for stem in sorted(READY_VMS):
        name = _documents(examples[stem])[0]["metadata"]["name"]
        assert subresource(cluster, "virtualmachines", name, "start", namespace=stem) == 202
    for stem in sorted(RUNNING_VMIS):
        name = _documents(examples[stem])[0]["metadata"]["name"]
        wait_for(lambda n=name, s=stem: (get(cluster, "vmi", n, s).get("status") or {})
                 .get("phase") == "Running", timeout=60, message=f"{stem} Running")
    for stem in sorted(READY_VMS):
        name = _documents(examples[stem])[0]["metadata"]["name"]
        vm = wait_for(lambda n=name, s=stem: (v := get(cluster, "vm", n, s)) and
                      (v.get("status") or {}).get("ready") is True and v,
                      timeout=60, message=f"{stem} Ready")
        assert vm["status"]["printableStatus"] == "Running"


def test_migration_example_migrates_the_migratable_vmi(
        cluster: DevCluster, examples: dict[str, Path]) -> None:
    stem = "migration-job"
    cluster.kubectl("apply", "-n", stem, "-f", str(examples["vmi-migratable"]))
    vmi = wait_for(lambda: (v := get(cluster, "vmi", "vmi-migratable", stem)) and
                   (v.get("status") or {}).get("phase") == "Running" and v,
                   message="vmi-migratable Running")
    cluster.kubectl("apply", "-n", stem, "-f", str(examples[stem]))
    migration = wait_for(lambda: (m := get(cluster, "vmim", "migration-job", stem)) and
                         (m.get("status") or {}).get("phase") == "Succeeded" and m,
                         message="migration-job Succeeded")
    moved = get(cluster, "vmi", "vmi-migratable", stem)
    assert moved["status"]["nodeName"] != vmi["status"]["nodeName"]
    assert migration["status"]["migrationState"]["completed"] is True


@pytest.mark.parametrize("stem", sorted(REJECTED))
def test_examples_behind_disabled_feature_gates_are_rejected(
        cluster: DevCluster, examples: dict[str, Path], stem: str) -> None:
    result = cluster.kubectl("apply", "-n", stem, "-f", str(examples[stem]), check=False)
    assert result.returncode != 0
    assert REJECTED[stem] in result.stderr


@pytest.mark.parametrize("stem", sorted(UNSCHEDULABLE))
def test_examples_needing_devices_no_host_has_stay_pending(
        cluster: DevCluster, examples: dict[str, Path], stem: str) -> None:
    cluster.kubectl("apply", "-n", stem, "-f", str(examples[stem]))
    name = _documents(examples[stem])[0]["metadata"]["name"]
    vmi = wait_for(lambda: (v := get(cluster, "vmi", name, stem)) and
                   condition(v, "PodScheduled").get("reason") == "Unschedulable" and v,
                   message=f"{stem} unschedulable")
    assert vmi["status"]["phase"] == "Scheduling"
    assert UNSCHEDULABLE[stem] in condition(vmi, "PodScheduled")["message"]


def test_sriov_example_waits_for_its_network(cluster: DevCluster,
                                             examples: dict[str, Path]) -> None:
    cluster.kubectl("apply", "-n", "vmi-sriov", "-f", str(examples["vmi-sriov"]))
    vmi = wait_for(lambda: (v := get(cluster, "vmi", "vmi-sriov", "vmi-sriov")) and
                   condition(v, "Synchronized") and v, message="vmi-sriov Synchronized=False")
    assert vmi["status"]["phase"] == "Pending"
    assert condition(vmi, "Synchronized")["message"].endswith(
        "failed to locate network attachment definition sriov/sriov-network")


def test_vm_with_sidecar_hook_reports_failed_create(cluster: DevCluster,
                                                   examples: dict[str, Path]) -> None:
    stem = "vm-cirros-with-sidecar-hook-configmap"
    cluster.kubectl("apply", "-n", stem, "-f", str(examples[stem]))
    name = _documents(examples[stem])[0]["metadata"]["name"]
    assert subresource(cluster, "virtualmachines", name, "start", namespace=stem) == 202
    vm = wait_for(lambda: (v := get(cluster, "vm", name, stem)) and
                  condition(v, "Failure") and v, message="VM Failure condition")
    failure = condition(vm, "Failure")
    assert failure["reason"] == "FailedCreate"
    assert "Sidecar feature gate is not enabled" in failure["message"]


@pytest.mark.parametrize("stem", sorted(STORED_ONLY))
def test_examples_without_a_controller_are_stored(
        cluster: DevCluster, examples: dict[str, Path], stem: str) -> None:
    cluster.kubectl("apply", "-n", stem, "-f", str(examples[stem]))
    document = _documents(examples[stem])[0]
    kind = document["kind"].lower()
    namespace_args = [] if kind == "migrationpolicy" else ["-n", stem]
    stored = json.loads(cluster.kubectl("get", kind, document["metadata"]["name"],
                                        *namespace_args, "-o", "json").stdout)
    assert stored["spec"] == document["spec"]
