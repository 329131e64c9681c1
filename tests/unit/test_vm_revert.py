"""Revert to a snapshot and restore to a new VM (pure): the refusals, the revert's steps (held
off, restore created once, done once), its Event, the restored disks' DataVolume sources, and
the KubeVirt restore against the upstream schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controllers.virtualmachine.builders import DISK_LABEL
from controllers.virtualmachine.restore import check_restore_source, with_restored_disks
from controllers.virtualmachine.revert import (
    RESTORE_OF_LABEL,
    RestoreView,
    SnapshotView,
    build_restore,
    plan_revert,
    restore_name,
    restore_view,
    revert_event,
    snapshot_view,
)
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def vm(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
            "metadata": {"name": "web", "namespace": "team-a", "uid": "vm-uid"},
            "status": status or {}}


def snapshot(vm_name: str = "web", vm_uid: str | None = "vm-uid", phase: str = "Succeeded",
             ready: bool = True) -> SnapshotView:
    return SnapshotView("before", "snap-uid", vm_name, vm_uid, phase, ready,
                        {"root": "vmsnapshot-1-volume-root"})


def test_snapshot_view_reads_the_status() -> None:
    body = {"metadata": {"name": "before", "uid": "snap-uid"},
            "spec": {"virtualMachineName": "web"},
            "status": {"phase": "Succeeded", "readyToUse": True, "virtualMachineUid": "vm-uid",
                       "volumeSnapshots": {"root": "vmsnapshot-1-volume-root"}}}
    assert snapshot_view(body) == snapshot()


def test_a_snapshot_of_another_vm_is_refused_naming_the_field() -> None:
    plan = plan_revert(vm(), "before", snapshot(vm_name="db"), (), True, NOW)
    assert plan.refusal is not None
    assert plan.refusal.reason == "SnapshotOfAnotherVirtualMachine"
    assert plan.refusal.message.startswith("spec.revertToSnapshot: ")
    assert '"db"' in plan.refusal.message
    assert (plan.create, plan.hold_powered_off, plan.delete) == (None, False, ())


def test_a_snapshot_of_an_earlier_vm_of_the_same_name_is_refused() -> None:
    plan = plan_revert(vm(), "before", snapshot(vm_uid="old-uid"), (), True, NOW)
    assert plan.refusal is not None and "earlier VirtualMachine" in plan.refusal.message


def test_a_missing_snapshot_is_refused() -> None:
    plan = plan_revert(vm(), "nope", None, (), True, NOW)
    assert plan.refusal is not None and plan.refusal.reason == "SnapshotNotFound"
    assert 'VirtualMachineSnapshot "nope" does not exist in namespace "team-a"' in \
        plan.refusal.message


def test_revert_powers_off_then_restores_then_is_done_once() -> None:
    running = plan_revert(vm(), "before", snapshot(), (), True, NOW)
    assert running.hold_powered_off and running.create is None
    assert running.status is not None and running.status["phase"] == "PoweringOff"

    off = plan_revert(vm(), "before", snapshot(), (), False, NOW)
    assert off.hold_powered_off and off.create is not None
    assert off.create["metadata"]["name"] == restore_name("web", "snap-uid")
    assert off.status is not None and off.status["phase"] == "Restoring"

    name = restore_name("web", "snap-uid")
    restoring = plan_revert(vm(), "before", snapshot(), (RestoreView(name, False, None, None),),
                            False, NOW)
    assert restoring.hold_powered_off and restoring.create is None

    done = plan_revert(vm(), "before", snapshot(),
                       (RestoreView(name, True, None, "2026-03-02T11:59:00Z"),), False, NOW)
    assert not done.hold_powered_off and done.create is None
    assert done.status == {"snapshotName": "before", "snapshotUid": "snap-uid",
                           "phase": "Succeeded", "restoreName": name,
                           "message": "reverted to snapshot before",
                           "time": "2026-03-02T11:59:00Z"}
    # The VM powers on again: the complete restore still says done; nothing is redone.
    again = plan_revert(vm({"revert": done.status}), "before", snapshot(),
                        (RestoreView(name, True, None, "2026-03-02T11:59:00Z"),), True, NOW)
    assert again == done


def test_clearing_the_field_removes_the_restore_and_status() -> None:
    name = restore_name("web", "snap-uid")
    plan = plan_revert(vm(), None, None, (RestoreView(name, True, None, None),), True, NOW)
    assert plan.delete == (name,) and plan.status is None and not plan.hold_powered_off


def test_a_snapshot_still_being_taken_is_waited_for_without_powering_off() -> None:
    plan = plan_revert(vm(), "before", snapshot(phase="InProgress", ready=False), (), True, NOW)
    assert not plan.hold_powered_off and plan.create is None and plan.refusal is None
    assert plan.status is not None and plan.status["phase"] == "WaitingForSnapshot"


def test_a_failed_restore_releases_the_vm_and_says_why() -> None:
    name = restore_name("web", "snap-uid")
    body = {"metadata": {"name": name}, "status": {"complete": False, "conditions": [
        {"type": "Failure", "status": "True", "reason": "volume snapshot missing"}]}}
    plan = plan_revert(vm(), "before", snapshot(), (restore_view(body),), False, NOW)
    assert not plan.hold_powered_off
    assert plan.status is not None and plan.status["phase"] == "Failed"
    assert "volume snapshot missing" in plan.status["message"]


def test_the_revert_event_is_posted_once_when_it_ends() -> None:
    done = {"phase": "Succeeded", "snapshotName": "before", "snapshotUid": "snap-uid"}
    assert revert_event({"phase": "Restoring", "snapshotUid": "snap-uid"}, done) == (
        "Normal", "Reverted", "Reverted to snapshot before")
    assert revert_event(done, done) is None
    assert revert_event(None, {"phase": "Restoring"}) is None


def test_the_restore_reverts_in_place_and_validates_upstream() -> None:
    restore = build_restore(vm(), snapshot())
    assert restore["spec"] == {
        "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "web"},
        "virtualMachineSnapshotName": "before",
        "volumeRestorePolicy": "InPlace",
    }
    assert restore["metadata"]["labels"] == {RESTORE_OF_LABEL: "web"}
    assert restore["metadata"]["ownerReferences"][0]["uid"] == "vm-uid"
    validate_against_swagger(restore, KUBEVIRT_SWAGGER, "v1beta1.VirtualMachineRestore")


def test_restore_to_a_new_vm_refuses_a_snapshot_of_itself() -> None:
    refusal = check_restore_source("before", snapshot(), "team-a", "web")
    assert refusal is not None and refusal.message.startswith("spec.restoreFrom.snapshotName: ")
    assert check_restore_source("before", snapshot(), "team-a", "web-copy") is None
    missing = check_restore_source("gone", None, "team-a", "web-copy")
    assert missing is not None and missing.reason == "SnapshotNotFound"


def template(name: str, disk: str, source: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {DISK_LABEL: disk}},
            "spec": {"source": source, "storage": {}}}


def test_restored_disks_come_from_their_volume_snapshots() -> None:
    desired = {"spec": {"dataVolumeTemplates": [
        template("web-copy-root", "root", {"blank": {}}),
        template("web-copy-scratch", "scratch", {"blank": {}}),
    ]}}
    built = with_restored_disks(desired, "team-a", {"root": "vmsnapshot-1-volume-root"}, None)
    templates = built["spec"]["dataVolumeTemplates"]
    assert templates[0]["spec"]["source"] == {
        "snapshot": {"namespace": "team-a", "name": "vmsnapshot-1-volume-root"}}
    assert templates[1]["spec"]["source"] == {"blank": {}}
    assert desired["spec"]["dataVolumeTemplates"][0]["spec"]["source"] == {"blank": {}}
    # Once made, a disk keeps its source even when the snapshot is gone.
    kept = with_restored_disks(desired, "team-a", {}, built)
    assert kept["spec"]["dataVolumeTemplates"][0]["spec"]["source"] == \
        templates[0]["spec"]["source"]
