"""A new VM from another VM's snapshot (pure): `spec.restoreFrom.snapshotName`.

Each disk of the new VM named as a disk of the snapshotted VM gets its DataVolume from that
disk's CSI VolumeSnapshot (CDI's `source.snapshot`), so the new VM starts with the snapshot's
data on disks of its own (named `<new vm>-<disk>`, as every VM's are); the other disks are
made as their spec says. The new VM's NICs get MAC addresses of their own, as any new VM's.
Its shape (cpu, memory, disks, networks) is its own spec's.

Until the snapshot is ready the VM waits (ReferencesResolved=False); a snapshot that does not
exist, failed, or is of this very VM (that is a revert) is refused naming
spec.restoreFrom.snapshotName. Once the VM is made, its disks keep the source they were made
from, even when the snapshot is deleted later.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from controllers.virtualmachine.disks import DISK_LABEL
from controllers.virtualmachine.revert import Refusal, SnapshotView, check_snapshot

FIELD = "spec.restoreFrom.snapshotName"


def check_restore_source(snapshot_name: str, snapshot: SnapshotView | None, namespace: str,
                         vm_name: str) -> Refusal | None:
    """Refuses a missing or failed snapshot, or one of this VM (use revertToSnapshot)."""
    refusal = check_snapshot(FIELD, snapshot_name, snapshot, namespace, None, None)
    if refusal is None and snapshot is not None and snapshot.virtual_machine_name == vm_name:
        return Refusal("SnapshotOfThisVirtualMachine",
                       f'{FIELD}: VirtualMachineSnapshot "{snapshot_name}" is a snapshot of '
                       "this VM; set spec.revertToSnapshot to revert to it")
    return refusal


def _disk_of(template: Mapping[str, Any]) -> str | None:
    labels = (template.get("metadata") or {}).get("labels") or {}
    disk = labels.get(DISK_LABEL)
    return str(disk) if disk else None


def with_restored_disks(desired: Mapping[str, Any], namespace: str,
                        volume_snapshots: Mapping[str, str],
                        live: Mapping[str, Any] | None) -> dict[str, Any]:
    """The KubeVirt VM with the snapshotted disks' DataVolumes made from their
    VolumeSnapshots; a template the live VM already has keeps the source it was made with."""
    result = copy.deepcopy(dict(desired))
    live_sources = {
        str(template["metadata"]["name"]): template.get("spec") or {}
        for template in ((live or {}).get("spec") or {}).get("dataVolumeTemplates") or []
    }
    for template in (result.get("spec") or {}).get("dataVolumeTemplates") or []:
        disk = _disk_of(template)
        spec = template["spec"]
        made_with = live_sources.get(str(template["metadata"]["name"]))
        if made_with is not None and "snapshot" in (made_with.get("source") or {}):
            spec.pop("sourceRef", None)
            spec["source"] = copy.deepcopy(made_with["source"])
        elif disk is not None and disk in volume_snapshots and made_with is None:
            spec.pop("sourceRef", None)
            spec["source"] = {"snapshot": {"namespace": namespace,
                                           "name": volume_snapshots[disk]}}
    return result
