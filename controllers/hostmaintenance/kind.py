"""The HostMaintenance kind: its CRD's names, columns and cache."""

from __future__ import annotations

from typing import Final

from controllers.common.caches import SpecEntry, spec_cache
from controllers.common.controller import CacheSpec
from controllers.common.crd_generator import AGE_COLUMN, CustomResourceKind, PrinterColumn
from controllers.common.vdc_api import CATEGORY, GROUP, VERSION
from controllers.hostmaintenance.models import HostMaintenanceSpec, HostMaintenanceStatus

HOST_MAINTENANCE = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="HostMaintenance",
    plural="hostmaintenances",
    scope="Cluster",
    spec_model=HostMaintenanceSpec,
    status_model=HostMaintenanceStatus,
    description=(
        "Maintenance mode of one host: cordoned, its VMs live-migrated to the other hosts of "
        "its ComputeCluster; deleting it ends maintenance."
    ),
    short_names=("hm",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Host", ".spec.hostName", description="Host in maintenance"),
        PrinterColumn("Strategy", ".spec.strategy", description="Migrate or Shutdown"),
        PrinterColumn("Phase", ".status.phase", description="Entering, InMaintenance, Failed"),
        PrinterColumn(
            "Remaining",
            ".status.remainingVirtualMachines[*].name",
            description="VMs still on the host",
        ),
        AGE_COLUMN,
    ),
)

#: Finalizer that ends maintenance (uncordons the host) when a HostMaintenance is deleted.
MAINTENANCE_FINALIZER: Final = "vdcos.io/host-maintenance"
#: On the Node: the HostMaintenance that cordoned it (only that one uncordons it).
MAINTENANCE_NODE_ANNOTATION: Final = "vdcos.io/maintenance"
#: On a VDC VM a Shutdown maintenance powered off: the HostMaintenance, to power it on again.
POWERED_OFF_BY_ANNOTATION: Final = "vdcos.io/powered-off-by-maintenance"

#: Every HostMaintenance by name, with its parsed spec.
HOST_MAINTENANCE_CACHE: CacheSpec[SpecEntry[HostMaintenanceSpec]] = spec_cache(
    "vdcos_hostmaintenances", HOST_MAINTENANCE, HostMaintenanceSpec
)
