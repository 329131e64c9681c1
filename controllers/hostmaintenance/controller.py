"""The HostMaintenance controller: maintenance mode of a host.

A pass over one HostMaintenance: before the host is cordoned, refuse (Failed) what would
break a Required rule or HA failover capacity, unless `force`; then cordon the host, ask
the DRS planner (`evacuation_moves`) where its VMs go, create a VirtualMachineMigration per
move (the planner keeps KubeVirt's limits, counting the migrations already running), and
report what still runs there and why. With strategy Shutdown, a VM that cannot migrate is
powered off (its disk data is on this host: it cannot start elsewhere, and is powered on
again when maintenance ends) or restarted (it then starts on another host). Deleting the
HostMaintenance ends maintenance: our finalizer uncordons the host first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from controllers.common.apply import patch_status, post_event
from controllers.common.caches import NODE_CACHE, SpecEntry
from controllers.common.conditions import Condition, mark_false, mark_true
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.kube import KubeError
from controllers.common.logging import get_logger
from controllers.computecluster.builders import selector_matches
from controllers.computecluster.drs import evacuation_moves
from controllers.computecluster.kind import COMPUTE_CLUSTER_CACHE
from controllers.computecluster.models import ComputeClusterSpec
from controllers.hostmaintenance.builders import (
    evacuation_migration_name,
    failover_shortfall,
    remaining_on_host,
    rule_refusal,
    shutdown_action,
)
from controllers.hostmaintenance.kind import (
    HOST_MAINTENANCE,
    HOST_MAINTENANCE_CACHE,
    MAINTENANCE_FINALIZER,
    MAINTENANCE_NODE_ANNOTATION,
    POWERED_OFF_BY_ANNOTATION,
)
from controllers.hostmaintenance.models import HostMaintenanceSpec
from controllers.virtualmachine.controller import OWNED, VDC_VMS, VMI_CACHE
from controllers.virtualmachine.kind import VIRTUAL_MACHINE
from controllers.virtualmachinemigration.builders import migration_manifest
from controllers.virtualmachinemigration.cluster_state import (
    IN_FLIGHT_PHASES,
    cluster_state,
    vm_key,
)
from controllers.virtualmachinemigration.controller import ANY_HOST
from controllers.virtualmachinemigration.kind import (
    HOST_MAINTENANCE_LABEL,
    REQUESTED_BY_MAINTENANCE,
    VIRTUAL_MACHINE_MIGRATION,
    VIRTUAL_MACHINE_MIGRATION_CACHE,
)
from kubekit.resources import NODES, VMIS, ResourceRef

log = get_logger("vdcos.maintenance")

KUBEVIRT_VM_SUBRESOURCES: Final = ResourceRef("subresources.kubevirt.io", "v1", "virtualmachines")


class HostMaintenanceController(Controller[str]):
    name = "hostmaintenances"
    kind = HOST_MAINTENANCE
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        HOST_MAINTENANCE_CACHE,
        VIRTUAL_MACHINE_MIGRATION_CACHE,
        VDC_VMS,
        VMI_CACHE,
        COMPUTE_CLUSTER_CACHE,
        NODE_CACHE,
    )
    workers = 1

    def __init__(self, context: OperatorContext) -> None:
        self.maintenances = context.cache(HOST_MAINTENANCE_CACHE)
        self.migrations = context.cache(VIRTUAL_MACHINE_MIGRATION_CACHE)
        self.vdc_vms = context.cache(VDC_VMS)
        self.vmis = context.cache(VMI_CACHE)
        self.clusters = context.cache(COMPUTE_CLUSTER_CACHE)
        self.nodes = context.cache(NODE_CACHE)
        # (maintenance, VM) restarted by a Shutdown maintenance: asked once per operator run
        # (a VM that restarted elsewhere no longer holds the host).
        self._restarted: set[tuple[str, str]] = set()
        super().__init__(context)

    async def reconcile(self, name: str) -> None:
        entry = self.maintenances.get(name)
        if entry is None:
            return
        metadata = entry.body["metadata"]
        if metadata.get("deletionTimestamp"):
            await self._end(entry)
            return
        if MAINTENANCE_FINALIZER not in (metadata.get("finalizers") or []):
            await self.kube.patch(HOST_MAINTENANCE.resource, None, name, {"metadata": {
                "finalizers": [*(metadata.get("finalizers") or []), MAINTENANCE_FINALIZER]}})
        if entry.spec is None:
            await self._write(entry, {"phase": "Failed"}, False, "InvalidSpec",
                              entry.invalid or "spec is invalid")
            return
        spec = entry.spec
        node = self.nodes.get(spec.host_name)
        if node is None:
            await self._write(entry, {"phase": "Failed"}, False, "HostNotFound",
                              f"hostName: no host (Node) named {spec.host_name}")
            return
        # A host normally belongs to one cluster; clusters may overlap, and VMs that name
        # none may run anywhere: each group is evacuated with its own rules and capacity.
        groups = []
        for cluster_name, cluster_spec in self._clusters_of(node):
            state, vms = cluster_state(
                cluster_name, cluster_spec, self.nodes.values(), self._vms_of(cluster_name),
                self._vmis(), (m.body for m in self.migrations.values()))
            groups.append((cluster_spec, state, vms,
                           evacuation_moves(spec.host_name, state)))
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        schedulable = not (node.get("spec") or {}).get("unschedulable")
        named = [name for name, _ in self._clusters_of(node) if name is not None]
        base: dict[str, Any] = {"clusterName": named[0] if named else None,
                                "poweredOffVirtualMachines":
                                    list(previous.get("poweredOffVirtualMachines") or [])}
        if previous.get("phase") not in ("Entering", "InMaintenance") and not spec.force:
            for cluster_spec, state, vms, evacuation in groups:
                refused = rule_refusal(evacuation)
                reason = "RuleViolation"
                if refused is None and cluster_spec is not ANY_HOST:
                    refused = failover_shortfall(cluster_spec.ha, state.hosts, vms,
                                                 spec.host_name)
                    reason = "InsufficientFailoverCapacity"
                if refused is None:
                    continue
                if previous.get("phase") != "Failed":
                    log.warning("Refused HostMaintenance", name=name, host=spec.host_name,
                                reason=reason, message=refused)
                    await post_event(self.kube, entry.body, "Warning", reason, refused)
                await self._write(entry, {**base, "phase": "Failed"}, False, reason,
                                  f"{refused} (set spec.force to enter maintenance anyway)")
                return
        if schedulable:
            await self.kube.patch(NODES, None, spec.host_name, {
                "metadata": {"annotations": {MAINTENANCE_NODE_ANNOTATION: name}},
                "spec": {"unschedulable": True}})
            log.info("Host entering maintenance", name=name, host=spec.host_name)
        migrating = self._migrating_to()
        remaining = []
        for _, _, vms, evacuation in groups:
            for move in evacuation.moves:
                if move.vm in migrating:
                    continue
                namespace, vm_name = move.vm.split("/", 1)
                try:
                    await self.kube.create(VIRTUAL_MACHINE_MIGRATION.resource, migration_manifest(
                        namespace, vm_name, move.target, requested_by=REQUESTED_BY_MAINTENANCE,
                        labels={HOST_MAINTENANCE_LABEL: name},
                        name=evacuation_migration_name(name, vm_name)))
                except KubeError as error:
                    if error.status != 409:  # 409: asked already; not in the cache yet
                        raise
            shutting_down: dict[str, str] = {}
            if spec.strategy == "Shutdown":
                shutting_down = await self._shut_down(entry, spec, vms, evacuation, base)
            remaining += remaining_on_host(vms, spec.host_name, evacuation, migrating,
                                           shutting_down)
        status = {
            **base,
            "remainingVirtualMachines": [
                {"namespace": r.namespace, "name": r.name, "reason": r.reason} for r in remaining],
            "migrationsInProgress": sum(
                1 for m in self.migrations.values()
                if (m.body["metadata"].get("labels") or {}).get(HOST_MAINTENANCE_LABEL) == name
                and (m.body.get("status") or {}).get("phase") in IN_FLIGHT_PHASES),
        }
        if not remaining:
            if previous.get("phase") != "InMaintenance":
                log.info("Host in maintenance", name=name, host=spec.host_name)
            await self._write(entry, {**status, "phase": "InMaintenance"}, True, "InMaintenance",
                              f"no VM of the cluster runs on {spec.host_name}")
            return
        pinned = [r for r in remaining
                  if not r.reason.startswith(("migrating", "migration limit", "powering"))]
        listed = "; ".join(f"{r.namespace}/{r.name}: {r.reason}" for r in remaining[:5])
        if pinned and spec.strategy == "Migrate":
            message = (f"{len(pinned)} VM(s) cannot leave {spec.host_name}: {listed}. Power "
                       "them off, or use strategy Shutdown")
            await self._write(entry, {**status, "phase": "Entering"}, False,
                              "VirtualMachinesPinned", message)
            return
        await self._write(entry, {**status, "phase": "Entering"}, False, "Evacuating",
                          f"{len(remaining)} VM(s) still on {spec.host_name}: {listed}")

    async def _shut_down(self, entry: SpecEntry[HostMaintenanceSpec], spec: HostMaintenanceSpec,
                         vms: Sequence[Any], evacuation: Any,
                         base: dict[str, Any]) -> dict[str, str]:
        """Power off or restart every VM the planner cannot move; says what each is doing."""
        name = str(entry.body["metadata"]["name"])
        doing: dict[str, str] = {}
        held = {h.vm: h.reason for h in evacuation.held if not h.retriable}
        for vm in vms:
            if vm.host != spec.host_name or vm.load.migratable or vm.key not in held:
                continue
            reason = vm.load.not_migratable_reason
            action = shutdown_action(reason)
            if action == "PowerOff":
                doing[vm.key] = f"powering off ({reason}; powered on again when maintenance ends)"
                if vm.key in base["poweredOffVirtualMachines"]:
                    continue  # asked already; the VM is stopping
                base["poweredOffVirtualMachines"].append(vm.key)
                await self.kube.patch(VIRTUAL_MACHINE.resource, vm.namespace, vm.name, {
                    "metadata": {"annotations": {POWERED_OFF_BY_ANNOTATION: name}},
                    "spec": {"powerState": "PoweredOff"}})
                message = (f"Powered off for maintenance of {spec.host_name}: {reason}; it "
                           "cannot start on another host and is powered on again when "
                           "maintenance ends")
            else:
                doing[vm.key] = f"powering off to start elsewhere ({reason})"
                if (name, vm.key) in self._restarted:
                    continue  # asked already; the VM is restarting
                self._restarted.add((name, vm.key))
                try:
                    await self.kube.put(KUBEVIRT_VM_SUBRESOURCES, vm.namespace, vm.name, {},
                                        subresource="restart")
                except KubeError as error:
                    if error.status != 409:
                        raise
                message = (f"Restarted on another host for maintenance of {spec.host_name}: "
                           f"{reason}")
            log.info(message, namespace=vm.namespace, vm=vm.name, maintenance=name)
            vdc_vm = self.vdc_vms.get((vm.namespace, vm.name))
            if vdc_vm is not None:
                await post_event(self.kube, vdc_vm, "Normal", "MaintenanceShutdown", message)
        return doing

    async def _end(self, entry: SpecEntry[HostMaintenanceSpec]) -> None:
        """Maintenance ends: uncordon (if we cordoned), power on what we powered off, and let
        the object go."""
        metadata = entry.body["metadata"]
        name = str(metadata["name"])
        status: Mapping[str, Any] = entry.body.get("status") or {}
        host = str((entry.body.get("spec") or {}).get("hostName") or "")
        # Read, not cached: only the maintenance that cordoned the host (the annotation says
        # which) uncordons it; a host a person cordoned before stays cordoned.
        node = await self.kube.get(NODES, None, host) if host else None
        annotations = ((node or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(MAINTENANCE_NODE_ANNOTATION) == name:
            await self.kube.patch(NODES, None, host, {
                "metadata": {"annotations": {MAINTENANCE_NODE_ANNOTATION: None}},
                "spec": {"unschedulable": None}})
            log.info("Host left maintenance", name=name, host=host)
        for key in status.get("poweredOffVirtualMachines") or []:
            namespace, vm_name = str(key).split("/", 1)
            try:
                await self.kube.patch(VIRTUAL_MACHINE.resource, namespace, vm_name, {
                    "metadata": {"annotations": {POWERED_OFF_BY_ANNOTATION: None}},
                    "spec": {"powerState": "PoweredOn"}})
            except KubeError as error:
                if error.status != 404:
                    raise
        finalizers = [f for f in metadata.get("finalizers") or [] if f != MAINTENANCE_FINALIZER]
        if len(finalizers) != len(metadata.get("finalizers") or []):
            await self.kube.patch(HOST_MAINTENANCE.resource, None, name,
                                  {"metadata": {"finalizers": finalizers or None}})

    async def _write(self, entry: SpecEntry[HostMaintenanceSpec], status: dict[str, Any],
                     ready: bool, reason: str, message: str) -> None:
        metadata = entry.body["metadata"]
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        generation = metadata.get("generation")
        conditions: list[Condition] = list(previous.get("conditions") or [])
        mark = mark_true if ready else mark_false
        desired = {
            **{key: value for key, value in status.items() if value not in (None, [])},
            "conditions": mark(conditions, "Ready", reason, message,
                               observed_generation=generation, now=datetime.now(UTC)),
            "observedGeneration": generation,
        }
        await patch_status(self.kube, HOST_MAINTENANCE.resource, None, str(metadata["name"]),
                           previous, desired)

    def _clusters_of(self, node: Mapping[str, Any]) -> list[tuple[str | None, ComputeClusterSpec]]:
        """The ComputeClusters whose hostSelector picks the host (by name), then the group of
        VMs that name no cluster (None: any host)."""
        labels = (node.get("metadata") or {}).get("labels") or {}
        found: list[tuple[str | None, ComputeClusterSpec]] = [
            (str(key), cluster.spec)
            for key, cluster in sorted(self.clusters.items(), key=lambda item: str(item[0]))
            if cluster.spec is not None and selector_matches(cluster.spec.host_selector, labels)
        ]
        return [*found, (None, ANY_HOST)]

    def _migrating_to(self) -> dict[str, str]:
        """VM key -> target host of every migration request not finished."""
        found: dict[str, str] = {}
        for migration in self.migrations.values():
            status = migration.body.get("status") or {}
            if status.get("phase") in ("Succeeded", "Failed"):
                continue
            spec = migration.body.get("spec") or {}
            key = vm_key(str(migration.body["metadata"]["namespace"]),
                         str(spec.get("virtualMachineName")))
            found[key] = str(status.get("targetHost") or spec.get("targetHost") or "a host")
        return found

    def _vms_of(self, cluster_name: str | None) -> list[Mapping[str, Any]]:
        return [vm for vm in self.vdc_vms.values()
                if ((vm.get("spec") or {}).get("clusterName") or None) == cluster_name]

    def _vmis(self) -> dict[tuple[str, str], Mapping[str, Any]]:
        return {key: value for key, value in self.vmis.items() if isinstance(key, tuple)}

    def maintenance_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue(event.name)

    def anything_changed(self, event: WatchEvent) -> None:
        # Few HostMaintenances exist at a time: each looks again, a moment later, in one pass.
        self.enqueue_all(self.maintenances.keys(), 0.5)

    def migration_changed(self, event: WatchEvent) -> None:
        owner = ((event.body.get("metadata") or {}).get("labels") or {}).get(
            HOST_MAINTENANCE_LABEL)
        if owner:
            self.queue.enqueue(str(owner), 0.2)

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(HOST_MAINTENANCE.resource, cls.maintenance_changed),
            Watch(VIRTUAL_MACHINE_MIGRATION.resource, cls.migration_changed),
            Watch(VMIS, cls.anything_changed, labels=OWNED),
            Watch(NODES, cls.anything_changed),
        )
