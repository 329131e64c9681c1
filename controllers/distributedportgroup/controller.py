"""The DistributedPortGroup controller: one NetworkAttachmentDefinition per admitted
namespace, kept equal to the port group, and a deletion held while VMs use it.

A pass over a port group:
- adds the finalizer (VMs on it must go, or move, before it does);
- resolves its switch (missing, invalid, or an MTU above the switch's: Ready=False naming the
  field, and no NAD is written);
- writes the NAD in every namespace the namespaceSelector admits where it is missing or
  differs (a change of VLAN, MTU or policy reaches every namespace), and deletes ours from
  namespaces that are no longer admitted;
- writes the status: namespaces[] with the NAD, the VMs attached, what is not enforced, Ready.
Deleting: held while VDC VMs have a NIC on it (status.inUseBy and an Event name them); then
its NADs are deleted and the finalizer removed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal

import kopf

from controllers.common.apply import patch_status, post_event
from controllers.common.caches import NAMESPACE_CACHE
from controllers.common.conditions import Condition, find_condition, mark_false, mark_true
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.kube import KubeError
from controllers.common.logging import get_logger
from controllers.distributedportgroup.admission import admits_namespace
from controllers.distributedportgroup.builders import (
    FINALIZER,
    PORT_GROUP_LABEL,
    attached_vms,
    build_network_attachment,
    effective_mtu,
    network_attachment_differs,
    not_enforced,
    vlan_display,
)
from controllers.distributedportgroup.kind import DISTRIBUTED_PORT_GROUP, PORT_GROUP_CACHE
from controllers.distributedportgroup.models import DistributedPortGroupSpec
from controllers.distributedswitch.builders import bridge_name_for
from controllers.distributedswitch.kind import DISTRIBUTED_SWITCH, DISTRIBUTED_SWITCH_CACHE
from controllers.virtualmachine.controller import VDC_VMS
from kubekit.resources import NADS, NAMESPACES

log = get_logger("vdcos.distributedportgroup")

#: VM changes only move the VM count; gather them into one status write.
VM_COUNT_COALESCE_SECONDS: Final = 2.0
NadOutcome = Literal["written", "deleted", "gone", "failed"]
#: NAD writes of one pass in flight at once (a port group may reach hundreds of namespaces).
NAD_WRITE_CONCURRENCY: Final = 16


def _slim_nad(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "labels": dict(metadata.get("labels") or {}),
            "annotations": dict(metadata.get("annotations") or {}),
        },
        "spec": {"config": (body.get("spec") or {}).get("config")},
    }


def _nad_entry(body: Mapping[str, Any]) -> dict[Hashable, dict[str, Any]]:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return {str(labels[PORT_GROUP_LABEL]): _slim_nad(body)}


#: Our NADs, by the port group they realise (one per namespace).
NAD_CACHE: Final = CacheSpec[dict[str, Any]](
    "vdcos_network_attachments", NADS, _nad_entry, labels={PORT_GROUP_LABEL: kopf.PRESENT}
)


class DistributedPortGroupController(Controller[str]):
    name = "distributedportgroups"
    kind = DISTRIBUTED_PORT_GROUP
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        PORT_GROUP_CACHE,
        DISTRIBUTED_SWITCH_CACHE,
        NAMESPACE_CACHE,
        NAD_CACHE,
        VDC_VMS,
    )

    def __init__(self, context: OperatorContext) -> None:
        self.port_groups = context.cache(PORT_GROUP_CACHE)
        self.switches = context.cache(DISTRIBUTED_SWITCH_CACHE)
        self.namespaces = context.cache(NAMESPACE_CACHE)
        self.nads = context.cache(NAD_CACHE)
        self.vms = context.cache(VDC_VMS)
        # What this operator wrote (None: deleted) and the NAD watch has not shown back yet:
        # a pass that runs before the watch event must not write the same again.
        self.written: dict[tuple[str, str], dict[str, Any] | None] = {}
        super().__init__(context)

    async def reconcile(self, name: str) -> None:
        entry = self.port_groups.get(name)
        if entry is None:
            return  # gone: its NADs (owned by it) follow
        port_group = entry.body
        metadata = port_group["metadata"]
        generation = int(metadata.get("generation") or 1)
        previous: Mapping[str, Any] = port_group.get("status") or {}
        conditions: list[Condition] = list(previous.get("conditions") or [])
        now = datetime.now(UTC)
        vms = attached_vms(name, self.vms.values())
        status: dict[str, Any] = {"virtualMachines": len(vms), "observedGeneration": generation}
        if metadata.get("deletionTimestamp"):
            await self._delete(port_group, previous, status, conditions, vms, now)
            return
        if FINALIZER not in (metadata.get("finalizers") or []):
            await self._set_finalizer(port_group, add=True)
        if entry.spec is None:
            status["namespaces"] = self._namespaces_with_nad(name)
            status["conditions"] = mark_false(
                conditions,
                "Ready",
                "InvalidSpec",
                entry.invalid or "spec is invalid",
                observed_generation=generation,
                now=now,
            )
        else:
            ready, reason, message = await self._converge(port_group, entry.spec, status)
            mark = mark_true if ready else mark_false
            status["conditions"] = mark(
                conditions, "Ready", reason, message, observed_generation=generation, now=now
            )
        await patch_status(self.kube, DISTRIBUTED_PORT_GROUP.resource, None, name, previous, status)

    async def _converge(
        self,
        port_group: Mapping[str, Any],
        spec: DistributedPortGroupSpec,
        status: dict[str, Any],
    ) -> tuple[bool, str, str]:
        """Writes the NADs when the switch allows; fills the status; says whether Ready."""
        name = str(port_group["metadata"]["name"])
        status["vlan"] = vlan_display(spec.vlan)
        status["notEnforced"] = not_enforced(spec)
        switch = self.switches.get(spec.switch_name)
        if switch is None or switch.spec is None:
            status["namespaces"] = self._namespaces_with_nad(name)
            why = "does not exist" if switch is None else "is invalid"
            return (
                False,
                "SwitchNotFound" if switch is None else "SwitchInvalid",
                f'spec.switchName: DistributedSwitch "{spec.switch_name}" {why}',
            )
        bridge = bridge_name_for(spec.switch_name, switch.spec)
        status["bridgeName"] = bridge
        status["mtu"] = effective_mtu(spec, switch.spec.mtu)
        if spec.mtu is not None and spec.mtu > switch.spec.mtu:
            status["namespaces"] = self._namespaces_with_nad(name)
            return (
                False,
                "MTUTooLarge",
                f"spec.mtu: {spec.mtu} is above the MTU of DistributedSwitch "
                f'"{spec.switch_name}" ({switch.spec.mtu})',
            )
        admitted = sorted(
            str(namespace)
            for namespace, labels in self.namespaces.items()
            if admits_namespace(spec, labels)
        )
        live = self._live_nads(name)
        writes = []
        for namespace in admitted:
            desired = build_network_attachment(port_group, spec, namespace, bridge, switch.spec.mtu)
            if namespace not in live or network_attachment_differs(desired, live[namespace]):
                writes.append(self._write_nad(name, desired, namespace in live))
        removals = [
            self._delete_nad(name, namespace, str(nad["metadata"]["name"]))
            for namespace, nad in live.items()
            if namespace not in admitted
        ]
        outcomes = dict(await _bounded(writes + removals, NAD_WRITE_CONCURRENCY))
        failed = sorted(namespace for namespace, outcome in outcomes.items() if outcome == "failed")
        status["namespaces"] = [
            namespace for namespace in admitted if outcomes.get(namespace) not in ("failed", "gone")
        ]
        if failed:
            return (
                False,
                "NetworkAttachmentFailed",
                f"could not write the NetworkAttachmentDefinition in {', '.join(failed)}",
            )
        if spec.namespace_selector is None:
            return True, "NoNamespaces", "spec.namespaceSelector is absent: no namespace may attach"
        return (
            True,
            "Available",
            f"NetworkAttachmentDefinition in {len(admitted)} namespace"
            + ("" if len(admitted) == 1 else "s"),
        )

    def _live_nads(self, name: str) -> dict[str, Mapping[str, Any]]:
        """The port group's NADs by namespace: the cache, overlaid with our unseen writes."""
        live: dict[str, Mapping[str, Any]] = {
            str(nad["metadata"]["namespace"]): nad for nad in self.nads.values_of(name)
        }
        for (port_group, namespace), written in self.written.items():
            if port_group != name:
                continue
            if written is None:
                live.pop(namespace, None)
            else:
                live[namespace] = written
        return live

    async def _write_nad(
        self, name: str, desired: dict[str, Any], exists: bool
    ) -> tuple[str, NadOutcome]:
        """Applies one NAD: (its namespace, "written", or "gone" when the namespace is being
        deleted or is gone, or "failed" when the server refused it)."""
        namespace = str(desired["metadata"]["namespace"])
        try:
            self.written[(name, namespace)] = _slim_nad(await self.kube.apply(NADS, desired))
        except KubeError as error:
            if error.status not in (403, 404, 409, 422):
                raise
            # 403 "is being terminated" / 404: the namespace goes; its watch event follows.
            outcome: NadOutcome = "gone" if error.status in (403, 404) else "failed"
            log.info(
                "Could not write NetworkAttachmentDefinition",
                namespace=namespace,
                name=desired["metadata"]["name"],
                status=error.status,
            )
            return namespace, outcome
        log.info(
            "Updated NetworkAttachmentDefinition"
            if exists
            else "Created NetworkAttachmentDefinition",
            namespace=namespace,
            name=desired["metadata"]["name"],
        )
        return namespace, "written"

    async def _delete_nad(self, name: str, namespace: str, nad_name: str) -> tuple[str, NadOutcome]:
        await self.kube.delete(NADS, namespace, nad_name)
        self.written[(name, namespace)] = None
        log.info("Deleted NetworkAttachmentDefinition", namespace=namespace, name=nad_name)
        return namespace, "deleted"

    async def _delete(
        self,
        port_group: Mapping[str, Any],
        previous: Mapping[str, Any],
        status: dict[str, Any],
        conditions: list[Condition],
        vms: list[str],
        now: datetime,
    ) -> None:
        """Deletion: held while VMs are attached; then the NADs go and the finalizer too."""
        name = str(port_group["metadata"]["name"])
        if FINALIZER not in (port_group["metadata"].get("finalizers") or []):
            return
        if vms:
            message = (
                f"deletion waits: VirtualMachine{'s' if len(vms) > 1 else ''} {', '.join(vms)} "
                f"{'have NICs' if len(vms) > 1 else 'has a NIC'} on the port group"
            )
            before = find_condition(conditions, "Ready")
            kept = {key: value for key, value in previous.items() if key != "conditions"}
            status = {**kept, **status, "inUseBy": vms}
            status["conditions"] = mark_false(
                conditions,
                "Ready",
                "InUse",
                message,
                observed_generation=status.get("observedGeneration"),
                now=now,
            )
            if before is None or before["message"] != message:
                await post_event(self.kube, port_group, "Warning", "DeletionBlocked", message)
            await patch_status(
                self.kube, DISTRIBUTED_PORT_GROUP.resource, None, name, previous, status
            )
            return
        for nad in self.nads.values_of(name):
            await self._delete_nad(
                name, str(nad["metadata"]["namespace"]), str(nad["metadata"]["name"])
            )
        await self._set_finalizer(port_group, add=False)

    async def _set_finalizer(self, port_group: Mapping[str, Any], *, add: bool) -> None:
        finalizers = [
            item for item in port_group["metadata"].get("finalizers") or [] if item != FINALIZER
        ]
        if add:
            finalizers.append(FINALIZER)
        try:
            await self.kube.patch(
                DISTRIBUTED_PORT_GROUP.resource,
                None,
                str(port_group["metadata"]["name"]),
                {"metadata": {"finalizers": finalizers or None}},
            )
        except KubeError as error:
            if error.status != 404:
                raise

    def _namespaces_with_nad(self, name: str) -> list[str]:
        return sorted(str(nad["metadata"]["namespace"]) for nad in self.nads.values_of(name))

    # ------------------------------------------------------------------ events

    def port_group_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue(event.name)

    def switch_changed(self, event: WatchEvent) -> None:
        for key, entry in self.port_groups.items():
            if entry.body["spec"].get("switchName") == event.name:
                self.queue.enqueue(str(key))

    def namespace_changed(self, event: WatchEvent) -> None:
        self.enqueue_all(self.port_groups.keys())

    def nad_changed(self, event: WatchEvent) -> None:
        labels = (event.body.get("metadata") or {}).get("labels") or {}
        if PORT_GROUP_LABEL in labels:
            port_group = str(labels[PORT_GROUP_LABEL])
            # The watch has caught up with what we wrote there: the cache tells from now on.
            self.written.pop((port_group, event.namespace), None)
            self.queue.enqueue(port_group)

    def vm_changed(self, event: WatchEvent) -> None:
        self.enqueue_all(self.port_groups.keys(), VM_COUNT_COALESCE_SECONDS)

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(DISTRIBUTED_PORT_GROUP.resource, cls.port_group_changed),
            Watch(DISTRIBUTED_SWITCH.resource, cls.switch_changed),
            Watch(NAMESPACES, cls.namespace_changed),
            Watch(NADS, cls.nad_changed, labels={PORT_GROUP_LABEL: kopf.PRESENT}),
            Watch(VDC_VMS.resource, cls.vm_changed),
        )


async def _bounded(calls: Sequence[Any], limit: int) -> list[Any]:
    """Awaits the coroutines with at most `limit` in flight; their results in order."""
    gate = asyncio.Semaphore(limit)

    async def gated(call: Any) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(gated(call) for call in calls)))
