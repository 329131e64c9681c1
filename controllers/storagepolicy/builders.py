"""Pure builders of the StoragePolicy controller: StoragePolicy -> StorageClass, and the
resolved policy that the VirtualMachine builders read to shape each disk's DataVolume.

How provisioning is realised: Thin/Thick/EagerZeroedThick is not a StorageClass parameter,
because parameters belong to the provisioner and CSI drivers reject keys they do not know.
It is recorded as the annotation `vdcos.io/provisioning` on the StorageClass (for people and
tools) and realised per disk: Thick and EagerZeroedThick set `preallocation: true` on the
disk's DataVolume, so CDI writes the whole disk when it is created. CDI cannot choose zeroing
ahead of time versus lazily, so EagerZeroedThick and Thick behave alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from controllers.common.caches import STORAGE_CLASS_IMMUTABLE_FIELDS
from controllers.storagepolicy.models import (
    AccessMode,
    Provisioning,
    StoragePolicySpec,
    VolumeMode,
)

POLICY_LABEL: Final = "vdcos.io/storage-policy"
PROVISIONING_ANNOTATION: Final = "vdcos.io/provisioning"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "vdcos"


@dataclass(frozen=True)
class ResolvedStoragePolicy:
    """What a disk needs to know about its StoragePolicy."""

    name: str
    storage_class_name: str
    provisioning: Provisioning
    access_mode: AccessMode
    volume_mode: VolumeMode

    @property
    def preallocated(self) -> bool:
        """Thick and EagerZeroedThick disks are written in full when created."""
        return self.provisioning != "Thin"

    @property
    def live_migratable(self) -> bool:
        """Only ReadWriteMany volumes can follow a VM to another host."""
        return self.access_mode == "ReadWriteMany"


def storage_class_name_for(policy_name: str, spec: StoragePolicySpec) -> str:
    """The adopted class, or the one created for the policy (named after it)."""
    return spec.storage_class_name or policy_name


def resolve_policy(policy_name: str, spec: StoragePolicySpec) -> ResolvedStoragePolicy:
    """The policy as disks see it."""
    return ResolvedStoragePolicy(
        name=policy_name,
        storage_class_name=storage_class_name_for(policy_name, spec),
        provisioning=spec.provisioning,
        access_mode=spec.access_mode,
        volume_mode=spec.volume_mode,
    )


def build_storage_class(policy_name: str, spec: StoragePolicySpec) -> dict[str, Any] | None:
    """The storage.k8s.io/v1 StorageClass the policy creates; None when it adopts one.

    StorageClass parameters, provisioner and reclaimPolicy are immutable in Kubernetes, so a
    change of those needs the class deleted and recreated (the handler's concern).
    """
    if spec.provisioner is None:
        return None
    storage_class: dict[str, Any] = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": storage_class_name_for(policy_name, spec),
            "labels": {POLICY_LABEL: policy_name, MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {PROVISIONING_ANNOTATION: spec.provisioning},
        },
        "provisioner": spec.provisioner,
        "reclaimPolicy": spec.reclaim_policy,
        "volumeBindingMode": spec.volume_binding_mode,
        "allowVolumeExpansion": spec.allow_volume_expansion,
    }
    if spec.parameters:
        storage_class["parameters"] = dict(sorted(spec.parameters.items()))
    return storage_class


def default_policy_name(policies: dict[str, StoragePolicySpec]) -> str | None:
    """The policy marked default; when several are, the first by name (deterministic)."""
    defaults = sorted(name for name, spec in policies.items() if spec.default)
    return defaults[0] if defaults else None


#: StorageClass fields Kubernetes does not let anyone change after creation.
IMMUTABLE_FIELDS: Final = STORAGE_CLASS_IMMUTABLE_FIELDS


def count_disks(policy_name: str, vm_specs: list[Mapping[str, Any]], default: str | None) -> int:
    """Disks of all VDC VMs that use the policy (by name, or as the default)."""
    count = 0
    for spec in vm_specs:
        for disk in spec.get("disks") or []:
            if (disk.get("storagePolicyName") or default) == policy_name:
                count += 1
    return count


def immutable_differences(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Fields of the StorageClass that differ and cannot be changed in place."""
    return [
        key for key in IMMUTABLE_FIELDS if (desired.get(key) or None) != (live.get(key) or None)
    ]


def mutable_patch(desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch of what may change in place (labels, annotations, volume expansion)."""
    patch: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for section in ("labels", "annotations"):
        wanted = desired["metadata"].get(section) or {}
        have = live["metadata"].get(section) or {}
        changed = {key: value for key, value in wanted.items() if have.get(key) != value}
        if changed:
            metadata[section] = changed
    if metadata:
        patch["metadata"] = metadata
    if desired.get("allowVolumeExpansion") != live.get("allowVolumeExpansion"):
        patch["allowVolumeExpansion"] = desired.get("allowVolumeExpansion")
    return patch
