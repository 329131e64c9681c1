"""The VirtualMachineMigration kind: its CRD's names, columns, cache and who-asked labels."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Final

from controllers.common.caches import SpecEntry, spec_cache
from controllers.common.controller import CacheSpec
from controllers.common.crd_generator import AGE_COLUMN, CustomResourceKind, PrinterColumn
from controllers.common.vdc_api import CATEGORY, GROUP, VERSION
from controllers.virtualmachinemigration.models import (
    VirtualMachineMigrationSpec,
    VirtualMachineMigrationStatus,
)

VIRTUAL_MACHINE_MIGRATION = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="VirtualMachineMigration",
    plural="virtualmachinemigrations",
    scope="Namespaced",
    spec_model=VirtualMachineMigrationSpec,
    status_model=VirtualMachineMigrationStatus,
    description=(
        "vMotion: moves a running VirtualMachine to another host of its ComputeCluster (the "
        "one named, or the one DRS picks) as a KubeVirt live migration."
    ),
    short_names=("vdcvmm",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("VM", ".spec.virtualMachineName", description="VirtualMachine moved"),
        PrinterColumn("Source", ".status.sourceHost", description="Host it ran on"),
        PrinterColumn("Target", ".status.targetHost", description="Host it moves to"),
        PrinterColumn("Phase", ".status.phase", description="Progress of the migration"),
        PrinterColumn("Reason", ".status.reason", description="Why it failed", priority=1),
        AGE_COLUMN,
    ),
)

#: Who asked for a migration. Absent: a user ("on request"); "drs": a DRS pass;
#: "maintenance": a HostMaintenance evacuating its host.
REQUESTED_BY_LABEL: Final = "vdcos.io/requested-by"
REQUESTED_BY_DRS: Final = "drs"
REQUESTED_BY_MAINTENANCE: Final = "maintenance"
#: Why DRS moves the VM, in words, e.g. "balance, imbalance 0.31 -> 0.12"; the Event on the
#: VM ("Migrated by DRS from host-1 to host-3: <this>") quotes it.
DRS_REASON_ANNOTATION: Final = "vdcos.io/drs-reason"
#: The HostMaintenance that asked (its name), on migrations it creates.
HOST_MAINTENANCE_LABEL: Final = "vdcos.io/host-maintenance"

_PARSED: Final = spec_cache(
    "vdcos_virtualmachinemigrations", VIRTUAL_MACHINE_MIGRATION, VirtualMachineMigrationSpec
)


def _migration_entries(
    body: Mapping[str, Any],
) -> dict[Hashable, SpecEntry[VirtualMachineMigrationSpec]]:
    """The parsed entry, keeping the labels and annotations that say who asked and why."""
    metadata = body.get("metadata") or {}
    kept = {
        "labels": dict(metadata.get("labels") or {}),
        "annotations": {
            key: value
            for key, value in (metadata.get("annotations") or {}).items()
            if key == DRS_REASON_ANNOTATION
        },
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


#: Every VirtualMachineMigration by (namespace, name), with its parsed spec, status (phase,
#: source and target host), labels and the DRS reason annotation. DRS reads it for the moves
#: in flight; the migration controller for its own objects.
VIRTUAL_MACHINE_MIGRATION_CACHE: Final = CacheSpec[SpecEntry[VirtualMachineMigrationSpec]](
    _PARSED.id, VIRTUAL_MACHINE_MIGRATION.resource, _migration_entries
)
