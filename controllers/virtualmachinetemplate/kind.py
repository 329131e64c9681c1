"""The VirtualMachineTemplate kind: its CRD's names, columns, models and shared cache."""

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
from controllers.virtualmachinetemplate.models import (
    VirtualMachineTemplateSpec,
    VirtualMachineTemplateStatus,
)

VIRTUAL_MACHINE_TEMPLATE = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="VirtualMachineTemplate",
    plural="virtualmachinetemplates",
    scope="Namespaced",
    spec_model=VirtualMachineTemplateSpec,
    status_model=VirtualMachineTemplateStatus,
    description=(
        "A golden image and default VM shape: the image is imported into a DataVolume and "
        "published as a CDI DataSource; VMs naming the template clone it (linked or full)."
    ),
    short_names=("vdcvmt",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase", description="Importing, Ready or Failed"),
        PrinterColumn("Progress", ".status.progress", description="Import progress"),
        PrinterColumn("Size", ".status.size", description="Capacity of the image volume"),
        READY_COLUMN,
        PrinterColumn(
            "DataSource", ".status.dataSourceName", description="CDI DataSource", priority=1
        ),
        PrinterColumn(
            "StorageClass", ".status.storageClassName", description="Class", priority=1
        ),
        AGE_COLUMN,
    ),
)

#: Every VirtualMachineTemplate by (namespace, name), with its parsed spec.
TEMPLATE_CACHE: CacheSpec[SpecEntry[VirtualMachineTemplateSpec]] = spec_cache(
    "vdcos_virtualmachinetemplates", VIRTUAL_MACHINE_TEMPLATE, VirtualMachineTemplateSpec
)
