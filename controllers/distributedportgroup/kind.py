"""The DistributedPortGroup kind: its CRD's names, columns and models, and its cache."""

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
from controllers.distributedportgroup.models import (
    DistributedPortGroupSpec,
    DistributedPortGroupStatus,
)

DISTRIBUTED_PORT_GROUP = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="DistributedPortGroup",
    plural="distributedportgroups",
    scope="Cluster",
    spec_model=DistributedPortGroupSpec,
    status_model=DistributedPortGroupStatus,
    description=(
        "A VLAN or trunk on a DistributedSwitch with MTU, port security and shaping, offered "
        "to the namespaces its namespaceSelector picks as a Multus NetworkAttachmentDefinition."
    ),
    short_names=("dvpg",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Switch", ".spec.switchName", description="DistributedSwitch"),
        PrinterColumn("VLAN", ".status.vlan", description="Access VLAN or trunk"),
        PrinterColumn("MTU", ".status.mtu", "integer", "MTU in effect"),
        PrinterColumn("VMs", ".status.virtualMachines", "integer", "VMs attached"),
        READY_COLUMN,
        AGE_COLUMN,
    ),
)

#: Every DistributedPortGroup by name, with its parsed spec (the VMs read it too).
PORT_GROUP_CACHE: CacheSpec[SpecEntry[DistributedPortGroupSpec]] = spec_cache(
    "vdcos_distributedportgroups", DISTRIBUTED_PORT_GROUP, DistributedPortGroupSpec
)
