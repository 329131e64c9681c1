"""The VDC StoragePolicy kind (vdcos.io/v1alpha1, cluster-scoped): spec and status models.

A StoragePolicy names how disks are stored, in vSphere's words (Thin, Thick,
EagerZeroedThick), and maps to a StorageClass: an existing one it adopts
(`storageClassName`), one it creates, named after the policy (`provisioner`), or, naming
neither, the cluster's default StorageClass (annotation
`storageclass.kubernetes.io/is-default-class: "true"`).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Provisioning = Literal["Thin", "Thick", "EagerZeroedThick"]
AccessMode = Literal["ReadWriteOnce", "ReadWriteMany"]
VolumeMode = Literal["Filesystem", "Block"]
ReclaimPolicy = Literal["Delete", "Retain"]
VolumeBindingMode = Literal["Immediate", "WaitForFirstConsumer"]


class StoragePolicySpec(SpecModel):
    """Desired state of a storage policy. At most one of storageClassName or provisioner;
    with neither, the policy uses the cluster's default StorageClass."""

    model_config = ConfigDict(
        json_schema_extra={"not": {"required": ["storageClassName", "provisioner"]}}
    )

    provisioning: Provisioning = Field(
        default="Thin",
        description=(
            "Thin (default): space allocated on write. Thick and EagerZeroedThick: the whole "
            "disk is preallocated when it is created (CDI preallocation)."
        ),
    )
    storage_class_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Adopt this existing StorageClass. Mutually exclusive with provisioner.",
    )
    provisioner: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description=(
            "Create a StorageClass named after the policy with this provisioner, e.g. "
            "rook-ceph.rbd.csi.ceph.com. Mutually exclusive with storageClassName."
        ),
    )
    parameters: dict[str, str] = Field(
        default_factory=dict,
        description="Provisioner parameters of the created StorageClass (with provisioner only).",
    )
    reclaim_policy: ReclaimPolicy = Field(
        default="Delete",
        description="What happens to a volume when its disk goes: Delete (default) or Retain.",
    )
    volume_binding_mode: VolumeBindingMode = Field(
        default="Immediate",
        description="When volumes are provisioned: Immediate (default) or WaitForFirstConsumer.",
    )
    allow_volume_expansion: bool = Field(
        default=True, description="Whether disks of this policy may grow (default true)."
    )
    access_mode: AccessMode = Field(
        default="ReadWriteMany",
        description=(
            "ReadWriteMany (default) lets disks follow their VM in a live migration; "
            "ReadWriteOnce disks pin the VM to its host."
        ),
    )
    volume_mode: VolumeMode = Field(
        default="Filesystem", description="Filesystem (default) or Block volumes."
    )
    default: bool = Field(
        default=False, description="Use this policy for disks that name no storagePolicyName."
    )

    @model_validator(mode="after")
    def _one_origin(self) -> Self:
        if self.storage_class_name is not None and self.provisioner is not None:
            raise ValueError("set at most one of storageClassName or provisioner")
        if self.parameters and self.provisioner is None:
            raise ValueError("parameters apply only with provisioner")
        return self


class DiskCompliance(StatusModel):
    """A disk of the policy that is not where the policy says."""

    virtual_machine: str = Field(description="The VM, as namespace/name.")
    disk: str = Field(description="The disk's name in the VM.")
    storage_class_name: str | None = Field(
        default=None, description="The StorageClass the disk is on now."
    )
    reason: str = Field(
        description=(
            "Why it is elsewhere: Migrating (a Storage vMotion is moving it), "
            "PendingOfflineMove (moves when the VM next starts), MigrationFailed."
        )
    )
    message: str | None = Field(default=None, description="Details, for people.")


class StoragePolicyStatus(StatusModel):
    """Observed state of a storage policy."""

    storage_class_name: str | None = Field(
        default=None, description="The StorageClass that disks of this policy use."
    )
    disk_count: int | None = Field(
        default=None, ge=0, description="Number of disks using the policy."
    )
    compliance: list[DiskCompliance] = Field(
        default_factory=list,
        description=(
            "The disks of the policy that are not on its StorageClass yet, and why (empty "
            "when every disk complies)."
        ),
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description="Ready is True when the StorageClass exists.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
