"""The BackupPolicy kind: its CRD's names, columns and cache, and the run-now annotation."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Final

from controllers.backuppolicy.models import BackupPolicySpec, BackupPolicyStatus
from controllers.common.caches import SpecEntry, spec_cache
from controllers.common.controller import CacheSpec
from controllers.common.crd_generator import (
    AGE_COLUMN,
    READY_COLUMN,
    CustomResourceKind,
    PrinterColumn,
)
from controllers.common.vdc_api import CATEGORY, GROUP, VERSION

BACKUP_POLICY = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="BackupPolicy",
    plural="backuppolicies",
    scope="Namespaced",
    spec_model=BackupPolicySpec,
    status_model=BackupPolicyStatus,
    description=(
        "Scheduled backups: VirtualMachineSnapshots of the selected VMs on a cron schedule, "
        "and a retention (keepLast, keepDaily, keepWeekly, keepMonthly) that deletes the "
        "snapshots it no longer keeps."
    ),
    short_names=("bp",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Schedule", ".spec.schedule", description="Cron schedule (UTC)"),
        PrinterColumn("Suspend", ".spec.suspend", "boolean", "Whether runs are suspended"),
        PrinterColumn("Last", ".status.lastBackupTime", "date", "When the last run started"),
        PrinterColumn("Next", ".status.nextBackupTime", description="When the next run starts"),
        READY_COLUMN,
        AGE_COLUMN,
    ),
)

#: Set to a new token to ask for a run now (`vdcos backup run POLICY`); the run copies it
#: into status.lastRunToken.
BACKUP_RUN_REQUESTED_ANNOTATION: Final = "vdcos.io/backup-run-requested"

_PARSED: Final = spec_cache("vdcos_backuppolicies", BACKUP_POLICY, BackupPolicySpec)


def _policy_entries(body: Mapping[str, Any]) -> dict[Hashable, SpecEntry[BackupPolicySpec]]:
    """The parsed entry, keeping the run-requested annotation and the creation time."""
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    kept = {
        "annotations": {k: v for k, v in annotations.items()
                        if k == BACKUP_RUN_REQUESTED_ANNOTATION},
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


#: Every BackupPolicy by (namespace, name), with its parsed spec.
BACKUP_POLICY_CACHE: Final = CacheSpec[SpecEntry[BackupPolicySpec]](
    _PARSED.id, BACKUP_POLICY.resource, _policy_entries
)
