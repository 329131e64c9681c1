"""Pure builders of the VirtualMachineMigration controller (and of whoever asks for a move).

`migration_manifest` is what DRS, a HostMaintenance and a recommendation's manifest create;
the rest turns a migration into its KubeVirt VirtualMachineInstanceMigration.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from controllers.common.apply import owner_reference
from controllers.common.conditions import Condition, mark_false, mark_true, mark_unknown
from controllers.common.vdc_api import API_VERSION
from controllers.virtualmachinemigration.kind import (
    DRS_REASON_ANNOTATION,
    REQUESTED_BY_DRS,
    REQUESTED_BY_LABEL,
    REQUESTED_BY_MAINTENANCE,
    VIRTUAL_MACHINE_MIGRATION,
)
from controllers.virtualmachinemigration.models import MigrationPhase

SUCCEEDED: Final = "Succeeded"


def migration_manifest(
    namespace: str,
    virtual_machine_name: str,
    target_host: str | None = None,
    *,
    requested_by: str | None = None,
    drs_reason: str | None = None,
    labels: dict[str, str] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A VirtualMachineMigration asking to move one VM (to `target_host`, or where DRS picks).

    The name is generated (`<vm>-migration-xxxxx`) so a VM can be moved again later, unless
    `name` is given (a caller that must not ask twice for the same move names it).
    `requested_by` ("drs", "maintenance") and `drs_reason` ("balance, imbalance 0.31 ->
    0.12") are quoted by the Event posted on the VM when the move completes.
    """
    all_labels = dict(labels or {})
    if requested_by is None and drs_reason is not None:
        requested_by = REQUESTED_BY_DRS
    if requested_by is not None:
        all_labels[REQUESTED_BY_LABEL] = requested_by
    metadata: dict[str, Any] = (
        {"name": name} if name else {"generateName": f"{virtual_machine_name[:40]}-migration-"})
    metadata["namespace"] = namespace
    if all_labels:
        metadata["labels"] = all_labels
    if drs_reason is not None:
        metadata["annotations"] = {DRS_REASON_ANNOTATION: drs_reason}
    spec: dict[str, Any] = {"virtualMachineName": virtual_machine_name}
    if target_host is not None:
        spec["targetHost"] = target_host
    return {
        "apiVersion": API_VERSION,
        "kind": VIRTUAL_MACHINE_MIGRATION.kind,
        "metadata": metadata,
        "spec": spec,
    }


#: On the KubeVirt VirtualMachineInstanceMigration: the VirtualMachineMigration it runs.
MIGRATION_LABEL: Final = "vdcos.io/migration"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"

#: KubeVirt migration phase -> ours (Scheduled/PreparingTarget: the target is still being
#: prepared; TargetReady: memory copy about to start).
_PHASES: Final[Mapping[str, MigrationPhase]] = {
    "": "Pending",
    "Pending": "Pending",
    "Scheduling": "Scheduling",
    "Scheduled": "Scheduling",
    "PreparingTarget": "Scheduling",
    "TargetReady": "Running",
    "Running": "Running",
    "Succeeded": "Succeeded",
    "Failed": "Failed",
}


def kubevirt_migration(
    migration: Mapping[str, Any], vmi_name: str, target_host: str
) -> dict[str, Any]:
    """The VirtualMachineInstanceMigration that moves the VM to `target_host`.

    `addedNodeSelector` narrows where KubeVirt may put the target pod to that host; it is
    added to the VM's own constraints (the cluster's hosts, its rules), never replaces them.
    Named as the VirtualMachineMigration and owned by it: deleting the request cancels the
    move (garbage collection deletes the KubeVirt migration, which KubeVirt aborts).
    """
    metadata = migration.get("metadata") or {}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {
            "name": str(metadata["name"]),
            "namespace": str(metadata["namespace"]),
            "labels": {MIGRATION_LABEL: str(metadata["name"])},
            "ownerReferences": [owner_reference(migration)],
        },
        "spec": {"vmiName": vmi_name, "addedNodeSelector": {HOSTNAME_LABEL: target_host}},
    }


def phase_of(kubevirt_phase: str | None) -> MigrationPhase:
    """Our phase for a KubeVirt migration phase (unknown ones count as still Scheduling)."""
    return _PHASES.get(kubevirt_phase or "", "Scheduling")


def moved_event_message(
    source: str, target: str, requested_by: str | None, drs_reason: str | None,
    maintenance: str | None,
) -> str:
    """The Event on the VDC VM once it runs on the target, saying who asked and why."""
    if requested_by == REQUESTED_BY_DRS:
        return f"Migrated by DRS from {source} to {target}" + (
            f": {drs_reason}" if drs_reason else "")
    if requested_by == REQUESTED_BY_MAINTENANCE:
        named = f" (HostMaintenance {maintenance})" if maintenance else ""
        return f"Migrated from {source} to {target} for maintenance of {source}{named}"
    return f"Migrated from {source} to {target} on request"


def succeeded_condition(phase: MigrationPhase, reason: str, message: str,
                        current: list[Condition], now: datetime,
                        generation: int | None) -> list[Condition]:
    """The Succeeded condition: True once done, False when failed, Unknown while it runs."""
    mark = (mark_true if phase == "Succeeded" else mark_false if phase == "Failed"
            else mark_unknown)
    return mark(current, SUCCEEDED, reason, message, observed_generation=generation, now=now)
