"""The ComputeCluster kind: its CRD's names, columns and models."""

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
from controllers.computecluster.models import ComputeClusterSpec, ComputeClusterStatus

COMPUTE_CLUSTER = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="ComputeCluster",
    plural="computeclusters",
    scope="Cluster",
    spec_model=ComputeClusterSpec,
    status_model=ComputeClusterStatus,
    description=(
        "A pool of hosts (Nodes picked by label) that runs VMs; status reports its hosts, "
        "capacity and allocation; HA restarts the VMs of a failed host on the others. DRS and "
        "rules are accepted but not acted on yet."
    ),
    short_names=("cc",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Hosts", ".status.hostCount", "integer", "Hosts in the cluster"),
        PrinterColumn(
            "CPU", ".status.allocatedPercent.cpu", "integer", "Percent of CPU capacity allocated"
        ),
        PrinterColumn(
            "Memory",
            ".status.allocatedPercent.memory",
            "integer",
            "Percent of memory capacity allocated",
        ),
        READY_COLUMN,
        PrinterColumn("DRS", ".spec.drs.automationLevel", description="DRS level", priority=1),
        PrinterColumn("HA", ".spec.ha.enabled", "boolean", "HA enabled", priority=1),
        PrinterColumn(
            "HA capacity",
            ".status.ha.failoverCapacity",
            "integer",
            "Host failures HA can absorb now",
            priority=1,
        ),
        AGE_COLUMN,
    ),
)

#: Every ComputeCluster by name, with its parsed spec (read by several controllers).
COMPUTE_CLUSTER_CACHE: CacheSpec[SpecEntry[ComputeClusterSpec]] = spec_cache(
    "vdcos_computeclusters", COMPUTE_CLUSTER, ComputeClusterSpec
)
