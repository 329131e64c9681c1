"""Storage vMotion and StoragePolicy placement with kubectl: a running VM's disk moves live
to its new policy's class (same guest, old volume gone, or kept with Retain), a failed move
returns to the source saying why, a powered-off VM's disk moves when it starts, and a
policy naming no class uses the cluster's default one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import apply_yaml, get_json, wait
from tests.integration.disk_helpers import (
    disk,
    disk_status,
    get_or_none,
    policy,
    poll,
    vdc_condition,
    vm_with_disks,
    vmi_uid,
    vmi_volume,
)
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

SIM_SHARED = "sim.vdcos.io/shared"


@pytest.fixture(scope="module", autouse=True)
def policies(datacenter: DevCluster) -> None:
    apply_yaml(datacenter, "---".join([
        policy("sv-shared", "  storageClassName: shared"),
        policy("sv-fast", f"  provisioner: {SIM_SHARED}"),
        policy("sv-keep", f"  provisioner: {SIM_SHARED}\n  reclaimPolicy: Retain"),
        policy("sv-far", "  storageClassName: far"),
    ]) + """---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: far
  annotations:
    sim.vdcos.io/unreachable: "true"
provisioner: sim.vdcos.io/shared
volumeBindingMode: Immediate
""")
    wait(datacenter, "--for=condition=Ready", "storagepolicy/sv-shared", "storagepolicy/sv-fast",
         "storagepolicy/sv-keep", "storagepolicy/sv-far")


def compliance_of(cluster: DevCluster, policy_name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = get_json(cluster, "storagepolicy", policy_name).get(
        "status", {}).get("compliance") or []
    return found


def set_policy(cluster: DevCluster, namespace: str, vm: str, name: str) -> None:
    cluster.kubectl("patch", "vdcvm", vm, "-n", namespace, "--type", "json", "-p",
                    f'[{{"op":"replace","path":"/spec/disks/0/storagePolicyName",'
                    f'"value":"{name}"}}]')


def arrived(cluster: DevCluster, namespace: str, vm: str, storage_class: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = disk_status(cluster, namespace, vm, "root")
        on_class = found.get("storageClassName") == storage_class
        return found if on_class and "migration" not in found else None

    return poll(check, f"disk root of {vm} on {storage_class}", timeout=90)


def test_a_running_vm_moves_its_disk_live(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, vm_with_disks("mover", disk("root", "sv-shared")), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/mover", "-n", namespace, timeout=90)
    guest = vmi_uid(datacenter, namespace, "mover")

    set_policy(datacenter, namespace, "mover", "sv-fast")
    moved = arrived(datacenter, namespace, "mover", "sv-fast")
    target = moved["dataVolumeName"]
    assert target.startswith("mover-root-") and target != "mover-root"
    assert vmi_volume(datacenter, namespace, "mover", "root")["persistentVolumeClaimInfo"][
        "claimName"] == target
    assert get_json(datacenter, "pvc", target, "-n", namespace)["spec"][
        "storageClassName"] == "sv-fast"
    poll(lambda: get_or_none(datacenter, "dv", "mover-root", "-n", namespace) is None,
         "the source DataVolume deleted")
    assert vmi_uid(datacenter, namespace, "mover") == guest
    assert vdc_condition(datacenter, "vdcvm", "mover", "RestartRequired", namespace).get(
        "status") != "True"
    kubevirt_vm = get_json(datacenter, "vm", "mover", "-n", namespace)
    assert kubevirt_vm["spec"]["updateVolumesStrategy"] == "Migration"
    validate_against_swagger(kubevirt_vm, KUBEVIRT_SWAGGER, "v1.VirtualMachine")
    poll(lambda: not compliance_of(datacenter, "sv-fast"), "the policy reports no exception")


def test_a_retained_source_is_kept(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, vm_with_disks("keeper", disk("root", "sv-keep")), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/keeper", "-n", namespace, timeout=90)
    set_policy(datacenter, namespace, "keeper", "sv-fast")
    arrived(datacenter, namespace, "keeper", "sv-fast")
    kept = poll(lambda: (dv := get_or_none(datacenter, "dv", "keeper-root", "-n", namespace))
                and not dv["metadata"].get("ownerReferences") and dv,
                "the retained source released from the VM")
    assert kept["spec"]["storage"]["storageClassName"] == "sv-keep"


def test_a_failed_move_returns_to_the_source_saying_why(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, vm_with_disks("stay", disk("root", "sv-shared")), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/stay", "-n", namespace, timeout=90)
    guest = vmi_uid(datacenter, namespace, "stay")
    set_policy(datacenter, namespace, "stay", "sv-far")
    failed = poll(lambda: (d := disk_status(datacenter, namespace, "stay", "root")).get(
        "migration", {}).get("phase") == "Failed" and d, "the move failed", timeout=90)
    assert "not reachable" in failed["migration"]["message"]
    assert failed["dataVolumeName"] == "stay-root"
    assert failed["storageClassName"] == "shared"
    assert vmi_uid(datacenter, namespace, "stay") == guest
    poll(lambda: [(c["virtualMachine"], c["disk"], c["reason"])
                  for c in compliance_of(datacenter, "sv-far")]
         == [(f"{namespace}/stay", "root", "MigrationFailed")],
         "the policy reports the disk that could not move")


def test_a_powered_off_vm_moves_its_disk_at_the_next_start(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, vm_with_disks("cold", disk("root", "sv-shared"), "PoweredOff"),
               namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/cold", "-n", namespace, timeout=90)
    set_policy(datacenter, namespace, "cold", "sv-fast")
    pending = poll(lambda: (d := disk_status(datacenter, namespace, "cold", "root")).get(
        "migration", {}).get("phase") == "PendingOfflineMove" and d, "the move pending")
    assert "powered off" in pending["migration"]["message"]
    poll(lambda: [c["reason"] for c in compliance_of(datacenter, "sv-fast")
                  if c["virtualMachine"] == f"{namespace}/cold"] == ["PendingOfflineMove"],
         "the policy reports the pending move")

    datacenter.kubectl("patch", "vdcvm", "cold", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"powerState":"PoweredOn"}}')
    moved = arrived(datacenter, namespace, "cold", "sv-fast")
    wait(datacenter, "--for=condition=Ready", "vdcvm/cold", "-n", namespace, timeout=90)
    assert vmi_volume(datacenter, namespace, "cold", "root")["persistentVolumeClaimInfo"][
        "claimName"] == moved["dataVolumeName"]
    poll(lambda: get_or_none(datacenter, "dv", "cold-root", "-n", namespace) is None,
         "the source DataVolume deleted")


def test_a_policy_naming_no_class_uses_the_default_class(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, policy("sv-plain", "  accessMode: ReadWriteOnce"))
    wait(datacenter, "--for=condition=Ready", "storagepolicy/sv-plain")
    assert get_json(datacenter, "storagepolicy", "sv-plain")["status"][
        "storageClassName"] == "standard"
    apply_yaml(datacenter, vm_with_disks("plain", disk("root", "sv-plain")), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/plain", "-n", namespace, timeout=90)
    assert get_json(datacenter, "pvc", "plain-root", "-n", namespace)["spec"][
        "storageClassName"] == "standard"

    default = "storageclass.kubernetes.io/is-default-class"
    datacenter.kubectl("annotate", "storageclass", "shared", f"{default}=true")
    try:
        wait(datacenter, "--for=condition=Ready=False", "storagepolicy/sv-plain")
        ready = vdc_condition(datacenter, "storagepolicy", "sv-plain", "Ready")
        assert ready["reason"] == "SeveralDefaultStorageClasses"
        assert "shared" in ready["message"] and "standard" in ready["message"]
    finally:
        datacenter.kubectl("annotate", "storageclass", "shared", f"{default}-")
    wait(datacenter, "--for=condition=Ready", "storagepolicy/sv-plain")
