"""The StoragePolicy controller: StoragePolicy -> StorageClass and status.

A policy with `provisioner` gets a StorageClass named after it (owned by the policy, so it
goes when the policy goes); a policy with `storageClassName` adopts an existing class and
waits, Ready=False, until it exists; a policy naming neither uses the cluster's default
class (Ready=False when there is none, or several). Status reports the class, how many
disks use the policy, and `compliance`: the disks not on the class yet and why. Writes
happen only when something differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from controllers.common.apply import owned_by, owner_reference, patch_status, post_event
from controllers.common.caches import STORAGE_CLASS_CACHE
from controllers.common.conditions import Condition, mark_false, mark_true
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.logging import get_logger
from controllers.storagepolicy.builders import (
    build_storage_class,
    count_disks,
    default_class_readiness,
    default_policy_name,
    disk_compliance,
    immutable_differences,
    mutable_patch,
    storage_class_name_for,
    the_default_class,
    uses_default_class,
)
from controllers.storagepolicy.kind import STORAGE_POLICY, STORAGE_POLICY_CACHE
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.controller import VDC_VMS
from kubekit.resources import STORAGE_CLASSES

log = get_logger("vdcos.storagepolicy")

#: Disk counts follow VM changes; gather them for this long into one status write.
DISK_COUNT_COALESCE_SECONDS: Final = 2.0

Readiness = tuple[bool, str, str]  # (ready, reason, message)


class StoragePolicyController(Controller[str]):
    name = "storagepolicies"
    kind = STORAGE_POLICY
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        STORAGE_POLICY_CACHE,
        STORAGE_CLASS_CACHE,
        VDC_VMS,
    )

    def __init__(self, context: OperatorContext) -> None:
        self.policies = context.cache(STORAGE_POLICY_CACHE)
        self.storage_classes = context.cache(STORAGE_CLASS_CACHE)
        self.vms = context.cache(VDC_VMS)
        super().__init__(context)

    async def reconcile(self, name: str) -> None:
        entry = self.policies.get(name)
        if entry is None:
            return  # deleted: its StorageClass follows through the ownerReference
        policy = entry.body
        generation = int(policy["metadata"].get("generation") or 1)
        previous: Mapping[str, Any] = policy.get("status") or {}
        conditions: list[Condition] = list(previous.get("conditions") or [])
        now = datetime.now(UTC)
        vm_specs = [vm["spec"] for vm in self.vms.values()]
        default = default_policy_name(
            {str(key): other.spec for key, other in self.policies.items() if other.spec}
        )
        status: dict[str, Any] = {
            "diskCount": count_disks(name, vm_specs, default),
            "observedGeneration": generation,
        }
        if entry.spec is None:
            status["conditions"] = mark_false(
                conditions,
                "Ready",
                "InvalidSpec",
                entry.invalid or "spec is invalid",
                observed_generation=generation,
                now=now,
            )
        else:
            classes = {str(key): value for key, value in self.storage_classes.items()}
            class_name = storage_class_name_for(name, entry.spec, the_default_class(classes))
            if uses_default_class(entry.spec):
                ready, reason, message = default_class_readiness(classes)
            else:
                ready, reason, message = await self._ensure_storage_class(policy, entry.spec)
            mark = mark_true if ready else mark_false
            if class_name:
                status["storageClassName"] = class_name
                status["compliance"] = disk_compliance(
                    name, class_name, list(self.vms.values()), default
                )
            status["conditions"] = mark(
                conditions, "Ready", reason, message, observed_generation=generation, now=now
            )
        await patch_status(self.kube, STORAGE_POLICY.resource, None, name, previous, status)

    async def _ensure_storage_class(
        self, policy: Mapping[str, Any], spec: StoragePolicySpec
    ) -> Readiness:
        """Creates, adopts or updates the policy's StorageClass; says how that went."""
        name = str(policy["metadata"]["name"])
        class_name = storage_class_name_for(name, spec)
        live = self.storage_classes.get(class_name)
        desired = build_storage_class(name, spec)
        if desired is None:
            if live is not None:
                return True, "StorageClassAdopted", f'uses the existing StorageClass "{class_name}"'
            return (
                False,
                "StorageClassNotFound",
                f'spec.storageClassName: StorageClass "{class_name}" does not exist',
            )
        if live is None:
            desired["metadata"]["ownerReferences"] = [owner_reference(policy)]
            await self.kube.create(STORAGE_CLASSES, desired)
            log.info("Created StorageClass", name=class_name, storagePolicy=name)
            await post_event(
                self.kube, policy, "Normal", "Created", f"Created StorageClass {class_name}"
            )
            return True, "StorageClassCreated", f'created StorageClass "{class_name}"'
        if not owned_by(live, str(policy["metadata"]["uid"])):
            return (
                False,
                "StorageClassConflict",
                f'StorageClass "{class_name}" exists and is not managed by this policy; '
                "use spec.storageClassName to adopt it",
            )
        patch = mutable_patch(desired, live)
        if patch:
            await self.kube.patch(STORAGE_CLASSES, None, class_name, patch)
            log.info("Updated StorageClass", name=class_name, storagePolicy=name)
        differences = immutable_differences(desired, live)
        if differences:
            return (
                False,
                "StorageClassImmutable",
                f'{", ".join(differences)} of StorageClass "{class_name}" cannot change; '
                "delete the StorageClass and the policy re-creates it",
            )
        return True, "StorageClassCreated", f'manages StorageClass "{class_name}"'

    def storage_policy_changed(self, event: WatchEvent) -> None:
        # The default flag of one policy changes the disk count of the others.
        self.enqueue_all(self.policies.keys(), DISK_COUNT_COALESCE_SECONDS)
        self.queue.enqueue(event.name)

    def storage_class_changed(self, event: WatchEvent) -> None:
        self.enqueue_all(self.policies.keys(), 0)

    def vm_changed(self, event: WatchEvent) -> None:
        self.enqueue_all(self.policies.keys(), DISK_COUNT_COALESCE_SECONDS)

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(STORAGE_POLICY.resource, cls.storage_policy_changed),
            Watch(STORAGE_CLASSES, cls.storage_class_changed),
            Watch(VDC_VMS.resource, cls.vm_changed),
        )
