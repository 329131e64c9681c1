"""Every kind of the VDC API (group vdcos.io, version v1alpha1) and its CRD."""

from __future__ import annotations

from typing import Final

from controllers.common.crd_generator import (
    AGE_COLUMN,
    READY_COLUMN,
    CustomResourceKind,
    PrinterColumn,
    build_crd,
    crd_filename,
    render_yaml,
)
from controllers.computecluster.models import ComputeClusterSpec, ComputeClusterStatus
from controllers.storagepolicy.models import StoragePolicySpec, StoragePolicyStatus
from controllers.virtualmachine.models import VirtualMachineSpec, VirtualMachineStatus

GROUP: Final = "vdcos.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "vdc"

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
        PrinterColumn("CPU", ".spec.cpu.count", "integer", "Virtual CPUs", priority=1),
        PrinterColumn("Memory", ".spec.memory.size", description="Guest memory", priority=1),
        PrinterColumn("Cluster", ".spec.clusterName", description="ComputeCluster", priority=1),
        AGE_COLUMN,
    ),
)

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

COMPUTE_CLUSTER = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="ComputeCluster",
    plural="computeclusters",
    scope="Cluster",
    spec_model=ComputeClusterSpec,
    status_model=ComputeClusterStatus,
    description=(
        "A pool of hosts (Nodes picked by label) that runs VMs, with DRS balancing, HA "
        "restarts and placement rules."
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
        AGE_COLUMN,
    ),
)

ALL_KINDS: Final[tuple[CustomResourceKind, ...]] = (
    COMPUTE_CLUSTER,
    STORAGE_POLICY,
    VIRTUAL_MACHINE,
)


def generate_all() -> dict[str, str]:
    """The YAML text of every CRD, keyed by its file name in crds/."""
    return {crd_filename(kind): render_yaml(build_crd(kind)) for kind in ALL_KINDS}
