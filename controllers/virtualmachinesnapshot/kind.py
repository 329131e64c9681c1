"""The VirtualMachineSnapshot kind: its CRD's names and columns, its cache, and the KubeVirt
snapshot resources it is built on."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Final

from controllers.common.caches import SpecEntry, spec_cache
from controllers.common.controller import CacheSpec
from controllers.common.crd_generator import (
    AGE_COLUMN,
    READY_COLUMN,
    CustomResourceKind,
    PrinterColumn,
)
from controllers.common.vdc_api import CATEGORY, GROUP, VERSION
from controllers.virtualmachinesnapshot.models import (
    VirtualMachineSnapshotSpec,
    VirtualMachineSnapshotStatus,
)
from kubekit.resources import ResourceRef

VIRTUAL_MACHINE_SNAPSHOT = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="VirtualMachineSnapshot",
    plural="virtualmachinesnapshots",
    scope="Namespaced",
    spec_model=VirtualMachineSnapshotSpec,
    status_model=VirtualMachineSnapshotStatus,
    description=(
        "A point-in-time snapshot of a VirtualMachine's disks and shape (KubeVirt "
        "VirtualMachineSnapshot, CSI VolumeSnapshots underneath); revert a VM to it with "
        "spec.revertToSnapshot, or make a new VM from it with spec.restoreFrom."
    ),
    short_names=("vdcsnap",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("VM", ".spec.virtualMachineName", description="VirtualMachine snapshotted"),
        PrinterColumn("Phase", ".status.phase", description="Progress of the snapshot"),
        PrinterColumn("Consistency", ".status.consistency",
                      description="ApplicationConsistent or CrashConsistent"),
        PrinterColumn("Parent", ".status.parent", description="The VM's snapshot before"),
        READY_COLUMN,
        PrinterColumn("Size", ".status.sizeBytes", "integer", "Bytes snapshotted", priority=1),
        AGE_COLUMN,
    ),
)

#: snapshot.kubevirt.io/v1beta1, what KubeVirt 1.9 serves.
KUBEVIRT_SNAPSHOTS: Final = ResourceRef(
    "snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshots")
KUBEVIRT_SNAPSHOT_CONTENTS: Final = ResourceRef(
    "snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshotcontents")
KUBEVIRT_RESTORES: Final = ResourceRef(
    "snapshot.kubevirt.io", "v1beta1", "virtualmachinerestores")

#: On KubeVirt snapshots and restores we create: the VDC object they serve (its name).
SNAPSHOT_LABEL: Final = "vdcos.io/snapshot"
#: On snapshots a BackupPolicy takes: the policy's name.
BACKUP_POLICY_LABEL: Final = "vdcos.io/backup-policy"

_PARSED: Final = spec_cache(
    "vdcos_virtualmachinesnapshots", VIRTUAL_MACHINE_SNAPSHOT, VirtualMachineSnapshotSpec
)


def _snapshot_entries(
    body: Mapping[str, Any],
) -> dict[Hashable, SpecEntry[VirtualMachineSnapshotSpec]]:
    """The parsed entry, keeping the labels (the policy that took it) and creation time."""
    metadata = body.get("metadata") or {}
    kept = {
        "labels": dict(metadata.get("labels") or {}),
        "creationTimestamp": metadata.get("creationTimestamp"),
    }
    return {
        key: SpecEntry(
            {**entry.body, "metadata": {**entry.body["metadata"], **kept}},
            entry.spec,
            entry.invalid,
        )
        for key, entry in _PARSED.entries(body).items()
    }


#: Every VDC VirtualMachineSnapshot by (namespace, name): read by the snapshot controller,
#: reverts and restores (the VM controller) and BackupPolicies (retention).
VIRTUAL_MACHINE_SNAPSHOT_CACHE: Final = CacheSpec[SpecEntry[VirtualMachineSnapshotSpec]](
    _PARSED.id, VIRTUAL_MACHINE_SNAPSHOT.resource, _snapshot_entries
)
