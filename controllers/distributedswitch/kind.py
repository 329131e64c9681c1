"""The DistributedSwitch kind: its CRD's names, columns and models, and its cache."""

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
from controllers.distributedswitch.models import DistributedSwitchSpec, DistributedSwitchStatus

DISTRIBUTED_SWITCH = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="DistributedSwitch",
    plural="distributedswitches",
    scope="Cluster",
    spec_model=DistributedSwitchSpec,
    status_model=DistributedSwitchStatus,
    description=(
        "A switch defined once for a ComputeCluster: the same Linux bridge over the same "
        "(bonded) uplinks and MTU on every host, realised as an nmstate "
        "NodeNetworkConfigurationPolicy."
    ),
    short_names=("dvs", "vds"),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Cluster", ".spec.clusterName", description="ComputeCluster"),
        PrinterColumn("MTU", ".spec.mtu", "integer", "MTU of the bridge and uplinks"),
        PrinterColumn("Hosts", ".status.hostSummary", description="Hosts available / total"),
        READY_COLUMN,
        PrinterColumn(
            "Bridge", ".status.bridgeName", description="Bridge on the hosts", priority=1
        ),
        PrinterColumn("Bond", ".spec.bond.mode", description="Bond mode", priority=1),
        AGE_COLUMN,
    ),
)

#: Every DistributedSwitch by name, with its parsed spec (read by the port groups too).
DISTRIBUTED_SWITCH_CACHE: CacheSpec[SpecEntry[DistributedSwitchSpec]] = spec_cache(
    "vdcos_distributedswitches", DISTRIBUTED_SWITCH, DistributedSwitchSpec
)
