"""The StoragePolicy kind: its CRD's names, columns and models."""

from __future__ import annotations

from controllers.common.caches import SpecEntry, spec_cache
from controllers.common.controller import CacheSpec
from controllers.common.crd_generator import (
    AGE_COLUMN,
    READY_COLUMN,
    CustomResourceKind,
    PrinterColumn,
)
from controllers.common.vdc_api import CATEGORY, GROUP, VERSION
from controllers.storagepolicy.models import StoragePolicySpec, StoragePolicyStatus

STORAGE_POLICY = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="StoragePolicy",
    plural="storagepolicies",
    scope="Cluster",
    spec_model=StoragePolicySpec,
    status_model=StoragePolicyStatus,
    description=(
        "How VM disks are stored (Thin, Thick, EagerZeroedThick; access and volume mode), "
        "realised as a StorageClass and the DataVolume settings of every disk naming it."
    ),
    short_names=("sp",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Provisioning", ".spec.provisioning", description="Thin or thick"),
        PrinterColumn("StorageClass", ".status.storageClassName", description="StorageClass used"),
        PrinterColumn("Disks", ".status.diskCount", "integer", "Disks using the policy"),
        READY_COLUMN,
        PrinterColumn("Access", ".spec.accessMode", description="Volume access mode", priority=1),
        AGE_COLUMN,
    ),
)

#: Every StoragePolicy by name, with its parsed spec (read by several controllers).
STORAGE_POLICY_CACHE: CacheSpec[SpecEntry[StoragePolicySpec]] = spec_cache(
    "vdcos_storagepolicies", STORAGE_POLICY, StoragePolicySpec
)
