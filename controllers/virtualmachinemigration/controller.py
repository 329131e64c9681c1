"""The VirtualMachineMigration controller: vMotion requests -> KubeVirt live migrations.

A pass over one request: once, when it is new, decide (is the VM running and migratable;
the named target, checked by the DRS planner's `refusal`, or the host `choose_target`
picks) and either refuse it (Failed, with the reason) or create the KubeVirt
VirtualMachineInstanceMigration; afterwards, follow that migration's phase. When it ends
the VDC VM gets an Event saying who asked ("Migrated by DRS from host-1 to host-3: ...")
and the operator logs one line. A finished request never changes again.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, get_args

import kopf

from controllers.common.apply import EventType, patch_status, post_event
from controllers.common.caches import NODE_CACHE, SpecEntry
from controllers.common.conditions import Condition, timestamp
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.kube import KubeError
from controllers.common.logging import get_logger
from controllers.computecluster.drs import choose_target, refusal
from controllers.computecluster.kind import COMPUTE_CLUSTER_CACHE
from controllers.computecluster.models import ComputeClusterSpec, LabelSelector
from controllers.virtualmachine.controller import VDC_VMS, VMI_CACHE
from controllers.virtualmachinemigration.builders import (
    MIGRATION_LABEL,
    kubevirt_migration,
    moved_event_message,
    phase_of,
    succeeded_condition,
)
from controllers.virtualmachinemigration.cluster_state import cluster_state, vm_key
from controllers.virtualmachinemigration.kind import (
    DRS_REASON_ANNOTATION,
    HOST_MAINTENANCE_LABEL,
    REQUESTED_BY_LABEL,
    VIRTUAL_MACHINE_MIGRATION,
    VIRTUAL_MACHINE_MIGRATION_CACHE,
)
from controllers.virtualmachinemigration.models import (
    FINAL_PHASES,
    MigrationPhase,
    RefusalReason,
    VirtualMachineMigrationSpec,
)
from kubekit.resources import VMIMS

log = get_logger("vdcos.vmotion")

Key = tuple[str, str]

#: A VM without a ComputeCluster may go to any host.
ANY_HOST: Final = ComputeClusterSpec(host_selector=LabelSelector())
REFUSAL_REASONS: Final = frozenset(get_args(RefusalReason))
PENDING_MESSAGE: Final = (
    "waiting for KubeVirt to start it: at most parallelMigrationsPerCluster (5) migrations "
    "run at once in the cluster and parallelOutboundMigrationsPerNode (2) leave one host"
)
_STEP_MESSAGES: Final[Mapping[str, str]] = {
    "Scheduling": "the target host is preparing the VM",
    "Running": "memory is being copied to the target host",
    "Succeeded": "the VM runs on the target host",
}


def _slim_kubevirt_migration(body: Mapping[str, Any]) -> dict[Hashable, dict[str, Any]]:
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    state = status.get("migrationState") or {}
    key = (str(metadata.get("namespace")), str((metadata.get("labels") or {})[MIGRATION_LABEL]))
    return {key: {
        "name": metadata.get("name"),
        "phase": status.get("phase"),
        "failureReason": state.get("failureReason"),
        "targetNode": state.get("targetNode"),
    }}


#: Our KubeVirt migrations by the (namespace, name) of the VirtualMachineMigration they run.
KUBEVIRT_MIGRATIONS: Final = CacheSpec[dict[str, Any]](
    "kubevirt_virtualmachineinstancemigrations",
    VMIMS,
    _slim_kubevirt_migration,
    labels={MIGRATION_LABEL: kopf.PRESENT},
)


class VirtualMachineMigrationController(Controller[Key]):
    name = "virtualmachinemigrations"
    kind = VIRTUAL_MACHINE_MIGRATION
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        VIRTUAL_MACHINE_MIGRATION_CACHE,
        KUBEVIRT_MIGRATIONS,
        VDC_VMS,
        VMI_CACHE,
        COMPUTE_CLUSTER_CACHE,
        NODE_CACHE,
    )

    def __init__(self, context: OperatorContext) -> None:
        self.migrations = context.cache(VIRTUAL_MACHINE_MIGRATION_CACHE)
        self.kubevirt_migrations = context.cache(KUBEVIRT_MIGRATIONS)
        self.vdc_vms = context.cache(VDC_VMS)
        self.vmis = context.cache(VMI_CACHE)
        self.clusters = context.cache(COMPUTE_CLUSTER_CACHE)
        self.nodes = context.cache(NODE_CACHE)
        super().__init__(context)

    async def reconcile(self, key: Key) -> None:
        entry = self.migrations.get(key)
        if entry is None:
            return  # deleted: its KubeVirt migration goes with it (ownerReference)
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        if previous.get("phase") in FINAL_PHASES:
            return
        if entry.spec is None:
            await self._write(entry, "Failed", "InvalidSpec", entry.invalid or "spec is invalid")
            return
        kubevirt = self.kubevirt_migrations.get(key)
        if kubevirt is not None:
            await self._follow(entry, kubevirt)
        elif not previous.get("kubevirtMigrationName"):
            await self._start(entry, entry.spec)
        elif await self.kube.get(VMIMS, key[0], str(previous["kubevirtMigrationName"])) is None:
            # Not merely late in the cache (that read would find it): someone deleted it.
            await self._write(entry, "Failed", "MigrationFailed",
                              "the KubeVirt migration was deleted before it finished",
                              source=previous.get("sourceHost"),
                              target=previous.get("targetHost"),
                              kubevirt_name=str(previous["kubevirtMigrationName"]))
        # else: created, not in the cache yet; its watch event brings the key back.

    async def _start(
        self, entry: SpecEntry[VirtualMachineMigrationSpec], spec: VirtualMachineMigrationSpec
    ) -> None:
        """Refuse the request, or create the KubeVirt migration that runs it."""
        namespace = str(entry.body["metadata"]["namespace"])
        vm_name = spec.virtual_machine_name
        vdc_vm = self.vdc_vms.get((namespace, vm_name))
        if vdc_vm is None:
            await self._write(entry, "Failed", "VirtualMachineNotFound",
                              f"virtualMachineName: VirtualMachine {vm_name} does not exist in "
                              f"namespace {namespace}")
            return
        vmi = self.vmis.get((namespace, vm_name))
        source = str(((vmi or {}).get("status") or {}).get("nodeName") or "")
        if ((vmi or {}).get("status") or {}).get("phase") != "Running" or not source:
            await self._write(entry, "Failed", "VirtualMachineNotRunning",
                              f"VirtualMachine {vm_name} is not running; only a running VM "
                              "is live-migrated (a powered-off one starts where it may)")
            return
        cluster_name = (vdc_vm.get("spec") or {}).get("clusterName")
        cluster_spec = ANY_HOST
        if cluster_name:
            cluster = self.clusters.get(str(cluster_name))
            if cluster is None or cluster.spec is None:
                await self._write(entry, "Failed", "NoTarget",
                                  f"ComputeCluster {cluster_name} of the VM does not exist or "
                                  "is invalid", source=source)
                return
            cluster_spec = cluster.spec
        state, _ = cluster_state(
            str(cluster_name) if cluster_name else None, cluster_spec, self.nodes.values(),
            self._vms_of(cluster_name), self._vmis(),
            (m.body for m in self.migrations.values()),
            excluding_migration=(namespace, str(entry.body["metadata"]["name"])),
        )
        key = vm_key(namespace, vm_name)
        if spec.target_host is not None:
            refused = refusal(key, spec.target_host, state)
            if refused is not None:
                await self._write(entry, "Failed", refused.code, refused.message,
                                  source=source, target=spec.target_host)
                return
            target = spec.target_host
        else:
            choice = choose_target(key, state)
            if choice.target is None:
                await self._write(entry, "Failed", choice.refused or "NoTarget", choice.reason,
                                  source=source)
                return
            target = choice.target
        try:
            await self.kube.create(VMIMS, kubevirt_migration(entry.body, vm_name, target))
        except KubeError as error:
            if error.status != 409:  # 409: made by an earlier pass whose status write failed
                await self._write(entry, "Failed", "MigrationFailed",
                                  f"KubeVirt refused the migration: {error.message}",
                                  source=source, target=target)
                return
        log.info("Accepted VirtualMachineMigration", namespace=namespace,
                 name=entry.body["metadata"]["name"], vm=vm_name, source=source, target=target,
                 requestedBy=self._requested_by(entry) or "user")
        await self._write(entry, "Pending", "Pending", PENDING_MESSAGE, source=source,
                          target=target, kubevirt_name=str(entry.body["metadata"]["name"]))

    async def _follow(self, entry: SpecEntry[VirtualMachineMigrationSpec],
                      kubevirt: Mapping[str, Any]) -> None:
        """Mirror the KubeVirt migration's phase; post the Event when it ends."""
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        phase = phase_of(kubevirt.get("phase"))
        source = str(previous.get("sourceHost") or "")
        target = str(previous.get("targetHost") or kubevirt.get("targetNode") or "")
        if phase == "Failed":
            message = str(kubevirt.get("failureReason") or "KubeVirt reported it failed")
            await self._write(entry, phase, "MigrationFailed",
                              f"the live migration failed: {message}", source=source,
                              target=target, kubevirt_name=str(kubevirt["name"]))
            await self._announce(entry, "Warning", "MigrationFailed",
                                 f"Migration from {source} to {target} failed: {message}")
            return
        message = _STEP_MESSAGES.get(phase, PENDING_MESSAGE)
        await self._write(entry, phase, phase, message, source=source, target=target,
                          kubevirt_name=str(kubevirt["name"]))
        if phase == "Succeeded":
            metadata = entry.body["metadata"]
            text = moved_event_message(
                source, target, self._requested_by(entry),
                (metadata.get("annotations") or {}).get(DRS_REASON_ANNOTATION),
                (metadata.get("labels") or {}).get(HOST_MAINTENANCE_LABEL))
            await self._announce(entry, "Normal", "VMotion", text)

    async def _announce(self, entry: SpecEntry[VirtualMachineMigrationSpec], kind: EventType,
                        reason: str, message: str) -> None:
        """One log line and one Event on the VDC VM (and on the request) per finished move."""
        metadata = entry.body["metadata"]
        namespace, name = str(metadata["namespace"]), str(metadata["name"])
        vm_name = str(entry.body["spec"].get("virtualMachineName"))
        if kind == "Warning":
            log.warning(message, namespace=namespace, name=name, vm=vm_name)
        else:
            log.info(message, namespace=namespace, name=name, vm=vm_name)
        vdc_vm = self.vdc_vms.get((namespace, vm_name))
        if vdc_vm is not None:
            await post_event(self.kube, vdc_vm, kind, reason, message)
        await post_event(self.kube, entry.body, kind, reason, message)

    async def _write(self, entry: SpecEntry[VirtualMachineMigrationSpec],
                     phase: MigrationPhase, reason: str, message: str, *,
                     source: str | None = None, target: str | None = None,
                     kubevirt_name: str | None = None) -> None:
        """The whole status for `phase`; times are kept from earlier passes."""
        metadata = entry.body["metadata"]
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        now = datetime.now(UTC)
        generation = metadata.get("generation")
        status: dict[str, Any] = {
            "phase": phase,
            "startTime": previous.get("startTime") or timestamp(now),
            "message": message,
            "observedGeneration": generation,
        }
        if phase == "Failed":
            status["reason"] = reason if reason in REFUSAL_REASONS else "MigrationFailed"
        if phase in FINAL_PHASES:
            status["completionTime"] = previous.get("completionTime") or timestamp(now)
        for field, value in (("sourceHost", source), ("targetHost", target),
                             ("kubevirtMigrationName", kubevirt_name)):
            if value:
                status[field] = value
        conditions: list[Condition] = list(previous.get("conditions") or [])
        status["conditions"] = succeeded_condition(phase, reason, message, conditions, now,
                                                   generation)
        status = {key: value for key, value in status.items() if value is not None}
        written = await patch_status(self.kube, VIRTUAL_MACHINE_MIGRATION.resource,
                                     str(metadata["namespace"]), str(metadata["name"]),
                                     previous, status)
        if written and phase == "Failed" and not previous.get("kubevirtMigrationName") \
                and not kubevirt_name:
            log.warning("Refused VirtualMachineMigration", namespace=metadata["namespace"],
                        name=metadata["name"], reason=reason, message=message)
            vdc_vm = self.vdc_vms.get((str(metadata["namespace"]),
                                       str(entry.body["spec"].get("virtualMachineName"))))
            if vdc_vm is not None:
                await post_event(self.kube, vdc_vm, "Warning", "MigrationRefused", message)

    @staticmethod
    def _requested_by(entry: SpecEntry[VirtualMachineMigrationSpec]) -> str | None:
        labels = entry.body["metadata"].get("labels") or {}
        value = labels.get(REQUESTED_BY_LABEL)
        return str(value) if value else None

    def _vms_of(self, cluster_name: Any) -> list[Mapping[str, Any]]:
        return [vm for vm in self.vdc_vms.values()
                if ((vm.get("spec") or {}).get("clusterName") or None) == (cluster_name or None)]

    def _vmis(self) -> dict[tuple[str, str], Mapping[str, Any]]:
        return {key: value for key, value in self.vmis.items()
                if isinstance(key, tuple)}

    def migration_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue((event.namespace, event.name))

    def kubevirt_migration_changed(self, event: WatchEvent) -> None:
        labels = (event.body.get("metadata") or {}).get("labels") or {}
        if labels.get(MIGRATION_LABEL):
            self.queue.enqueue((event.namespace, str(labels[MIGRATION_LABEL])))

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(VIRTUAL_MACHINE_MIGRATION.resource, cls.migration_changed),
            Watch(VMIMS, cls.kubevirt_migration_changed, labels={MIGRATION_LABEL: kopf.PRESENT}),
        )

