"""Pure builders of the VirtualMachineSnapshot controller: our snapshot -> KubeVirt's, and
KubeVirt's snapshot (and its content) -> our status fields.

KubeVirt reports how it took the snapshot in `status.indications`: GuestAgent when the guest
agent froze the filesystems (application-consistent), NoGuestAgent when no agent was
connected (crash-consistent), Online when the VM was running. A stopped VM's disks are not
being written: such a snapshot is as consistent as the guest's last shutdown left them, which
we report as ApplicationConsistent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from controllers.common.apply import owner_reference
from controllers.virtualmachinesnapshot.kind import SNAPSHOT_LABEL
from controllers.virtualmachinesnapshot.models import Consistency, SnapshotPhase
from kubekit.quantity import QuantityError, to_bytes

#: KubeVirt's snapshot phases -> ours ("Unknown" and unset: not started yet).
_PHASES: Final[Mapping[str, SnapshotPhase]] = {
    "InProgress": "InProgress",
    "Succeeded": "Succeeded",
    "Failed": "Failed",
}


def kubevirt_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot.kubevirt.io/v1beta1 VirtualMachineSnapshot of the VM's KubeVirt VM.

    Named as ours and owned by it: deleting our snapshot deletes KubeVirt's, whose content
    and VolumeSnapshots KubeVirt deletes in turn (its default deletionPolicy, Delete).
    """
    metadata = snapshot["metadata"]
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshot",
        "metadata": {
            "name": str(metadata["name"]),
            "namespace": str(metadata["namespace"]),
            "labels": {SNAPSHOT_LABEL: str(metadata["name"])},
            "ownerReferences": [owner_reference(snapshot)],
        },
        "spec": {
            "source": {
                "apiGroup": "kubevirt.io",
                "kind": "VirtualMachine",
                "name": str(snapshot["spec"]["virtualMachineName"]),
            },
        },
    }


def phase_of(kubevirt_status: Mapping[str, Any]) -> SnapshotPhase:
    """Our phase for the KubeVirt snapshot's status."""
    phase = _PHASES.get(str(kubevirt_status.get("phase") or ""), "Pending")
    if phase == "Succeeded" and not kubevirt_status.get("readyToUse"):
        return "InProgress"  # content made, volumes not ready yet
    return phase


def indications_of(kubevirt_status: Mapping[str, Any]) -> list[str]:
    """KubeVirt's indications (sourceIndications, else the deprecated indications)."""
    source = [str(entry.get("indication")) for entry in
              kubevirt_status.get("sourceIndications") or [] if entry.get("indication")]
    return sorted(set(source or [str(i) for i in kubevirt_status.get("indications") or []]))


def consistency_of(indications: Iterable[str]) -> Consistency:
    """ApplicationConsistent when the guest agent froze the guest, or it did not run."""
    seen = set(indications)
    if "GuestAgent" in seen or "Online" not in seen:
        return "ApplicationConsistent"
    return "CrashConsistent"


def consistency_message(consistency: Consistency, quiesce: bool) -> str:
    """What the Ready condition says once the snapshot is usable."""
    if consistency == "ApplicationConsistent":
        return "the snapshot is ready (application-consistent)"
    if quiesce:
        return ("the snapshot is ready; crash-consistent: no guest agent was connected to "
                "freeze the guest's filesystems")
    return "the snapshot is ready (crash-consistent, as spec.quiesce false asks)"


@dataclass(frozen=True)
class ContentSummary:
    """What our status shows of KubeVirt's VirtualMachineSnapshotContent."""

    size_bytes: int
    #: The CSI VolumeSnapshot of each volume (the disk's name), for restores to a new VM.
    volume_snapshots: dict[str, str]


def content_summary(content: Mapping[str, Any]) -> ContentSummary:
    """The volumes' total size (their claims' requests) and VolumeSnapshot names."""
    size = 0
    volume_snapshots: dict[str, str] = {}
    for backup in (content.get("spec") or {}).get("volumeBackups") or []:
        claim_spec = (backup.get("persistentVolumeClaim") or {}).get("spec") or {}
        requested = ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage")
        with contextlib.suppress(QuantityError):
            size += int(to_bytes(requested)) if requested is not None else 0
        if backup.get("volumeName") and backup.get("volumeSnapshotName"):
            volume_snapshots[str(backup["volumeName"])] = str(backup["volumeSnapshotName"])
    return ContentSummary(size, dict(sorted(volume_snapshots.items())))


@dataclass(frozen=True)
class SnapshotPoint:
    """One snapshot of a VM as the snapshot tree sees it."""

    name: str
    created: str  # RFC 3339 creationTimestamp; sorts as time does


def parent_of(
    name: str,
    created: str,
    siblings: Iterable[SnapshotPoint],
    reverted_to: tuple[str, str] | None = None,
) -> str | None:
    """The snapshot a new one follows in the VM's tree.

    As vSphere's "you are here": the VM's latest snapshot taken before this one, unless the
    VM was reverted (to `reverted_to` = (snapshot, when)) after that one was taken.
    Ties of creation time (second precision) are broken by name.
    """
    earlier = [point for point in siblings
               if point.name != name and (point.created, point.name) < (created, name)]
    latest = max(earlier, key=lambda point: (point.created, point.name), default=None)
    if reverted_to is not None and reverted_to[0] != name and reverted_to[1] <= created and (
            latest is None or reverted_to[1] >= latest.created):
        return reverted_to[0]
    return latest.name if latest is not None else None
