"""The VDC VirtualMachineTemplate kind (vdcos.io/v1alpha1, namespaced): spec and status models.

A template is a golden image (imported from a URL or registry, cloned from a claim, or
published from a PoweredOff VM) and the default shape of the VMs made from it. The shape
reuses the VirtualMachine models, so a template's defaults validate as a VM's fields do.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel
from controllers.virtualmachine.models import (
    CPU,
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    Disk,
    DiskBus,
    Firmware,
    ImageSources,
    Memory,
    Network,
    exactly_one_set,
)
from kubekit.quantity import SIZE_PATTERN, to_bytes

TemplatePhase = Literal["Importing", "Ready", "Failed"]

_SOURCES = ("virtualMachineName", "http", "registry", "pvc")
_LIST_MAP: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


class TemplateSource(ImageSources):
    """Where the golden image comes from. Exactly one field must be set."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": [name]} for name in _SOURCES]}
    )

    virtual_machine_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "Publish this VirtualMachine (same namespace) as the template: its boot disk is "
            "copied. It must be PoweredOff."
        ),
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        exactly_one_set(self, "source", list(_SOURCES))
        return self


class BootDisk(SpecModel):
    """The disk of a VM made from the template that holds the template's image."""

    name: str = Field(
        default="root",
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description='Name of the boot disk in VMs made from the template (default "root").',
    )
    bus: DiskBus = Field(default="virtio", description="Disk bus: virtio (default), sata or scsi.")


class VirtualMachineDefaults(SpecModel):
    """What a VM made from the template gets for the fields it leaves out."""

    cpu: CPU | None = Field(default=None, description="Virtual CPUs.")
    memory: Memory | None = Field(default=None, description="Guest memory.")
    firmware: Firmware | None = Field(default=None, description="Boot firmware: BIOS or EFI.")
    networks: list[Network] = Field(
        default_factory=list,
        max_length=16,
        description="Virtual NICs, as a VirtualMachine's spec.networks.",
        json_schema_extra=_LIST_MAP,
    )
    boot_disk: BootDisk = Field(
        default_factory=BootDisk,
        description="The disk cloned from the template's image (boot order 1).",
    )
    disks: list[Disk] = Field(
        default_factory=list,
        max_length=63,
        description="Further disks (e.g. data disks), as a VirtualMachine's spec.disks.",
        json_schema_extra=_LIST_MAP,
    )

    @model_validator(mode="after")
    def _boot_disk_name_free(self) -> Self:
        names = [disk.name for disk in self.disks]
        if self.boot_disk.name in names:
            raise ValueError(
                f"vmDefaults.disks must not use the boot disk's name {self.boot_disk.name!r}"
            )
        if len(names) != len(set(names)):
            raise ValueError("vmDefaults.disks names must be unique")
        return self


class VirtualMachineTemplateSpec(SpecModel):
    """Desired state of a VM template: a golden image and default VM shape."""

    source: TemplateSource = Field(description="Where the golden image comes from.")
    size: str | None = Field(
        default=None,
        pattern=SIZE_PATTERN,
        description=(
            'Capacity of the image volume, e.g. "10Gi". Required with http, registry or pvc; '
            "with virtualMachineName it defaults to the VM's boot disk size. VMs' boot disks "
            "are at least this large."
        ),
    )
    storage_policy_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "StoragePolicy the image volume is placed with; the default policy when unset. "
            "Linked clones are copy-on-write only on the same storage."
        ),
    )
    vm_defaults: VirtualMachineDefaults = Field(
        default_factory=VirtualMachineDefaults,
        description="Defaults for the VMs made from the template.",
    )

    @model_validator(mode="after")
    def _size_known(self) -> Self:
        if self.size is None and self.source.virtual_machine_name is None:
            raise ValueError("size is required unless source.virtualMachineName is set")
        if self.size is not None and to_bytes(self.size) <= 0:
            raise ValueError(f"size must be positive, got {self.size!r}")
        return self


class VirtualMachineTemplateStatus(StatusModel):
    """Observed state of a VM template."""

    phase: TemplatePhase | None = Field(
        default=None, description="Importing, Ready (VMs can be made from it) or Failed."
    )
    progress: str | None = Field(
        default=None, description='Import progress of the image, as CDI reports it ("45.2%").'
    )
    data_source_name: str | None = Field(
        default=None,
        description="The CDI DataSource (same namespace) publishing the image; VMs clone it.",
    )
    data_volume_name: str | None = Field(
        default=None, description="The CDI DataVolume holding the image."
    )
    storage_class_name: str | None = Field(
        default=None, description="StorageClass of the image volume."
    )
    size: str | None = Field(default=None, description="Capacity of the image volume.")
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description="Ready: the image is imported and its DataSource is Ready.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
