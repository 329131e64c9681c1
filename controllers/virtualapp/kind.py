"""The VirtualApp kind: its CRD's names, columns and cache, and the names it gives objects."""

from __future__ import annotations

from typing import Final

from controllers.common.caches import SpecEntry, spec_cache
from controllers.common.controller import CacheSpec
from controllers.common.crd_generator import AGE_COLUMN, CustomResourceKind, PrinterColumn
from controllers.common.vdc_api import CATEGORY, GROUP, VERSION
from controllers.virtualapp.models import VirtualAppSpec, VirtualAppStatus

VIRTUAL_APP = CustomResourceKind(
    group=GROUP,
    version=VERSION,
    kind="VirtualApp",
    plural="virtualapps",
    scope="Namespaced",
    spec_model=VirtualAppSpec,
    status_model=VirtualAppStatus,
    description=(
        "A vApp: VirtualMachines of several members, started in startOrder and stopped in "
        "reverse, each member scaled out and in, with OVF properties passed to the guests in "
        "an OVF environment document."
    ),
    short_names=("vapp",),
    categories=(CATEGORY,),
    printer_columns=(
        PrinterColumn("Members", ".status.memberCount", "integer", "Members of the app"),
        PrinterColumn("Ready", ".status.readyVirtualMachines", description="VMs ready / total"),
        PrinterColumn("Power", ".spec.powerState", description="PoweredOn or PoweredOff"),
        PrinterColumn(
            "Phase", ".status.phase",
            description="Starting, Running, Stopping, Stopped or Degraded",
        ),
        AGE_COLUMN,
    ),
)

#: On every object the app owns (VMs, OVF environment ConfigMaps and Secrets): the app.
APP_LABEL: Final = "vdcos.io/virtual-app"
#: On the same objects: the member.
MEMBER_LABEL: Final = "vdcos.io/virtual-app-member"
#: On each VM: its replica number (1-based; scaling in removes the highest first).
REPLICA_ANNOTATION: Final = "vdcos.io/virtual-app-replica"

#: Every VirtualApp by (namespace, name), with its parsed spec.
VIRTUAL_APP_CACHE: CacheSpec[SpecEntry[VirtualAppSpec]] = spec_cache(
    "vdcos_virtualapps", VIRTUAL_APP, VirtualAppSpec
)


def vm_name(app: str, member: str, replica: int) -> str:
    """`<app>-<member>` for the first replica, `<app>-<member>-<n>` for replica n >= 2.

    The first VM keeps its name when the member scales out (it is the same VM, not renamed).
    """
    return f"{app}-{member}" if replica == 1 else f"{app}-{member}-{replica}"
