"""The VirtualApp controller: a vApp's VMs, their power sequence, scaling and OVF environment.

A pass over one app reads the app, its VDC VMs and their VMIs from the caches, asks the
planner (`sequence.plan`) what to do now, then writes: each VM's OVF environment object
(before the VM that names it), the VMs (server-side apply, only when they differ), hard stops,
scale-in removals, one Event per step, and the status, which carries the sequence's marks.
When a start or stop delay is running, the key is asked for again when it runs out: no sleep
in a pass, and a restarted operator reads the marks from status and carries on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Final

import kopf

from controllers.common.apply import patch_status, post_event
from controllers.common.caches import SpecEntry
from controllers.common.conditions import Condition, mark_false, mark_true
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.kube import KubeError
from controllers.common.logging import get_logger
from controllers.virtualapp.builders import (
    PREVIOUS_ENVIRONMENT_ANNOTATION,
    Environment,
    MemberReplica,
    app_status,
    environment_name_of,
    environment_object,
    environment_resource_of,
    environments,
    member_vm,
    name_problem,
    observed_vm,
    recorded_times,
    replicas_of,
    slim_app_vm,
    vm_differs,
)
from controllers.virtualapp.kind import APP_LABEL, VIRTUAL_APP, VIRTUAL_APP_CACHE
from controllers.virtualapp.models import VirtualAppSpec
from controllers.virtualapp.sequence import Plan, PowerChange, plan
from controllers.virtualmachine.controller import OWNED, VMI_CACHE
from controllers.virtualmachine.kind import VIRTUAL_MACHINE
from controllers.virtualmachine.observed import Key
from kubekit.resources import VMIS, ResourceRef

log = get_logger("vdcos.virtualapp")

KUBEVIRT_VM_SUBRESOURCES: Final = ResourceRef("subresources.kubevirt.io", "v1", "virtualmachines")
APP_MEMBERS: Final = {APP_LABEL: kopf.PRESENT}


def _app_key(body: Mapping[str, Any]) -> Key:
    metadata = body.get("metadata") or {}
    return (str(metadata.get("namespace") or ""),
            str((metadata.get("labels") or {}).get(APP_LABEL)))


def _vm_key(body: Mapping[str, Any]) -> Key:
    metadata = body.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name")))


#: The VDC VMs of every app, by (namespace, app): several per key.
APP_VMS: Final = CacheSpec[dict[str, Any]](
    "vdcos_virtualapp_vms", VIRTUAL_MACHINE.resource,
    lambda body: {_app_key(body): slim_app_vm(body)}, labels=APP_MEMBERS,
)
#: The app of every app VM, by (namespace, VM name): a VMI's event finds its app.
APP_OF_VM: Final = CacheSpec[str](
    "vdcos_virtualapp_of_vm", VIRTUAL_MACHINE.resource,
    lambda body: {_vm_key(body): _app_key(body)[1]}, labels=APP_MEMBERS,
)
#: A moment after a delay runs out, so the pass sees it out.
_DELAY_MARGIN_SECONDS: Final = 0.05


def _platform_version() -> str:
    try:
        return version("vdcos")
    except PackageNotFoundError:
        return "0"


class VirtualAppController(Controller[Key]):
    name = "virtualapps"
    kind = VIRTUAL_APP
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (VIRTUAL_APP_CACHE, APP_VMS, APP_OF_VM,
                                                    VMI_CACHE)

    def __init__(self, context: OperatorContext) -> None:
        self.apps = context.cache(VIRTUAL_APP_CACHE)
        self.vms = context.cache(APP_VMS)
        self.app_of_vm = context.cache(APP_OF_VM)
        self.vmis = context.cache(VMI_CACHE)
        self.platform_version = _platform_version()
        super().__init__(context)

    async def reconcile(self, key: Key) -> None:
        entry = self.apps.get(key)
        if entry is None or entry.body["metadata"].get("deletionTimestamp"):
            return  # its VMs and documents go with it (ownerReferences)
        if entry.spec is None:
            await self._write(entry, {"phase": "Degraded"}, False, "InvalidSpec",
                              entry.invalid or "spec is invalid")
            return
        app = key[1]
        problem = name_problem(app, entry.spec)
        if problem is not None:
            await self._write(entry, {"phase": "Degraded"}, False, "InvalidSpec", problem)
            return
        uid = entry.body["metadata"]["uid"]
        live = {str(vm["metadata"]["name"]): vm for vm in self.vms.values_of(key)
                if any(ref.get("uid") == uid for ref in vm["metadata"].get("ownerReferences")
                       or [])}
        observed = [found for vm in live.values()
                    if (found := observed_vm(vm, self.vmis.get((key[0], vm["metadata"]["name"]))))
                    is not None]
        status: Mapping[str, Any] = entry.body.get("status") or {}
        now = datetime.now(UTC)
        decided = plan(entry.spec, observed, recorded_times(status), status.get("powerState"),
                       now)
        await self._remove(decided, live)
        taken = await self._apply_vms(entry, entry.spec, decided, live)
        if taken:
            decided.phase, decided.ready, decided.reason = "Degraded", False, "NameTaken"
            decided.message = (f"VirtualMachine {', '.join(taken)} exists and is not this "
                               "app's: delete or rename it")
        for step in decided.steps:
            log.info(step.message, namespace=key[0], app=app, reason=step.reason)
            await post_event(self.kube, entry.body, "Normal", step.reason, step.message)
        await self._write(entry, app_status(entry.spec, decided, observed), decided.ready,
                          decided.reason, decided.message)
        if decided.requeue_after is not None:
            self.queue.enqueue(key, decided.requeue_after + _DELAY_MARGIN_SECONDS)

    async def _remove(self, decided: Plan, live: Mapping[str, Mapping[str, Any]]) -> None:
        """Scale-in: the newest replicas, stopped hard first with PowerOff; their documents."""
        for removal in decided.removals:
            vm = live[removal.vm]
            namespace = str(vm["metadata"]["namespace"])
            if removal.hard:
                await self._hard_stop(namespace, removal.vm)
            await self.kube.delete(VIRTUAL_MACHINE.resource, namespace, removal.vm)
            for name in (environment_name_of(vm),
                         (vm["metadata"].get("annotations") or {}).get(
                             PREVIOUS_ENVIRONMENT_ANNOTATION)):
                if name:
                    await self.kube.delete(environment_resource_of(vm, str(name)), namespace,
                                           str(name))

    async def _apply_vms(self, entry: SpecEntry[VirtualAppSpec], spec: VirtualAppSpec,
                         decided: Plan, live: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Writes every replica's VM; returns the names another object already has."""
        app = str(entry.body["metadata"]["name"])
        taken: list[str] = []
        changes = {change.vm: change for change in decided.power_changes}
        created = {(c.member, c.replica): c.power for c in decided.creations}
        documents = environments(app, spec, self.platform_version)
        replicas = replicas_of(app, spec)
        wanted = {replica.name for replica in replicas}
        for leaving in decided.power_changes:
            if leaving.vm not in wanted:  # a replica scaling in: its guest shuts down first
                await self.kube.patch(VIRTUAL_MACHINE.resource, str(entry.body["metadata"][
                    "namespace"]), leaving.vm, {"spec": {"powerState": leaving.power}})
        for replica in replicas:
            current = live.get(replica.name)
            change = changes.get(replica.name)
            power: str
            if change is not None:
                power = change.power
            elif current is not None:
                power = str((current.get("spec") or {}).get("powerState") or "PoweredOff")
            else:
                power = created.get((replica.member.name, replica.replica), "PoweredOff")
            if not await self._apply_vm(entry, replica, power, documents[replica.name],
                                        current, change):
                taken.append(replica.name)
        return taken

    async def _apply_vm(self, entry: SpecEntry[VirtualAppSpec], replica: MemberReplica,
                        power: str, environment: Environment,
                        current: Mapping[str, Any] | None, change: PowerChange | None) -> bool:
        """Writes one replica's VM (and its documents); False when its name is taken."""
        namespace = str(entry.body["metadata"]["namespace"])
        in_use = environment_name_of(current) if current is not None else None
        previous = ((current or {}).get("metadata") or {}).get("annotations", {}).get(
            PREVIOUS_ENVIRONMENT_ANNOTATION) if current is not None else None
        if in_use != environment.object_name:
            # The document first: the VM names it, and KubeVirt reads it when the VM starts.
            resource, document = environment_object(entry.body, replica.member.name,
                                                    replica.name, environment)
            await self.kube.apply(resource, document)
            if previous and previous not in (in_use, environment.object_name) and current:
                await self.kube.delete(environment_resource_of(current, str(previous)),
                                       namespace, str(previous))
            previous = in_use
            if current is not None:
                log.info("OVF environment changed", namespace=namespace, vm=replica.name,
                         document=environment.object_name)
        desired = member_vm(entry.body, replica, power, environment, previous)
        if current is None:
            # Not in the cache: new, ours not listed yet, or someone else's (left alone).
            existing = await self.kube.get(VIRTUAL_MACHINE.resource, namespace, replica.name)
            owners = ((existing or {}).get("metadata") or {}).get("ownerReferences") or []
            if existing is not None and not any(
                    o.get("uid") == entry.body["metadata"]["uid"] for o in owners):
                return False
        if current is None or vm_differs(desired, current):
            # Server-side apply, so a field the template no longer has is removed.
            await self.kube.apply(VIRTUAL_MACHINE.resource, desired)
        if change is not None and change.hard and change.power == "PoweredOff":
            await self._hard_stop(namespace, replica.name)
        return True

    async def _hard_stop(self, namespace: str, name: str) -> None:
        """stopAction PowerOff: KubeVirt's stop with gracePeriod 0 (no guest shutdown)."""
        try:
            await self.kube.put(KUBEVIRT_VM_SUBRESOURCES, namespace, name, {"gracePeriod": 0},
                                subresource="stop")
        except KubeError as error:
            if error.status not in (404, 409):  # gone, or not running: nothing to stop
                raise

    async def _write(self, entry: SpecEntry[VirtualAppSpec], status: dict[str, Any],
                     ready: bool, reason: str, message: str) -> None:
        metadata = entry.body["metadata"]
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        generation = metadata.get("generation")
        conditions: list[Condition] = list(previous.get("conditions") or [])
        mark = mark_true if ready else mark_false
        desired = {
            **{key: value for key, value in status.items() if value not in (None, [])},
            "conditions": mark(conditions, "Ready", reason or "Pending", message,
                               observed_generation=generation, now=datetime.now(UTC)),
            "observedGeneration": generation,
        }
        await patch_status(self.kube, VIRTUAL_APP.resource, str(metadata["namespace"]),
                           str(metadata["name"]), previous, desired)

    def app_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue((event.namespace, event.name))

    def vm_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue(_app_key(event.body), 0.1)

    def vmi_changed(self, event: WatchEvent) -> None:
        app = self.app_of_vm.get((event.namespace, event.name))
        if app is not None:
            self.queue.enqueue((event.namespace, app), 0.1)

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(VIRTUAL_APP.resource, cls.app_changed),
            Watch(VIRTUAL_MACHINE.resource, cls.vm_changed, labels=APP_MEMBERS),
            Watch(VMIS, cls.vmi_changed, labels=OWNED),
        )

