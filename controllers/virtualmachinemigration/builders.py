"""Pure builders of the VirtualMachineMigration controller (and of whoever asks for a move).

`migration_manifest` is what DRS, a HostMaintenance and a recommendation's manifest create;
the rest turns a migration into its KubeVirt VirtualMachineInstanceMigration.
"""

from __future__ import annotations

from typing import Any

from controllers.common.vdc_api import API_VERSION
from controllers.virtualmachinemigration.kind import (
    DRS_REASON_ANNOTATION,
    REQUESTED_BY_DRS,
    REQUESTED_BY_LABEL,
    VIRTUAL_MACHINE_MIGRATION,
)


def migration_manifest(
    namespace: str,
    virtual_machine_name: str,
    target_host: str | None = None,
    *,
    requested_by: str | None = None,
    drs_reason: str | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A VirtualMachineMigration asking to move one VM (to `target_host`, or where DRS picks).

    The name is generated (`<vm>-migration-xxxxx`) so a VM can be moved again later.
    `requested_by` ("drs", "maintenance") and `drs_reason` ("balance, imbalance 0.31 ->
    0.12") are quoted by the Event posted on the VM when the move completes.
    """
    all_labels = dict(labels or {})
    if requested_by is None and drs_reason is not None:
        requested_by = REQUESTED_BY_DRS
    if requested_by is not None:
        all_labels[REQUESTED_BY_LABEL] = requested_by
    metadata: dict[str, Any] = {
        "generateName": f"{virtual_machine_name[:40]}-migration-",
        "namespace": namespace,
    }
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
