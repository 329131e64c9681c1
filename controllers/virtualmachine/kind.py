"""The VirtualMachine kind: its CRD's names, columns and models."""

from __future__ import annotations

from controllers.common.crd_generator import (
    AGE_COLUMN,
    READY_COLUMN,
    CustomResourceKind,
    PrinterColumn,
)
from controllers.common.vdc_api import CATEGORY, GROUP, VERSION
from controllers.virtualmachine.models import VirtualMachineSpec, VirtualMachineStatus

VIRTUAL_MACHINE = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="VirtualMachine",
    plural="virtualmachines",
    scope="Namespaced",
    spec_model=VirtualMachineSpec,
    status_model=VirtualMachineStatus,
    description=(
        "A virtual machine of the virtual datacenter, run by KubeVirt on the hosts of its "
        "ComputeCluster, with disks placed by StoragePolicies."
    ),
    short_names=("vdcvm",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Power", ".status.powerState", description="Observed power state"),
        PrinterColumn("Host", ".status.host", description="Node the VM runs on"),
        READY_COLUMN,
        PrinterColumn("IP", ".status.ipAddresses[0]", description="First IP address"),
        PrinterColumn("CPU", ".status.cpu", "integer", "vCPUs the guest runs", priority=1),
        PrinterColumn("Memory", ".status.memory", description="Guest memory now", priority=1),
        PrinterColumn("Cluster", ".spec.clusterName", description="ComputeCluster", priority=1),
        PrinterColumn(
            "Clone", ".status.cloneStrategy", description="How CDI cloned the boot disk",
            priority=1,
        ),
        AGE_COLUMN,
    ),
)
