"""The VirtualMachineTemplate controller: template -> image DataVolume + DataSource, status.

Level-based, like the other controllers: kopf indexes keep the templates, their DataVolumes
and DataSources (only ours: labelled `vdcos.io/template`), the storage policies and the VDC
VMs (a published VM must be PoweredOff); watch events only put keys on the queue. Nothing is
created for a template that is refused (a running source VM, a missing policy), so nothing
half-made is left behind; what is created is owned by the template and goes with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from controllers.common.apply import owner_reference, patch_status, post_event
from controllers.common.conditions import Condition, mark_false, mark_true
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.logging import get_logger
from controllers.storagepolicy.builders import default_policy_name, resolve_policy
from controllers.storagepolicy.kind import STORAGE_POLICY_CACHE
from controllers.virtualmachine.controller import VDC_VMS
from controllers.virtualmachinetemplate.builders import (
    SourceDisk,
    build_data_source,
    build_image_data_volume,
    image_data_volume_name,
    source_vm_disk,
    template_readiness,
)
from controllers.virtualmachinetemplate.cdi_cache import (
    OURS,
    TEMPLATE_DATA_SOURCES,
    TEMPLATE_DATA_VOLUMES,
    Key,
    key_of,
)
from controllers.virtualmachinetemplate.kind import TEMPLATE_CACHE, VIRTUAL_MACHINE_TEMPLATE
from controllers.virtualmachinetemplate.models import VirtualMachineTemplateSpec
from kubekit.resources import DATASOURCES, DATAVOLUMES

log = get_logger("vdcos.virtualmachinetemplate")


def _owner_template(body: Mapping[str, Any]) -> str | None:
    for reference in (body.get("metadata") or {}).get("ownerReferences") or []:
        if reference.get("kind") == VIRTUAL_MACHINE_TEMPLATE.kind:
            return str(reference.get("name"))
    return None


class VirtualMachineTemplateController(Controller[Key]):
    name = "virtualmachinetemplates"
    kind = VIRTUAL_MACHINE_TEMPLATE
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        TEMPLATE_CACHE,
        TEMPLATE_DATA_VOLUMES,
        TEMPLATE_DATA_SOURCES,
        STORAGE_POLICY_CACHE,
        VDC_VMS,
    )

    def __init__(self, context: OperatorContext) -> None:
        self.templates = context.cache(TEMPLATE_CACHE)
        self.data_volumes = context.cache(TEMPLATE_DATA_VOLUMES)
        self.data_sources = context.cache(TEMPLATE_DATA_SOURCES)
        self.policies = context.cache(STORAGE_POLICY_CACHE)
        self.vms = context.cache(VDC_VMS)
        # Templates whose image this controller created that the cache does not show yet: a
        # pass in between must not create (and announce) it again.
        self._created: set[Key] = set()
        # Templates announced Ready (an Event): a pass reading a cache that does not show the
        # Ready status yet must not announce it twice.
        self._announced: set[Key] = set()
        super().__init__(context)

    async def reconcile(self, key: Key) -> None:
        entry = self.templates.get(key)
        if entry is None:
            self._created.discard(key)
            self._announced.discard(key)
            return  # deleted: its DataVolume and DataSource follow through ownerReferences
        template = entry.body
        if template["metadata"].get("deletionTimestamp"):
            return
        namespace, name = key
        generation = int(template["metadata"].get("generation") or 1)
        previous: Mapping[str, Any] = template.get("status") or {}
        conditions: list[Condition] = list(previous.get("conditions") or [])
        now = datetime.now(UTC)
        status: dict[str, Any] = {"observedGeneration": generation}

        def refuse(phase: str, reason: str, message: str) -> dict[str, Any]:
            return {
                **status,
                "phase": phase,
                "conditions": mark_false(
                    conditions, "Ready", reason, message,
                    observed_generation=generation, now=now,
                ),
            }

        spec = entry.spec
        dv_key = (namespace, image_data_volume_name(name))
        data_volume = self.data_volumes.get(dv_key)
        if spec is None:
            status = refuse("Failed", "InvalidSpec", entry.invalid or "spec is invalid")
        elif data_volume is None and key in self._created:
            return  # the watch event of the DataVolume just created brings the next pass
        elif data_volume is None:
            problem = await self._create_image(template, spec)
            if problem is not None:
                phase, reason, message = problem
                status = refuse(phase, reason, message)
                if reason != str(_ready(previous).get("reason")):
                    log.warning("Refused VirtualMachineTemplate", namespace=namespace,
                                name=name, reason=reason, message=message)
                    await post_event(self.kube, template, "Warning", reason, message)
            else:
                self._created.add(key)
                status = self._readiness_status(status, conditions, generation, now, None, None)
        else:
            self._created.discard(key)
            if self.data_sources.get(key) is None:
                desired = build_data_source(name, namespace)
                desired["metadata"]["ownerReferences"] = [owner_reference(template)]
                await self.kube.apply(DATASOURCES, desired)
            status = self._readiness_status(
                status, conditions, generation, now, data_volume, self.data_sources.get(key)
            )
        await patch_status(self.kube, VIRTUAL_MACHINE_TEMPLATE.resource, namespace, name,
                           previous, status)
        if status.get("phase") != "Ready":
            self._announced.discard(key)
        elif previous.get("phase") != "Ready" and key not in self._announced:
            self._announced.add(key)
            await post_event(self.kube, template, "Normal", "Ready",
                             f"Image ready; published as DataSource {name}")

    def _readiness_status(
        self,
        status: dict[str, Any],
        conditions: list[Condition],
        generation: int,
        now: datetime,
        data_volume: Mapping[str, Any] | None,
        data_source: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        readiness = template_readiness(data_volume, data_source)
        mark = mark_true if readiness.ready else mark_false
        result = {
            **status,
            "phase": readiness.phase,
            "conditions": mark(
                conditions, "Ready", readiness.reason, readiness.message,
                observed_generation=generation, now=now,
            ),
        }
        if readiness.progress is not None:
            result["progress"] = readiness.progress
        if data_volume is not None:
            storage = data_volume.get("spec") or {}
            result["dataVolumeName"] = str(data_volume["metadata"]["name"])
            result.update({key: storage[key] for key in ("storageClassName", "size")
                           if storage.get(key)})
        if data_source is not None:
            result["dataSourceName"] = str(data_source["metadata"]["name"])
        return result

    async def _create_image(
        self, template: Mapping[str, Any], spec: VirtualMachineTemplateSpec
    ) -> tuple[str, str, str] | None:
        """Creates the image DataVolume and the DataSource; (phase, reason, message) if not."""
        namespace, name = key_of(template)
        source_claim: str | None = None
        size = spec.size
        if spec.source.virtual_machine_name is not None:
            vm_name = spec.source.virtual_machine_name
            disk = source_vm_disk(vm_name, self.vms.get((namespace, vm_name)))
            if not isinstance(disk, SourceDisk):
                missing = "not found" in disk
                return ("Failed", "VirtualMachineNotFound" if missing
                        else "SourceVirtualMachineNotPoweredOff", disk)
            source_claim, size = disk.claim_name, size or disk.size
        policies = {str(n): e.spec for n, e in self.policies.items() if e.spec is not None}
        policy_name = spec.storage_policy_name or default_policy_name(policies)
        if policy_name is None or policy_name not in policies:
            return ("Failed", "StoragePolicyNotFound",
                    f'spec.storagePolicyName: StoragePolicy "{policy_name or "<default>"}" '
                    "not found")
        assert size is not None  # the model requires it without a source VM
        policy = resolve_policy(policy_name, policies[policy_name])
        owner = [owner_reference(template)]
        data_volume = build_image_data_volume(name, namespace, spec, policy, size, source_claim)
        data_volume["metadata"]["ownerReferences"] = owner
        await self.kube.apply(DATAVOLUMES, data_volume)
        data_source = build_data_source(name, namespace)
        data_source["metadata"]["ownerReferences"] = owner
        await self.kube.apply(DATASOURCES, data_source)
        log.info("Importing template image", namespace=namespace, name=name,
                 dataVolume=data_volume["metadata"]["name"], storageClass=policy.storage_class_name)
        await post_event(self.kube, template, "Normal", "Importing",
                         f"Importing the image into DataVolume {data_volume['metadata']['name']} "
                         f"({size}, StorageClass {policy.storage_class_name})")
        return None

    # ----------------------------------------------------------------------- triggers

    def template_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue((event.namespace, event.name))

    def cdi_object_changed(self, event: WatchEvent) -> None:
        owner = _owner_template(event.body)
        if owner is not None:
            self.queue.enqueue((event.namespace, owner))

    def vm_changed(self, event: WatchEvent) -> None:
        """A published VM powering off (or appearing) lets its template go on."""
        for key, entry in self.templates.items():
            namespace, _ = cast(Key, key)
            if (
                namespace == event.namespace
                and entry.spec is not None
                and entry.spec.source.virtual_machine_name == event.name
            ):
                self.queue.enqueue(cast(Key, key))

    def storage_policy_changed(self, event: WatchEvent) -> None:
        for key, entry in self.templates.items():
            if _ready(entry.body.get("status") or {}).get("reason") == "StoragePolicyNotFound":
                self.queue.enqueue(cast(Key, key))

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(VIRTUAL_MACHINE_TEMPLATE.resource, cls.template_changed),
            Watch(DATAVOLUMES, cls.cdi_object_changed, labels=OURS),
            Watch(DATASOURCES, cls.cdi_object_changed, labels=OURS),
            Watch(VDC_VMS.resource, cls.vm_changed),
            Watch(STORAGE_POLICY_CACHE.resource, cls.storage_policy_changed),
        )


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            found: Mapping[str, Any] = condition
            return found
    return {}



