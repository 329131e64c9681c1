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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from controllers.common.caches import STORAGE_CLASS_IMMUTABLE_FIELDS
from controllers.storagepolicy.models import (
    AccessMode,
    Provisioning,
    ReclaimPolicy,
    StoragePolicySpec,
    VolumeMode,
)

POLICY_LABEL: Final = "vdcos.io/storage-policy"
PROVISIONING_ANNOTATION: Final = "vdcos.io/provisioning"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "vdcos"
DEFAULT_CLASS_ANNOTATION: Final = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class ResolvedStoragePolicy:
    """What a disk needs to know about its StoragePolicy."""

    name: str
    storage_class_name: str
    provisioning: Provisioning
    access_mode: AccessMode
    volume_mode: VolumeMode
    #: Whether a disk's old volume is kept after a Storage vMotion moved it (Retain).
    reclaim_policy: ReclaimPolicy = "Delete"

    @property
    def preallocated(self) -> bool:
        """Thick and EagerZeroedThick disks are written in full when created."""
        return self.provisioning != "Thin"

    @property
    def live_migratable(self) -> bool:
        """Only ReadWriteMany volumes can follow a VM to another host."""
        return self.access_mode == "ReadWriteMany"


def storage_class_name_for(
    policy_name: str, spec: StoragePolicySpec, default_class: str | None = None
) -> str:
    """The adopted class, the one created for the policy (named after it), or for a policy
    naming neither the cluster's default class ("" while there is no single one)."""
    if spec.storage_class_name is not None:
        return spec.storage_class_name
    if spec.provisioner is not None:
        return policy_name
    return default_class or ""


def uses_default_class(spec: StoragePolicySpec) -> bool:
    return spec.storage_class_name is None and spec.provisioner is None


def default_storage_classes(classes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The StorageClasses annotated as the cluster's default, by name."""
    return sorted(
        str(name)
        for name, storage_class in classes.items()
        if ((storage_class.get("metadata") or {}).get("annotations") or {}).get(
            DEFAULT_CLASS_ANNOTATION
        )
        == "true"
    )


def the_default_class(classes: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The one default StorageClass; None when there is none or several (ambiguous)."""
    defaults = default_storage_classes(classes)
    return defaults[0] if len(defaults) == 1 else None


def default_class_readiness(classes: Mapping[str, Mapping[str, Any]]) -> tuple[bool, str, str]:
    """(ready, reason, message) of a policy that uses the cluster's default class."""
    defaults = default_storage_classes(classes)
    if not defaults:
        return (
            False,
            "NoDefaultStorageClass",
            "spec names neither storageClassName nor provisioner, and no StorageClass is "
            f'annotated {DEFAULT_CLASS_ANNOTATION}: "true"',
        )
    if len(defaults) > 1:
        return (
            False,
            "SeveralDefaultStorageClasses",
            "spec names neither storageClassName nor provisioner, and several StorageClasses "
            f"are the cluster's default ({', '.join(defaults)}); annotate only one "
            f'{DEFAULT_CLASS_ANNOTATION}: "true"',
        )
    return True, "DefaultStorageClass", f'uses the cluster\'s default StorageClass "{defaults[0]}"'


def resolve_policy(
    policy_name: str, spec: StoragePolicySpec, default_class: str | None = None
) -> ResolvedStoragePolicy:
    """The policy as disks see it (`default_class`: the cluster's one default class)."""
    return ResolvedStoragePolicy(
        name=policy_name,
        storage_class_name=storage_class_name_for(policy_name, spec, default_class),
        reclaim_policy=spec.reclaim_policy,
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


#: VM disk migration phases (VirtualMachine status.disks[].migration.phase) -> the
#: compliance reason a policy reports for the disk.
_COMPLIANCE_REASONS: Final = {
    "Migrating": "Migrating",
    "CopyingOffline": "Migrating",
    "PendingOfflineMove": "PendingOfflineMove",
    "Failed": "MigrationFailed",
}


def disk_compliance(
    policy_name: str,
    class_name: str,
    vms: Sequence[Mapping[str, Any]],
    default: str | None,
) -> list[dict[str, Any]]:
    """The disks of the policy's VMs that are not on its StorageClass, and why.

    Read from each VM's status.disks (where the disk is, and its move if one is under way);
    a disk the status does not place yet is not judged.
    """
    found: list[dict[str, Any]] = []
    for vm in vms:
        metadata = vm.get("metadata") or {}
        placed = {
            str(entry.get("name")): entry
            for entry in (vm.get("status") or {}).get("disks") or []
        }
        for disk in (vm.get("spec") or {}).get("disks") or []:
            if (disk.get("storagePolicyName") or default) != policy_name:
                continue
            entry = placed.get(str(disk.get("name")))
            if entry is None or not entry.get("storageClassName"):
                continue
            if entry["storageClassName"] == class_name:
                continue
            migration = entry.get("migration") or {}
            item: dict[str, Any] = {
                "virtualMachine": f"{metadata.get('namespace')}/{metadata.get('name')}",
                "disk": str(disk.get("name")),
                "storageClassName": entry["storageClassName"],
                "reason": _COMPLIANCE_REASONS.get(
                    str(migration.get("phase")), "NotOnPolicyClass"
                ),
            }
            if migration.get("message"):
                item["message"] = migration["message"]
            found.append(item)
    return sorted(found, key=lambda item: (item["virtualMachine"], item["disk"]))
