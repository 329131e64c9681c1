"""The VirtualMachine reconciler: one pass from what is observed to what is written.

A pass reads the operator's caches (`Observed`), judges the spec (`admission`), builds the
KubeVirt VM (`builders`), plans what applying it changes (`changes`) and computes the status
(`status`); this module only does the I/O in between: the KubeVirt VirtualMachine (server-side
apply, created or updated), the pause/unpause subresource for Suspended, Events, and the VDC
status. A pass with nothing to change writes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from controllers.common.apply import (
    EventType,
    owned_by,
    owner_reference,
    patch_status,
    post_event,
    status_changed,
)
from controllers.common.conditions import Condition
from controllers.common.kube import KubeClient, KubeError
from controllers.common.logging import get_logger
from controllers.computecluster.builders import ResolvedCluster
from controllers.hostfailure.annotations import is_held
from controllers.hostfailure.vm_conditions import with_failover_conditions
from controllers.storagepolicy.builders import (
    ResolvedStoragePolicy,
    default_policy_name,
    resolve_policy,
)
from controllers.virtualmachine.admission import (
    MissingReference,
    Rejection,
    capacity_rejection,
    failover_capacity_rejection,
    mac_address_rejection,
    parse_spec,
    pending_storage_classes,
    port_group_rejection,
    storage_class_rejection,
    unresolved_references,
)
from controllers.virtualmachine.builders import (
    UnresolvedReferenceError,
    build_kubevirt_vm,
    resolve_disk_policies,
)
from controllers.virtualmachine.changes import ChangePlan, plan_changes, power_action, power_event
from controllers.virtualmachine.disks import (
    DiskPlan,
    disk_statuses,
    failed_moves,
    plan_disks,
    shrink_refusal,
)
from controllers.virtualmachine.kind import VIRTUAL_MACHINE
from controllers.virtualmachine.kubevirt_reading import nested, vmi_running
from controllers.virtualmachine.models import VirtualMachineSpec
from controllers.virtualmachine.nics import (
    WIRING_ANNOTATION,
    kept_macs,
    resolve_macs,
    rewired_port_groups,
    wiring_annotation,
)
from controllers.virtualmachine.observed import Key, Observed, slim_kubevirt_vm
from controllers.virtualmachine.restore import with_restored_disks
from controllers.virtualmachine.revert import revert_event
from controllers.virtualmachine.snapshot_steps import SnapshotJudgement, carry_out, judge
from controllers.virtualmachine.status import (
    admitted_rejection,
    migration_event,
    observed_power_state,
    vm_status_from,
)
from controllers.virtualmachine.status_pacing import in_transition, status_write_delay
from controllers.virtualmachine.template_merge import (
    TemplateWait,
    clone_status,
    resolve_template,
    waiting_conditions,
)
from kubekit.resources import DATAVOLUMES, PVCS, VMI_SUBRESOURCES, VMS
from kubekit.workqueue import RetryLater

log = get_logger("vdcos.virtualmachine")

#: How long a KubeVirt VM just created stands in for the cache's (which shows it in moments).
CREATED_MEMORY_SECONDS: Final = 30.0


def _resolved(
    spec: VirtualMachineSpec, observed: Observed
) -> tuple[dict[str, ResolvedStoragePolicy], str | None, ResolvedCluster | None]:
    """The storage policies as disks see them, the default policy, and the VM's cluster."""
    policies = {
        policy_name: resolve_policy(policy_name, policy_spec, observed.default_storage_class)
        for policy_name, policy_spec in observed.storage_policies.items()
    }
    default_policy = default_policy_name(dict(observed.storage_policies))
    cluster = (
        ResolvedCluster(spec.cluster_name, observed.clusters[spec.cluster_name])
        if spec.cluster_name is not None and spec.cluster_name in observed.clusters
        else None
    )
    return policies, default_policy, cluster


def _rewired(
    spec: VirtualMachineSpec | None,
    vmi: Mapping[str, Any] | None,
    port_group_wiring: Mapping[str, str],
) -> tuple[str, ...]:
    """Restart reasons for port groups whose wiring changed since the running guest started."""
    if spec is None or not vmi_running(vmi):
        return ()
    started_with = nested(vmi, "metadata", "annotations", WIRING_ANNOTATION)
    return tuple(
        f"DistributedPortGroup {name} changed (VLAN, MTU, security or shaping) since the VM "
        "started; its NIC is wired anew when the VM restarts"
        for name in rewired_port_groups(started_with, wiring_annotation(spec, port_group_wiring))
    )


def wait_rejection(wait: TemplateWait) -> Rejection:
    """A VM waiting for its template is built from nothing yet: no spec this pass."""
    return Rejection(wait.reason, wait.message)


def _shrink_rejection(
    spec: VirtualMachineSpec, live: Mapping[str, Any] | None
) -> Rejection | None:
    refusal = shrink_refusal(spec, live)
    return Rejection("DiskShrinkRefused", refusal) if refusal is not None else None


def _previous_owner_is_vdc_vm(live: Mapping[str, Any]) -> bool:
    for reference in live.get("metadata", {}).get("ownerReferences") or []:
        if reference.get("apiVersion", "").startswith("vdcos.io/") and reference.get("controller"):
            return True
    return False


class VirtualMachineReconciler:
    """Reconciles VDC VirtualMachines by key, reading state through `observe`."""

    def __init__(
        self,
        kube: KubeClient,
        observe: Callable[[Key], Observed | None],
        requeue: Callable[[Key, float], None] | None = None,
        *,
        progress_window_seconds: float = 5.0,
        first_progress_seconds: float = 30.0,
    ) -> None:
        self.kube = kube
        self.observe = observe
        self.requeue = requeue
        self.progress_window_seconds = progress_window_seconds
        # A VM on its way to its first Ready shows no progress for this long: most get there
        # sooner, and then cost one status write in all (Ready), not two or three.
        self.first_progress_seconds = max(first_progress_seconds, progress_window_seconds)
        # When the status of a converging VM was last written (or the VM created), and the
        # window until progress may be written again (doubling while it stays in transition).
        self._progress: dict[Key, tuple[float, float]] = {}
        # Restart reasons seen while applying a change to a running guest, per VMI uid:
        # KubeVirt reports its own RestartRequired later; this bridges the gap.
        self._pending_restart: dict[Key, tuple[str, tuple[str, ...]]] = {}
        # KubeVirt VMs this reconciler created that its cache does not show yet: a pass in
        # between (another event of the VM) must not create it, and announce it, again.
        # Kept for CREATED_MEMORY_SECONDS at most: a VM deleted before the cache ever showed
        # it must not be believed in for ever.
        self._created: dict[Key, tuple[float, Mapping[str, Any]]] = {}
        # Storage vMotions that failed, per VM and disk (status.disks[].migration): not tried
        # again until the disk's policy changes, even before the status shows them.
        self._failed_moves: dict[Key, dict[str, Mapping[str, Any]]] = {}
        # The reason each VM is rejected for (the node handler re-admits capacity rejections).
        self._rejected: dict[Key, str] = {}
        # MACs this reconciler assigned, per VM: another VM's pass must not pick one before
        # the cache shows the KubeVirt VM that carries it, and a VM whose apply failed keeps
        # the ones it was given.
        self._assigned_macs: dict[Key, dict[str, str]] = {}

    def rejected_reasons(self) -> dict[Key, str]:
        """The reason of each VM currently rejected."""
        return dict(self._rejected)

    def forget(self, key: Key) -> None:
        """Drops what the reconciler remembers of a VM that no longer exists."""
        self._progress.pop(key, None)
        self._assigned_macs.pop(key, None)
        self._pending_restart.pop(key, None)
        self._created.pop(key, None)
        self._rejected.pop(key, None)
        self._failed_moves.pop(key, None)

    def _mac_addresses(
        self,
        key: Key,
        spec: VirtualMachineSpec,
        live: Mapping[str, Any] | None,
        observed: Observed,
    ) -> dict[str, str]:
        """Every NIC's MAC: given, kept from the KubeVirt VM, or assigned now (once)."""
        on_the_vm = kept_macs(live)
        kept = {**self._assigned_macs.get(key, {}), **on_the_vm}

        def in_use(mac: str) -> bool:
            return any(user != key for user in observed.mac_users(mac)) or any(
                mac in assigned.values()
                for other, assigned in self._assigned_macs.items()
                if other != key
            )

        macs = resolve_macs(spec, *key, kept, in_use)
        assigned = {nic: mac for nic, mac in macs.items() if on_the_vm.get(nic) != mac}
        if assigned:
            self._assigned_macs[key] = assigned
        else:
            self._assigned_macs.pop(key, None)
        return macs

    async def _event(
        self, vdc_vm: Mapping[str, Any], event_type: EventType, reason: str, message: str
    ) -> None:
        await post_event(self.kube, vdc_vm, event_type, reason, message)

    def _live(self, key: Key, observed: Observed) -> Mapping[str, Any] | None:
        """The KubeVirt VM as we know it: the cache's, else the one we just created."""
        created = self._created.pop(key, None)
        if observed.kubevirt_vm is not None:
            return observed.kubevirt_vm
        if created is None or time.monotonic() - created[0] > CREATED_MEMORY_SECONDS:
            return None
        self._created[key] = created
        return created[1]

    async def reconcile(self, key: Key) -> None:
        observed = self.observe(key)
        if observed is None:
            self.forget(key)  # deleted: the ownerReferences take the KubeVirt objects along
            return
        vdc_vm = observed.vdc_vm
        metadata = vdc_vm["metadata"]
        if metadata.get("deletionTimestamp"):
            return
        namespace, name = key
        generation = int(metadata.get("generation") or 1)
        previous_status: Mapping[str, Any] = vdc_vm.get("status") or {}
        previous_conditions: list[Condition] = list(previous_status.get("conditions") or [])
        now = datetime.now(UTC)
        live = self._live(key, observed)
        vmi = observed.vmi

        raw_spec = vdc_vm.get("spec") or {}
        resolved_spec = resolve_template(raw_spec, observed.template)
        wait = resolved_spec if isinstance(resolved_spec, TemplateWait) else None
        parsed = (
            wait_rejection(resolved_spec)
            if isinstance(resolved_spec, TemplateWait)
            else parse_spec(resolved_spec)
        )
        spec = None if isinstance(parsed, Rejection) else parsed
        rejection = parsed if isinstance(parsed, Rejection) and wait is None else None
        unresolved: list[MissingReference] = []
        plan: ChangePlan | None = None
        disks: list[dict[str, Any]] | None = None
        snapshots: SnapshotJudgement | None = None
        if spec is not None:
            # Reverts hold the VM off; restores wait for their snapshot (snapshot_steps.py).
            snapshots = judge(vdc_vm, spec, observed, now)
            spec = snapshots.spec
            policies, default_policy, cluster = _resolved(spec, observed)
            unresolved = unresolved_references(
                spec,
                storage_policies=policies.keys(),
                default_storage_policy_name=default_policy,
                cluster_exists=cluster is not None,
                port_groups=observed.port_groups.keys(),
            ) + pending_storage_classes(
                spec, policies, observed.storage_policies, default_policy, observed.storage_classes
            ) + list(snapshots.waiting)
            if not unresolved:
                rejection = (
                    snapshots.rejection
                    or port_group_rejection(
                        spec, namespace, observed.port_groups, observed.namespace_labels
                    )
                    or mac_address_rejection(spec, key, observed.mac_users)
                    or storage_class_rejection(
                        spec, policies, default_policy, observed.storage_classes
                    )
                    or _shrink_rejection(spec, live)
                    or capacity_rejection(spec, cluster, observed.nodes)
                    or failover_capacity_rejection(
                        spec, cluster, observed.cluster_statuses.get(spec.cluster_name or ""),
                        powering_on=vmi is None and not is_held(metadata) and (
                            live is None or nested(live, "spec", "runStrategy") == "Halted"),
                    )
                )
            if not unresolved and rejection is None:
                disk_policies = resolve_disk_policies(spec, policies, default_policy)
                disk_plan = plan_disks(
                    spec,
                    name,
                    disk_policies,
                    live,
                    vmi,
                    expandable_classes=observed.expandable_classes,
                    previous_status=self._with_failed_moves(key, previous_status),
                    all_policies=policies,
                )
                self._failed_moves[key] = failed_moves(disk_plan)
                disks = disk_statuses(disk_plan, spec, disk_policies)
                macs = self._mac_addresses(key, spec, live, observed)
                converged = await self._converge(
                    key,
                    vdc_vm,
                    spec,
                    policies,
                    default_policy,
                    cluster,
                    live,
                    vmi,
                    macs,
                    observed.port_group_wiring,
                    disk_plan,
                    restored_disks=snapshots.restored_disks,
                )
                if converged is None:
                    return  # the VDC VM is gone (the cache had not seen it yet)
                plan, live = converged
                await carry_out(self.kube, namespace, snapshots.revert,
                                nested(live, "spec", "runStrategy") == "Halted" and vmi is None)
        if rejection is not None:
            self._rejected[key] = rejection.reason
        else:
            self._rejected.pop(key, None)

        if plan is not None and plan.create:
            self._progress[key] = (time.monotonic(), self.first_progress_seconds)
            # The new KubeVirt VM's watch event brings the next pass within moments; its
            # status write then says more than "being created" would (fewer writes per VM).
            return

        status = vm_status_from(
            spec,
            name,
            namespace,
            generation,
            live,
            vmi,
            previous_conditions=previous_conditions,
            unresolved=unresolved,
            rejection=rejection,
            plan=ChangePlan(
                restart_reasons=self._restart_reasons(key, vmi, plan)
                + _rewired(spec, vmi, observed.port_group_wiring)
            ),
            disks=disks if disks is not None else previous_status.get("disks"),
            now=now,
        )
        status = with_failover_conditions(status, metadata, generation, now)
        if wait is not None:
            status["conditions"] = waiting_conditions(status["conditions"], wait, generation, now)
        if raw_spec.get("templateName"):
            status.update(
                clone_status(
                    str(raw_spec.get("cloneMode") or "Linked"),
                    observed.boot_data_volume,
                    observed.boot_claim,
                )
            )
        if snapshots is not None and snapshots.revert.status is not None:
            status["revert"] = snapshots.revert.status
        await self._write_status(key, vdc_vm, status, vmi, rejection)

    def _restart_reasons(
        self, key: Key, vmi: Mapping[str, Any] | None, plan: ChangePlan | None
    ) -> tuple[str, ...]:
        """Restart reasons of changes applied to the running guest, until KubeVirt says so."""
        vmi_uid = str((vmi or {}).get("metadata", {}).get("uid") or "")
        pending = self._pending_restart.get(key)
        reasons: tuple[str, ...] = ()
        if pending is not None and pending[0] == vmi_uid and vmi_uid:
            reasons = pending[1]
        if plan is not None and plan.restart_reasons and vmi_uid:
            reasons = tuple(dict.fromkeys((*reasons, *plan.restart_reasons)))
            self._pending_restart[key] = (vmi_uid, reasons)
        elif not reasons:
            self._pending_restart.pop(key, None)
        return reasons

    async def _write_status(
        self,
        key: Key,
        vdc_vm: Mapping[str, Any],
        status: Mapping[str, Any],
        vmi: Mapping[str, Any] | None,
        rejection: Rejection | None,
    ) -> None:
        """Writes the status when it changed (paced while converging), with its Events."""
        namespace, name = key
        previous: Mapping[str, Any] = vdc_vm.get("status") or {}
        if not status_changed(previous, status):
            return
        generation = int(status.get("observedGeneration") or 1)
        clock = time.monotonic()
        if not previous:
            # A VM seen for the first time is on its way like one just created: its progress
            # (a StorageClass being created, a reference arriving) is held back too.
            self._progress.setdefault(key, (clock, self.first_progress_seconds))
        since, window = self._progress.get(key, (-math.inf, self.progress_window_seconds))
        delay = status_write_delay(previous, status, generation, clock - since, window)
        if previous.get("revert") != status.get("revert"):
            delay = 0.0  # each step of a revert is shown when it happens
        if delay == math.inf:
            return
        if delay > 0 and self.requeue is not None:
            self.requeue(key, delay)
            return
        await patch_status(self.kube, VIRTUAL_MACHINE.resource, namespace, name, previous, status)
        # Progress written while converging is written less and less often.
        next_window = (
            min(window * 2, 30.0) if in_transition(status) else self.progress_window_seconds
        )
        self._progress[key] = (clock, next_window)
        # Events go with the status that shows what they tell, so each is posted once: the
        # next pass compares with the status written here (which survives a restart).
        if rejection is not None and admitted_rejection(previous) != (
            rejection.reason,
            rejection.message,
        ):
            log.warning(
                "Rejected VirtualMachine",
                namespace=namespace,
                name=name,
                reason=rejection.reason,
                message=rejection.message,
            )
            await self._event(vdc_vm, "Warning", rejection.reason, rejection.message)
        migrated = migration_event(previous, status, vmi)
        if migrated is not None:
            log.info(
                "Migrated VirtualMachine",
                namespace=namespace,
                name=name,
                source=previous.get("host"),
                target=status.get("host"),
            )
            await self._event(vdc_vm, "Normal", *migrated)
        reverted = revert_event(previous.get("revert"), status.get("revert"))
        if reverted is not None:
            log.info("Revert finished", namespace=namespace, name=name, message=reverted[2])
            await self._event(vdc_vm, *reverted)

    def _with_failed_moves(self, key: Key, status: Mapping[str, Any]) -> dict[str, Any]:
        """The status with the failed moves this reconciler saw (maybe not written yet)."""
        remembered = self._failed_moves.get(key) or {}
        disks = [
            {**entry, "migration": remembered[entry.get("name")]}
            if entry.get("name") in remembered
            else entry
            for entry in status.get("disks") or []
        ]
        listed = {entry.get("name") for entry in disks}
        disks += [
            {"name": name, "migration": migration}
            for name, migration in remembered.items()
            if name not in listed
        ]
        return {**status, "disks": disks}

    async def _grow_claims(self, key: Key, disk_plan: DiskPlan) -> None:
        """Grows the claims of disks that got larger (the CSI resizer does the rest)."""
        namespace, name = key
        for claim, size in disk_plan.claim_resizes:
            await self.kube.patch(
                PVCS, namespace, claim, {"spec": {"resources": {"requests": {"storage": size}}}}
            )
            log.info("Growing disk claim", namespace=namespace, name=name, claim=claim, size=size)

    async def _release_data_volumes(
        self, key: Key, vdc_vm: Mapping[str, Any], disk_plan: DiskPlan
    ) -> None:
        """Deletes the volumes disks left (a finished move's source, a removed disk), or
        releases them from the VM when their policy retains volumes."""
        namespace, name = key
        for data_volume, retain in disk_plan.data_volume_removals:
            try:
                if retain:
                    await self.kube.patch(
                        DATAVOLUMES, namespace, data_volume,
                        {"metadata": {"ownerReferences": None}},
                    )
                else:
                    await self.kube.delete(DATAVOLUMES, namespace, data_volume)
            except KubeError as error:
                if error.status != 404:
                    raise
                continue
            what = "Retained" if retain else "Deleted"
            log.info(f"{what} DataVolume", namespace=namespace, name=name, dataVolume=data_volume)
            await self._event(
                vdc_vm,
                "Normal",
                f"DataVolume{what}",
                f"{what} DataVolume {data_volume}, which no disk uses any more"
                + (" (its StoragePolicy's reclaimPolicy is Retain)" if retain else ""),
            )

    async def _confirm_exists(self, key: Key, owner_uid: str) -> bool:
        """Whether the VDC VM still exists, asked of the API server (not of the cache).

        After a watch gap the cache may still hold a VM deleted meanwhile; a KubeVirt VM
        created for it would be deleted by the garbage collector and created again.
        """
        current = await self.kube.get(VIRTUAL_MACHINE.resource, *key)
        metadata = (current or {}).get("metadata") or {}
        if current is not None and metadata.get("uid") == owner_uid:
            return not metadata.get("deletionTimestamp")
        log.info("Forgot deleted VirtualMachine", namespace=key[0], name=key[1])
        self.forget(key)
        return False

    async def _converge(
        self,
        key: Key,
        vdc_vm: Mapping[str, Any],
        spec: VirtualMachineSpec,
        policies: Mapping[str, ResolvedStoragePolicy],
        default_policy: str | None,
        cluster: ResolvedCluster | None,
        live: Mapping[str, Any] | None,
        vmi: Mapping[str, Any] | None,
        mac_addresses: Mapping[str, str],
        port_group_wiring: Mapping[str, str],
        disk_plan: DiskPlan,
        restored_disks: Mapping[str, str] | None = None,
    ) -> tuple[ChangePlan | None, Mapping[str, Any] | None] | None:
        """Creates or updates the KubeVirt VM and the guest's pause state.

        Returns the plan of what changed and the KubeVirt VM as it now is; None when the
        VDC VM turned out to be deleted.
        """
        namespace, name = key
        owner_uid = str(vdc_vm["metadata"]["uid"])
        if live is not None and not owned_by(live, owner_uid):
            if live["metadata"].get("deletionTimestamp") or _previous_owner_is_vdc_vm(live):
                # A VM of the same name, deleted and re-created: wait for the old children.
                raise RetryLater(f"KubeVirt VirtualMachine {namespace}/{name} is still going")
            raise RetryLater(
                f"a KubeVirt VirtualMachine {namespace}/{name} exists that vdcos does not own",
                delay=30,
            )
        try:
            desired = build_kubevirt_vm(
                spec,
                name,
                namespace,
                storage_policies=policies,
                cluster=cluster,
                default_storage_policy_name=default_policy,
                live=live,
                mac_addresses=mac_addresses,
                vmi=vmi,
                port_group_wiring=port_group_wiring,
                vm_labels=vdc_vm["metadata"].get("labels"),
                ha_held=is_held(vdc_vm["metadata"]),
                disk_plan=disk_plan,
            )
        except UnresolvedReferenceError:
            return None, live  # reported through unresolved_references
        desired["metadata"]["ownerReferences"] = [owner_reference(vdc_vm)]
        if restored_disks is not None:
            desired = with_restored_disks(desired, namespace, restored_disks, live)

        plan = plan_changes(
            desired,
            live,
            vmi,
            disk_updates=disk_plan.live_updates,
            disk_restart_reasons=disk_plan.restart_reasons,
        )
        if live is not None:
            await self._grow_claims(key, disk_plan)
        if live is None:
            if not await self._confirm_exists(key, owner_uid):
                return None
            applied = await self.kube.apply(VMS, desired)
            live = slim_kubevirt_vm(applied)
            self._created[key] = (time.monotonic(), live)
            log.info(
                "Created VirtualMachine",
                namespace=namespace,
                name=name,
                kind="kubevirt.io/v1",
                powerState=spec.power_state,
            )
            await self._event(
                vdc_vm,
                "Normal",
                "Created",
                f"Created KubeVirt VirtualMachine {name}"
                + ("; powering on" if spec.power_state != "PoweredOff" else ""),
            )
        elif plan.changed:
            live = slim_kubevirt_vm(await self.kube.apply(VMS, desired))
            log.info(
                "Updated VirtualMachine",
                namespace=namespace,
                name=name,
                kind="kubevirt.io/v1",
                power=plan.power,
                liveUpdates=list(plan.live_updates),
                restartReasons=list(plan.restart_reasons),
            )
            event = power_event(plan, spec.power_state)
            if event is not None:
                await self._event(vdc_vm, "Normal", *event)
            if plan.live_updates:
                await self._event(
                    vdc_vm, "Normal", "LiveUpdated", "Applied live: " + ", ".join(plan.live_updates)
                )
            if plan.restart_reasons:
                await self._event(
                    vdc_vm,
                    "Normal",
                    "RestartRequired",
                    "; ".join(plan.restart_reasons) + " (applied at the next restart)",
                )

        if live is not None:
            await self._release_data_volumes(key, vdc_vm, disk_plan)
        action = power_action(spec.power_state, observed_power_state(vmi))
        if action is not None:
            try:
                await self.kube.put(VMI_SUBRESOURCES, namespace, name, {}, subresource=action)
            except KubeError as error:
                if error.status not in (404, 409):
                    raise
                log.info(
                    "Skipped power change",
                    namespace=namespace,
                    name=name,
                    action=action,
                    why=str(error),
                )
            else:
                reason = "Suspending" if action == "pause" else "Resuming"
                log.info(f"{reason} VirtualMachine", namespace=namespace, name=name)
                await self._event(vdc_vm, "Normal", reason, f"{reason} the guest ({action})")
        return plan, live

