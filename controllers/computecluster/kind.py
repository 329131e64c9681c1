"""The ComputeCluster kind: its CRD's names, columns and models."""

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
        "capacity, allocation and load. DRS balances the load by live migration and keeps "
        "the placement rules true; HA restarts the VMs of a failed host on the others."
    ),
    short_names=("cc",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Hosts", ".status.hostCount", "integer", "Hosts in the cluster"),
        PrinterColumn("Ready Hosts", ".status.readyHostCount", "integer", "Hosts that are Ready"),
        PrinterColumn(
            "CPU Alloc%",
            ".status.allocatedPercent.cpu",
            "integer",
            "Percent of CPU capacity allocated",
        ),
        PrinterColumn(
            "Memory Alloc%",
            ".status.allocatedPercent.memory",
            "integer",
            "Percent of memory capacity allocated",
        ),
        PrinterColumn(
            "CPU Use%",
            ".status.drs.usagePercent.cpu",
            "integer",
            "Percent of CPU capacity in use (DRS load metric)",
        ),
        PrinterColumn(
            "Memory Use%",
            ".status.drs.usagePercent.memory",
            "integer",
            "Percent of memory capacity in use (DRS load metric)",
        ),
        PrinterColumn("Imbalance", ".status.drs.imbalance", description="DRS imbalance"),
        READY_COLUMN,
        PrinterColumn("DRS", ".spec.drs.automationLevel", description="DRS level", priority=1),
        PrinterColumn(
            "Target", ".status.drs.targetImbalance", description="DRS target imbalance", priority=1
        ),
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

#: Set (any value) to ask for a DRS pass now instead of at the next intervalSeconds; the
#: pass removes it. `vdcos drs run` and `vdcos drs apply` set it.
DRS_PASS_REQUESTED_ANNOTATION: Final = "vdcos.io/drs-pass-requested"

_PARSED: Final = spec_cache("vdcos_computeclusters", COMPUTE_CLUSTER, ComputeClusterSpec)


def _cluster_entries(body: Mapping[str, Any]) -> dict[Hashable, SpecEntry[ComputeClusterSpec]]:
    """The parsed entry, keeping the pass-requested annotation."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    kept = {k: v for k, v in annotations.items() if k == DRS_PASS_REQUESTED_ANNOTATION}
    return {
        key: SpecEntry(
            {**entry.body, "metadata": {**entry.body["metadata"], "annotations": kept}},
            entry.spec,
            entry.invalid,
        )
        for key, entry in _PARSED.entries(body).items()
    }


#: Every ComputeCluster by name, with its parsed spec (read by several controllers).
COMPUTE_CLUSTER_CACHE: Final = CacheSpec[SpecEntry[ComputeClusterSpec]](
    _PARSED.id, COMPUTE_CLUSTER.resource, _cluster_entries
)
