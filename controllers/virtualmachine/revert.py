"""Reverting a VM to one of its snapshots, declaratively (pure): `spec.revertToSnapshot`.

The VM is held powered off (its KubeVirt VM Halted) until KubeVirt's VirtualMachineRestore of
the snapshot completes, then it returns to the power state its spec asks for. The restore
uses volumeRestorePolicy InPlace: each disk's claim is replaced under the same name, so the
VM's disks keep their names and the operator's KubeVirt VM stays as it is built.

Each revert runs once: its VirtualMachineRestore is named after the VM and the snapshot's
uid, and a complete one means done (status.revert says so, and the Event was posted). To
revert to the same snapshot again, clear `revertToSnapshot` (that removes the finished
restore and status.revert) and set it again. A snapshot of another VM, of another
incarnation of this VM, one that failed or that does not exist is refused (Ready=False
naming spec.revertToSnapshot) and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from controllers.common.apply import EventType, owner_reference
from controllers.common.conditions import timestamp

#: On the VirtualMachineRestores a revert (or a restore to a new VM) creates: the VDC VM.
RESTORE_OF_LABEL: Final = "vdcos.io/restore-of"

RevertPhase = Literal["WaitingForSnapshot", "PoweringOff", "Restoring", "Succeeded", "Failed"]
#: Phases in which the VM is held powered off.
HOLDING_PHASES: Final = frozenset({"PoweringOff", "Restoring"})


@dataclass(frozen=True)
class SnapshotView:
    """A VDC VirtualMachineSnapshot as a revert or a restore reads it."""

    name: str
    uid: str
    virtual_machine_name: str
    virtual_machine_uid: str | None
    phase: str | None
    ready: bool
    volume_snapshots: Mapping[str, str]


def snapshot_view(body: Mapping[str, Any]) -> SnapshotView:
    """The view of a VDC snapshot body (slim cache entry or full object)."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    return SnapshotView(
        name=str(metadata.get("name")),
        uid=str(metadata.get("uid") or ""),
        virtual_machine_name=str((body.get("spec") or {}).get("virtualMachineName") or ""),
        virtual_machine_uid=status.get("virtualMachineUid"),
        phase=status.get("phase"),
        ready=bool(status.get("readyToUse")),
        volume_snapshots=dict(status.get("volumeSnapshots") or {}),
    )


@dataclass(frozen=True)
class Refusal:
    """Why a revert or restore is refused (Ready=False, reason and message)."""

    reason: str
    message: str


def check_snapshot(field: str, snapshot_name: str, snapshot: SnapshotView | None,
                   namespace: str, vm_name: str | None, vm_uid: str | None) -> Refusal | None:
    """Refuses a snapshot that is missing, failed, or (vm_name given) of another VM."""
    if snapshot is None:
        return Refusal("SnapshotNotFound", f'{field}: VirtualMachineSnapshot "{snapshot_name}" '
                                           f'does not exist in namespace "{namespace}"')
    if vm_name is not None and snapshot.virtual_machine_name != vm_name:
        return Refusal("SnapshotOfAnotherVirtualMachine",
                       f'{field}: VirtualMachineSnapshot "{snapshot_name}" is a snapshot of '
                       f'VirtualMachine "{snapshot.virtual_machine_name}", not of "{vm_name}"')
    if vm_name is not None and snapshot.virtual_machine_uid and vm_uid and \
            snapshot.virtual_machine_uid != vm_uid:
        return Refusal("SnapshotOfAnotherVirtualMachine",
                       f'{field}: VirtualMachineSnapshot "{snapshot_name}" was taken of an '
                       f'earlier VirtualMachine named "{vm_name}" (deleted since)')
    if snapshot.phase == "Failed":
        return Refusal("SnapshotFailed",
                       f'{field}: VirtualMachineSnapshot "{snapshot_name}" failed; it cannot '
                       "be restored")
    return None


def restore_name(vm_name: str, snapshot_uid: str) -> str:
    """The VirtualMachineRestore of one revert: the VM and the snapshot's uid."""
    return f"{vm_name}-revert-{snapshot_uid}"


def build_restore(vdc_vm: Mapping[str, Any], snapshot: SnapshotView) -> dict[str, Any]:
    """The snapshot.kubevirt.io/v1beta1 VirtualMachineRestore reverting the VM in place.

    The KubeVirt snapshot is named as ours (`controllers/virtualmachinesnapshot`); owned by
    the VDC VM, so it goes with the VM.
    """
    metadata = vdc_vm["metadata"]
    vm_name = str(metadata["name"])
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineRestore",
        "metadata": {
            "name": restore_name(vm_name, snapshot.uid),
            "namespace": str(metadata["namespace"]),
            "labels": {RESTORE_OF_LABEL: vm_name},
            "ownerReferences": [owner_reference(vdc_vm)],
        },
        "spec": {
            "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": vm_name},
            "virtualMachineSnapshotName": snapshot.name,
            "volumeRestorePolicy": "InPlace",
        },
    }


@dataclass(frozen=True)
class RestoreView:
    """A KubeVirt VirtualMachineRestore as the planner reads it."""

    name: str
    complete: bool
    failed_message: str | None
    restore_time: str | None


def restore_view(body: Mapping[str, Any]) -> RestoreView:
    """Complete, failed (a Failure condition True, or Ready False with reason Failed)."""
    status = body.get("status") or {}
    failed: str | None = None
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Failure" and condition.get("status") == "True":
            failed = str(condition.get("reason") or condition.get("message") or "failed")
    return RestoreView(
        name=str((body.get("metadata") or {}).get("name")),
        complete=bool(status.get("complete")),
        failed_message=failed,
        restore_time=status.get("restoreTime"),
    )


@dataclass(frozen=True)
class RevertPlan:
    """What one pass does about spec.revertToSnapshot."""

    #: status.revert (None: absent).
    status: dict[str, Any] | None = None
    #: Keep the KubeVirt VM Halted this pass.
    hold_powered_off: bool = False
    refusal: Refusal | None = None
    create: dict[str, Any] | None = None
    delete: tuple[str, ...] = ()


def plan_revert(
    vdc_vm: Mapping[str, Any],
    requested: str | None,
    snapshot: SnapshotView | None,
    restores: Sequence[RestoreView],
    vmi_exists: bool,
    now: datetime,
) -> RevertPlan:
    """The next step of the revert spec.revertToSnapshot asks for."""
    metadata = vdc_vm["metadata"]
    vm_name, namespace = str(metadata["name"]), str(metadata["namespace"])
    previous = (vdc_vm.get("status") or {}).get("revert") or {}
    if requested is None:
        return RevertPlan(delete=tuple(restore.name for restore in restores))
    refusal = check_snapshot("spec.revertToSnapshot", requested, snapshot, namespace,
                             vm_name, metadata.get("uid"))
    if refusal is not None or snapshot is None:
        return RevertPlan(status=dict(previous) or None, refusal=refusal)
    wanted = restore_name(vm_name, snapshot.uid)
    stale = tuple(restore.name for restore in restores if restore.name != wanted)
    current = next((restore for restore in restores if restore.name == wanted), None)

    def status(phase: RevertPhase, message: str, when: str | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "snapshotName": snapshot.name, "snapshotUid": snapshot.uid, "phase": phase,
            "restoreName": wanted, "message": message,
            "time": when or (previous.get("time") if previous.get("phase") == phase
                             and previous.get("snapshotUid") == snapshot.uid else None)
            or timestamp(now),
        }
        return entry

    if current is not None and current.complete:
        return RevertPlan(status(
            "Succeeded", f"reverted to snapshot {snapshot.name}", current.restore_time),
            delete=stale)
    if current is not None and current.failed_message:
        return RevertPlan(status(
            "Failed", f"KubeVirt failed the restore: {current.failed_message}"), delete=stale)
    if current is not None:
        return RevertPlan(status("Restoring", f"restoring the disks of snapshot {snapshot.name}"),
                          hold_powered_off=True, delete=stale)
    if not snapshot.ready:
        return RevertPlan(status("WaitingForSnapshot",
                                 f"waiting for snapshot {snapshot.name} to be ready"),
                          delete=stale)
    if vmi_exists:
        return RevertPlan(status("PoweringOff", "powering the VM off for the revert"),
                          hold_powered_off=True, delete=stale)
    return RevertPlan(status("Restoring", f"restoring the disks of snapshot {snapshot.name}"),
                      hold_powered_off=True, create=build_restore(vdc_vm, snapshot),
                      delete=stale)


def revert_event(previous: Mapping[str, Any] | None,
                 current: Mapping[str, Any] | None) -> tuple[EventType, str, str] | None:
    """(type, reason, message) of the Event when a revert ends, once."""
    if not current or current.get("phase") not in ("Succeeded", "Failed"):
        return None
    if previous and previous.get("phase") == current.get("phase") and \
            previous.get("snapshotUid") == current.get("snapshotUid"):
        return None
    if current["phase"] == "Succeeded":
        return "Normal", "Reverted", f"Reverted to snapshot {current['snapshotName']}"
    return "Warning", "RevertFailed", str(current.get("message") or "the revert failed")
