"""kopf handlers of the StoragePolicy controller: StoragePolicy -> StorageClass and status.

A policy with `provisioner` gets a StorageClass named after it (owned by the policy, so it
goes when the policy goes); a policy with `storageClassName` adopts an existing class and
waits, Ready=False, until it exists. Status reports the class and how many disks use the
policy. Writes happen only when something differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import kopf
import pydantic

from controllers.common.apply import owned_by, owner_reference, patch_status, post_event
from controllers.common.conditions import Condition, mark_false, mark_true
from controllers.common.kube import STORAGE_CLASSES, STORAGE_POLICIES, KubeClient
from controllers.common.logging import get_logger
from controllers.common.workqueue import WorkQueue
from controllers.storagepolicy.builders import (
    build_storage_class,
    default_policy_name,
    storage_class_name_for,
)
from controllers.storagepolicy.models import StoragePolicySpec

log = get_logger("vdcos.storagepolicy")

VDC = ("vdcos.io", "v1alpha1")
#: Disk counts follow VM changes; gather them for this long into one status write.
DISK_COUNT_COALESCE_SECONDS: Final = 2.0
#: StorageClass fields Kubernetes does not let anyone change after creation.
IMMUTABLE_FIELDS: Final = ("provisioner", "parameters", "reclaimPolicy", "volumeBindingMode")


@kopf.index(*VDC, "storagepolicies")
async def storage_policy_bodies(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    metadata = body.get("metadata", {})
    return {
        name: {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "metadata": {
                "name": name,
                "uid": metadata.get("uid"),
                "generation": metadata.get("generation"),
            },
            "spec": dict(body.get("spec") or {}),
            "status": dict(body.get("status") or {}),
        }
    }


@kopf.index("storage.k8s.io", "v1", "storageclasses")
async def storage_class_bodies(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    metadata = body.get("metadata", {})
    return {
        name: {
            "metadata": {
                "name": name,
                "labels": dict(metadata.get("labels") or {}),
                "annotations": dict(metadata.get("annotations") or {}),
                "ownerReferences": list(metadata.get("ownerReferences") or []),
            },
            **{key: body.get(key) for key in (*IMMUTABLE_FIELDS, "allowVolumeExpansion")},
        }
    }


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


@dataclass
class StoragePolicyController:
    kube: KubeClient
    indices: Mapping[str, Any]
    queue: WorkQueue[str] = field(init=False)

    def __post_init__(self) -> None:
        self.queue = WorkQueue("storagepolicies", self.reconcile, workers=2)

    def _bodies(self, index: str) -> dict[str, Any]:
        return {key: next(iter(store)) for key, store in self.indices[index].items() if store}

    async def reconcile(self, name: str) -> None:
        policy = self._bodies("storage_policy_bodies").get(name)
        if policy is None:
            return  # deleted: its StorageClass follows through the ownerReference
        generation = int(policy["metadata"].get("generation") or 1)
        previous: Mapping[str, Any] = policy.get("status") or {}
        conditions: list[Condition] = list(previous.get("conditions") or [])
        now = datetime.now(UTC)
        try:
            spec = StoragePolicySpec.model_validate(policy["spec"])
        except pydantic.ValidationError as error:
            message = "; ".join(
                f"spec.{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
                for item in error.errors()
            )
            conditions = mark_false(
                conditions, "Ready", "InvalidSpec", message, observed_generation=generation, now=now
            )
            await patch_status(
                self.kube,
                STORAGE_POLICIES,
                None,
                name,
                previous,
                {"conditions": conditions, "observedGeneration": generation},
            )
            return

        class_name = storage_class_name_for(name, spec)
        classes = self._bodies("storage_class_bodies")
        live = classes.get(class_name)
        desired = build_storage_class(name, spec)
        ready: tuple[bool, str, str]
        if desired is None:
            ready = (
                (True, "StorageClassAdopted", f'uses the existing StorageClass "{class_name}"')
                if live is not None
                else (
                    False,
                    "StorageClassNotFound",
                    f'spec.storageClassName: StorageClass "{class_name}" does not exist',
                )
            )
        elif live is None:
            desired["metadata"]["ownerReferences"] = [owner_reference(policy)]
            await self.kube.create(STORAGE_CLASSES, desired)
            log.info("Created StorageClass", name=class_name, storagePolicy=name)
            await post_event(
                self.kube, policy, "Normal", "Created", f"Created StorageClass {class_name}"
            )
            ready = (True, "StorageClassCreated", f'created StorageClass "{class_name}"')
        elif not owned_by(live, str(policy["metadata"]["uid"])):
            ready = (
                False,
                "StorageClassConflict",
                f'StorageClass "{class_name}" exists and is not managed by this policy; '
                "use spec.storageClassName to adopt it",
            )
        else:
            differences = immutable_differences(desired, live)
            patch = mutable_patch(desired, live)
            if patch:
                await self.kube.patch(STORAGE_CLASSES, None, class_name, patch)
                log.info("Updated StorageClass", name=class_name, storagePolicy=name)
            ready = (
                (
                    False,
                    "StorageClassImmutable",
                    f'{", ".join(differences)} of StorageClass "{class_name}" cannot change; '
                    f"delete the StorageClass and the policy re-creates it",
                )
                if differences
                else (True, "StorageClassCreated", f'manages StorageClass "{class_name}"')
            )

        vms = self.indices["vdc_vm_index"]
        vm_specs = [next(iter(store))["spec"] for store in vms.values() if store]
        policy_specs = self.indices["storage_policy_index"]
        default = default_policy_name(
            {key: next(iter(store)) for key, store in policy_specs.items() if store}
        )
        if ready[0]:
            conditions = mark_true(
                conditions, "Ready", ready[1], ready[2], observed_generation=generation, now=now
            )
        else:
            conditions = mark_false(
                conditions, "Ready", ready[1], ready[2], observed_generation=generation, now=now
            )
        status = {
            "storageClassName": class_name,
            "diskCount": count_disks(name, vm_specs, default),
            "conditions": conditions,
            "observedGeneration": generation,
        }
        await patch_status(self.kube, STORAGE_POLICIES, None, name, previous, status)


CONTROLLER: StoragePolicyController | None = None


def start_controller(kube: KubeClient, indices: Mapping[str, Any]) -> StoragePolicyController:
    global CONTROLLER
    CONTROLLER = StoragePolicyController(kube, indices)
    CONTROLLER.queue.start()
    return CONTROLLER


async def stop_controller() -> None:
    global CONTROLLER
    if CONTROLLER is not None:
        await CONTROLLER.queue.stop()
        CONTROLLER = None


def _enqueue_every_policy(delay: float) -> None:
    if CONTROLLER is None:
        return
    for name in list(CONTROLLER.indices["storage_policy_bodies"].keys()):
        CONTROLLER.queue.enqueue(name, delay)


@kopf.on.event(*VDC, "storagepolicies")
async def storage_policy_changed(name: str, **_: Any) -> None:
    # The default flag of one policy changes the disk count of the others.
    _enqueue_every_policy(DISK_COUNT_COALESCE_SECONDS)
    if CONTROLLER is not None:
        CONTROLLER.queue.enqueue(name)


@kopf.on.event("storage.k8s.io", "v1", "storageclasses")
async def storage_class_changed(**_: Any) -> None:
    _enqueue_every_policy(0)


@kopf.on.event(*VDC, "virtualmachines")
async def vm_changed_for_disk_count(**_: Any) -> None:
    _enqueue_every_policy(DISK_COUNT_COALESCE_SECONDS)
