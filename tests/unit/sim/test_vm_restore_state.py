"""KubeVirt's restore logic (vm_restore_state.py): names, the restore PVC, the restored VM
(same VM and a new one), the readiness policy and KubeVirt's messages; what is built
validates against KubeVirt's swagger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devcluster.sim.vm_restore_state import (
    apply_patches,
    deleted_datavolumes,
    error_status,
    initial_status,
    not_ready_outcome,
    restore_claim,
    restore_datavolume,
    restore_volume_name,
    restored_vm,
    snapshot_problem,
    volume_restores,
    with_conditions,
    with_datavolume_names,
)
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RESTORE: dict[str, Any] = {
    "apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineRestore",
    "metadata": {"name": "revert", "namespace": "prod", "uid": "r-1",
                 "creationTimestamp": "2026-12-01T11:58:00Z"},
    "spec": {"target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine",
                        "name": "web"},
             "virtualMachineSnapshotName": "snap"}}
SOURCE_VM: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "prod", "uid": "vm-1",
                 "labels": {"app": "web"}},
    "spec": {"runStrategy": "Always",
             "dataVolumeTemplates": [{"metadata": {"name": "web-root"}, "spec": {
                 "source": {"blank": {}}, "storage": {"storageClassName": "shared"}}}],
             "template": {"spec": {"domain": {"devices": {}}, "volumes": [
                 {"name": "root", "dataVolume": {"name": "web-root"}},
                 {"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                 {"name": "init", "cloudInitNoCloud": {"userData": "x"}}]}}}}
BACKUP_CLAIM: dict[str, Any] = {
    "metadata": {"name": "web-data", "namespace": "prod", "labels": {
    "app": "web", "persistent-state-for": "web"}, "annotations": {
    "pv.kubernetes.io/bind-completed": "yes", "cdi.kubevirt.io/storage.contentType": "kubevirt",
    "cdi.kubevirt.io/storage.pod.phase": "Succeeded", "sim.vdcos.io/content": "v1"}},
    "spec": {"storageClassName": "shared", "accessModes": ["ReadWriteMany"],
             "volumeMode": "Filesystem", "volumeName": "pvc-9",
             "resources": {"requests": {"storage": "1Gi"}}}}
CONTENT: dict[str, Any] = {
    "metadata": {"name": "vmsnapshot-content-s-1"}, "spec": {
    "source": {"virtualMachine": SOURCE_VM},
    "volumeBackups": [
        {"volumeName": "root", "volumeSnapshotName": "vmsnapshot-s-1-volume-root",
         "persistentVolumeClaim": {"metadata": {"name": "web-root"}, "spec": {}}},
        {"volumeName": "data", "volumeSnapshotName": "vmsnapshot-s-1-volume-data",
         "persistentVolumeClaim": BACKUP_CLAIM}]}}


def restore_with(**spec: Any) -> dict[str, Any]:
    return {**RESTORE, "spec": {**RESTORE["spec"], **spec}}


def test_restore_names_follow_the_policy() -> None:
    assert restore_volume_name(RESTORE, "data", "web-data") == "restore-r-1-data"
    assert restore_volume_name(restore_with(volumeRestorePolicy="InPlace"), "data",
                               "web-data") == "web-data"
    assert restore_volume_name(restore_with(volumeRestorePolicy="PrefixTargetName"), "data",
                               "web-data") == "web-data"
    overridden = restore_with(volumeRestoreOverrides=[{"volumeName": "data",
                                                       "restoreName": "mine"}])
    assert restore_volume_name(overridden, "data", "web-data") == "mine"


def test_one_volume_restore_per_backup_then_the_datavolume_names() -> None:
    restores = volume_restores(RESTORE, CONTENT)
    assert restores == [
        {"volumeName": "root", "persistentVolumeClaim": "restore-r-1-root",
         "volumeSnapshotName": "vmsnapshot-s-1-volume-root"},
        {"volumeName": "data", "persistentVolumeClaim": "restore-r-1-data",
         "volumeSnapshotName": "vmsnapshot-s-1-volume-data"}]
    named = with_datavolume_names(restores, RESTORE, SOURCE_VM)
    assert named[0]["dataVolumeName"] == "restore-r-1-root"
    assert "dataVolumeName" not in named[1]


def test_the_restore_claim_comes_from_the_snapshot_in_the_sources_shape() -> None:
    snapshot = {"status": {"restoreSize": "2Gi"}}
    claim = restore_claim(RESTORE, "restore-r-1-data", snapshot, CONTENT["spec"][
        "volumeBackups"][1], SOURCE_VM)
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"], "storageClassName": "shared",
        "volumeMode": "Filesystem", "resources": {"requests": {"storage": "2Gi"}},
        "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                       "name": "vmsnapshot-s-1-volume-data"},
        "dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                          "name": "vmsnapshot-s-1-volume-data"}}
    assert claim["metadata"]["labels"] == {
        "app": "web", "restore.kubevirt.io/source-vm-name": "web",
        "restore.kubevirt.io/source-vm-namespace": "prod"}
    assert claim["metadata"]["annotations"] == {
        "cdi.kubevirt.io/storage.contentType": "kubevirt", "sim.vdcos.io/content": "v1",
        "restore.kubevirt.io/name": "revert", "restore.kubevirt.io/lastRestoreUID": "revert-r-1"}


def restored_status() -> dict[str, Any]:
    restores = with_datavolume_names(volume_restores(RESTORE, CONTENT), RESTORE, SOURCE_VM)
    return {**initial_status(NOW), "restores": restores}


def test_the_same_vm_gets_the_snapshots_spec_with_the_new_volumes() -> None:
    restore = {**RESTORE, "status": restored_status()}
    target = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
              "metadata": {"name": "web", "namespace": "prod", "uid": "vm-1",
                           "resourceVersion": "42"},
              "spec": {"runStrategy": "Halted", "template": {"spec": {}}},
              "status": {"printableStatus": "Stopped"}}
    vm = restored_vm(restore, SOURCE_VM, target)
    assert vm["metadata"]["resourceVersion"] == "42"
    assert vm["metadata"]["annotations"] == {"restore.kubevirt.io/lastRestoreUID": "revert-r-1"}
    assert vm["spec"]["runStrategy"] == "Halted"  # an existing VM keeps its run strategy
    assert "status" not in vm
    assert vm["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] == "restore-r-1-root"
    assert vm["spec"]["template"]["spec"]["volumes"] == [
        {"name": "root", "dataVolume": {"name": "restore-r-1-root"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "restore-r-1-data"}},
        {"name": "init", "cloudInitNoCloud": {"userData": "x"}}]
    # Restored onto itself, it keeps the firmware UUID KubeVirt derived from its name.
    assert vm["spec"]["template"]["spec"]["domain"]["firmware"]["uuid"] == \
        "d32ff544-f682-571b-8677-3762f07ab8a4"  # uuid5(KubeVirt's namespace, "web")
    assert deleted_datavolumes(SOURCE_VM["spec"]["dataVolumeTemplates"],
                               vm["spec"]["dataVolumeTemplates"]) == ["web-root"]


def test_a_new_vm_is_created_halted_with_the_restores_patches() -> None:
    restore = {**restore_with(target={"apiGroup": "kubevirt.io", "kind": "VirtualMachine",
                                      "name": "web-copy"}), "status": restored_status()}
    vm = restored_vm(restore, SOURCE_VM, None)
    assert vm["metadata"]["name"] == "web-copy"
    assert vm["metadata"]["labels"] == {"app": "web"}
    assert vm["spec"]["runStrategy"] == "Halted"
    assert "firmware" not in vm["spec"]["template"]["spec"]["domain"]
    patched = apply_patches(vm, [json.dumps({"op": "replace", "path": "/metadata/labels/app",
                                             "value": "copy"})])
    assert patched["metadata"]["labels"] == {"app": "copy"}
    with pytest.raises(ValueError, match="error patching VM web-copy"):
        apply_patches(vm, ['{"op": "replace", "path": "/nowhere/x", "value": 1}'])


def test_the_restore_datavolume_is_pre_populated() -> None:
    template = {"metadata": {"name": "restore-r-1-root"}, "spec": {"source": {"blank": {}}}}
    dv = restore_datavolume(template, "prod", "revert")
    assert dv["metadata"]["annotations"] == {"restore.kubevirt.io/name": "revert",
                                             "cdi.kubevirt.io/storage.prePopulated": "true"}
    assert dv["metadata"]["namespace"] == "prod"


def test_a_running_target_waits_is_stopped_or_fails_by_policy() -> None:
    assert not_ready_outcome(RESTORE, NOW) == (
        "wait", "Waiting for target VM to be powered off. Please stop the restore target to "
        "proceed with restore, or the operation will fail after 5m0s", False)
    assert not_ready_outcome(RESTORE, NOW + timedelta(minutes=5)) == (
        "fail", "Restore target failed to be ready within 5m0s. Please power off the target VM "
        "before attempting restore", True)
    assert not_ready_outcome(restore_with(targetReadinessPolicy="StopTarget"), NOW)[0] == "stop"
    assert not_ready_outcome(restore_with(targetReadinessPolicy="FailImmediate"), NOW) == (
        "fail", "Restore target VMI must be powered off before restore operation", True)
    assert not_ready_outcome(restore_with(targetReadinessPolicy="WaitEventually"), NOW)[0] == \
        "wait"


def test_snapshot_refusals() -> None:
    assert snapshot_problem("prod", "snap", None) == "VMSnapshot prod/snap does not exist"
    assert snapshot_problem("prod", "snap", {"status": {"phase": "Failed"}}) == \
        "VMSnapshot prod/snap failed and is invalid to use"
    assert snapshot_problem("prod", "snap", {"status": {"phase": "InProgress"}}) == \
        "VMSnapshot prod/snap not ready"


def test_statuses_validate_against_kubevirts_swagger() -> None:
    done = with_conditions({**restored_status(), "complete": True,
                            "restoreTime": "2026-12-01T12:00:00Z",
                            "deletedDataVolumes": ["web-root"]},
                           ("False", "Operation complete"), ("True", "Operation complete"), NOW)
    validate_against_swagger({**RESTORE, "status": done}, KUBEVIRT_SWAGGER,
                             "v1beta1.VirtualMachineRestore")
    failed = error_status(initial_status(NOW), "boom", NOW, fail=True)
    assert {c["type"]: c["reason"] for c in failed["conditions"]} == {
        "Progressing": "boom", "Ready": "boom", "Failure": "boom"}
    validate_against_swagger({**RESTORE, "status": failed}, KUBEVIRT_SWAGGER,
                             "v1beta1.VirtualMachineRestore")
