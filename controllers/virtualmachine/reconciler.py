"""The VirtualMachine reconciler: one pass from what is observed to what is written.

A pass reads only the operator's caches (kopf indexes fed by watches), decides, and then
writes the difference: the KubeVirt VirtualMachine (server-side apply, created or updated),
the pause/unpause subresource for Suspended, Events for power changes and rejections, and
the VDC status. A pass with nothing to change writes nothing.

The judgement functions below are pure; `VirtualMachineReconciler.reconcile` does the I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import pydantic

from controllers.common.apply import (
    EventType,
    owned_by,
    owner_reference,
    patch_status,
    post_event,
    status_changed,
)
from controllers.common.conditions import (
    READY,
    Condition,
    find_condition,
    mark_false,
    mark_true,
    summarize_ready,
)
from controllers.common.kube import (
    KUBEVIRT_VMS,
    VDC_VIRTUAL_MACHINES,
    VMI_SUBRESOURCES,
    KubeClient,
    KubeError,
)
from controllers.common.logging import get_logger
from controllers.common.workqueue import RetryLater
from controllers.computecluster.builders import ResolvedCluster, cluster_nodes
from controllers.computecluster.models import ComputeClusterSpec
from controllers.storagepolicy.builders import (
    ResolvedStoragePolicy,
    default_policy_name,
    resolve_policy,
)
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.builders import (
    DISKS_READY,
    POWER_STATE_REACHED,
    REFERENCES_RESOLVED,
    RUNNING,
    VM_LABEL,
    ChangePlan,
    UnresolvedReferenceError,
    build_kubevirt_vm,
    observed_power_state,
    plan_changes,
    storage_policy_for,
    unresolved_references,
    vm_status_from,
)
from controllers.virtualmachine.models import VirtualMachineSpec
from kubeunits.quantity import QuantityError, to_bytes, to_millis

log = get_logger("vdcos.virtualmachine")

#: Condition saying whether the controller accepts the spec (checks a schema cannot make).
ADMITTED: Final = "Admitted"

Key = tuple[str, str]


# --------------------------------------------------------------------------- observed state


@dataclass(frozen=True)
class Observed:
    """Everything one pass looks at, read from the caches."""

    vdc_vm: Mapping[str, Any]
    kubevirt_vm: Mapping[str, Any] | None
    vmi: Mapping[str, Any] | None
    storage_policies: Mapping[str, StoragePolicySpec]
    clusters: Mapping[str, ComputeClusterSpec]
    storage_classes: frozenset[str]
    port_groups: frozenset[str]
    nodes: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Rejection:
    """A spec the controller will not build (no KubeVirt object is created for it)."""

    reason: str
    message: str


def parse_spec(raw: Mapping[str, Any]) -> VirtualMachineSpec | Rejection:
    """The spec, or a rejection naming the field (rules the CRD schema cannot state)."""
    try:
        return VirtualMachineSpec.model_validate(dict(raw))
    except pydantic.ValidationError as error:
        problems = []
        for item in error.errors():
            location = ".".join(str(part) for part in item["loc"])
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"spec.{location}: {message}" if location else f"spec: {message}")
        return Rejection("InvalidSpec", "; ".join(problems))


def specific_reference_reason(unresolved: Iterable[str]) -> str:
    """A reason naming the missing kind, e.g. ComputeClusterNotFound."""
    for message in unresolved:
        for kind in ("ComputeCluster", "StoragePolicy", "DistributedPortGroup"):
            if f"{kind} " in message:
                return f"{kind}NotFound"
        if "no StoragePolicy is marked default" in message:
            return "DefaultStoragePolicyNotFound"
    return "ReferenceNotFound"


def _allocatable(node: Mapping[str, Any], resource: str, convert: Callable[[Any], int]) -> int:
    value = (node.get("status", {}).get("allocatable") or {}).get(resource)
    if value is None:
        return 0
    try:
        return convert(value)
    except QuantityError:
        return 0


def capacity_rejection(
    spec: VirtualMachineSpec, cluster: ResolvedCluster | None, nodes: Iterable[Mapping[str, Any]]
) -> Rejection | None:
    """A rejection when no host of the cluster (or of the datacenter) can ever hold the VM."""
    hosts = cluster_nodes(cluster.spec, nodes) if cluster is not None else list(nodes)
    if not hosts:
        return None  # hosts may join; the VM waits for them like the scheduler would
    where = f'ComputeCluster "{cluster.name}"' if cluster is not None else "the datacenter"
    largest_cpu = max(_allocatable(host, "cpu", to_millis) for host in hosts)
    if spec.cpu.count * 1000 > largest_cpu:
        return Rejection(
            "InsufficientHostCapacity",
            f"spec.cpu.count: {spec.cpu.count} vCPUs exceed the largest host of {where} "
            f"({largest_cpu // 1000} CPUs)",
        )
    largest_memory = max(_allocatable(host, "memory", to_bytes) for host in hosts)
    if to_bytes(spec.memory.size) > largest_memory:
        return Rejection(
            "InsufficientHostCapacity",
            f"spec.memory.size: {spec.memory.size} exceeds the largest host of {where} "
            f"({largest_memory // 2**30}Gi)",
        )
    return None


def storage_class_rejection(
    spec: VirtualMachineSpec,
    policies: Mapping[str, ResolvedStoragePolicy],
    default_policy: str | None,
    storage_classes: frozenset[str],
) -> Rejection | None:
    """A rejection when a disk's policy points to a StorageClass that does not exist."""
    for index, disk in enumerate(spec.disks):
        policy_name = storage_policy_for(disk, default_policy)
        policy = policies.get(policy_name or "")
        if policy is not None and policy.storage_class_name not in storage_classes:
            return Rejection(
                "StorageClassNotFound",
                f'spec.disks[{index}]: StorageClass "{policy.storage_class_name}" of '
                f'StoragePolicy "{policy.name}" does not exist',
            )
    return None


def with_admission(
    status: dict[str, Any],
    previous: Iterable[Condition],
    spec: VirtualMachineSpec | None,
    rejection: Rejection | None,
    unresolved: list[str],
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    """Adds the Admitted condition and a specific reference reason, and re-summarises Ready.

    Ready is recomputed from its previous value so its lastTransitionTime only moves when
    its status does.
    """
    conditions: list[Condition] = [c for c in status.get("conditions") or [] if c["type"] != READY]
    if unresolved:
        conditions = mark_false(
            conditions,
            REFERENCES_RESOLVED,
            specific_reference_reason(unresolved),
            "; ".join(unresolved),
            observed_generation=generation,
            now=now,
        )
    if rejection is None:
        conditions = mark_true(
            conditions, ADMITTED, "Admitted", observed_generation=generation, now=now
        )
    else:
        conditions = mark_false(
            conditions,
            ADMITTED,
            rejection.reason,
            rejection.message,
            observed_generation=generation,
            now=now,
        )
    previous_ready = find_condition(previous, READY)
    if previous_ready is not None:
        conditions.append(previous_ready)
    required = [ADMITTED]
    if spec is not None:
        required += [REFERENCES_RESOLVED, DISKS_READY, POWER_STATE_REACHED]
        if spec.power_state == "PoweredOn":
            required.append(RUNNING)
    conditions = summarize_ready(
        conditions,
        required,
        observed_generation=generation,
        now=now,
        ready_message=f"the VM is {spec.power_state}" if spec is not None else "",
    )
    ordered = [c for c in conditions if c["type"] != READY] + [
        c for c in conditions if c["type"] == READY
    ]
    return {**status, "conditions": ordered, "observedGeneration": generation}


def power_action(desired: str, vmi: Mapping[str, Any] | None) -> str | None:
    """ "pause" or "unpause" when the running guest must change; None otherwise."""
    observed = observed_power_state(vmi)
    if desired == "Suspended" and observed == "PoweredOn":
        return "pause"
    if desired == "PoweredOn" and observed == "Suspended":
        return "unpause"
    return None


#: Ready reasons of a VM on its way somewhere (starting, stopping, provisioning disks).
TRANSITIONAL_REASONS: Final = frozenset(
    {
        "Starting",
        "Stopping",
        "Suspending",
        "Resuming",
        "Provisioning",
        "WaitingForVolumeBinding",
        "NotCreated",
        "Scheduling",
        "Scheduled",
        "Pending",
        "Migrating",
        "Stopped",
        "NotRunning",
        "NotReady",
        "DisksReadyUnknown",
        "RunningUnknown",
        "PowerStateReachedUnknown",
    }
)


def in_transition(status: Mapping[str, Any]) -> bool:
    """Whether the status shows a VM still converging (not Ready, for a passing reason)."""
    ready = find_condition(status.get("conditions") or [], READY)
    return (
        ready is not None
        and ready["status"] != "True"
        and (ready["reason"] in TRANSITIONAL_REASONS)
    )


def _ready_status(status: Mapping[str, Any]) -> str | None:
    ready = find_condition(status.get("conditions") or [], READY)
    return ready["status"] if ready is not None else None


def status_write_delay(
    previous: Mapping[str, Any],
    desired: Mapping[str, Any],
    generation: int,
    seconds_since_last_write: float,
    window: float,
) -> float:
    """Seconds to hold back a status write; 0 to write now.

    Written at once: a new generation (the user changed the spec) and Ready reaching a
    settled value (True, or False for a reason that needs attention). Everything else -
    the progress of a converging VM (Provisioning, Starting...) and details of a VM whose
    Ready does not change (IP addresses, LiveMigratable) - is written at most once per
    `window`, so a VM costs one status write on its way to Ready, not one per KubeVirt phase;
    progress whose Ready reason did not change is not written at all (math.inf).
    """
    if previous and previous.get("observedGeneration") != generation:
        return 0.0
    settled_change = _ready_status(previous) != _ready_status(desired) or _ready_reason(
        previous
    ) != _ready_reason(desired)
    if settled_change and not in_transition(desired):
        return 0.0
    if (
        in_transition(previous)
        and in_transition(desired)
        and _ready_reason(previous) == _ready_reason(desired)
    ):
        return math.inf  # still on the way, for the same reason: nothing worth a write
    return max(0.0, window - seconds_since_last_write)


def _ready_reason(status: Mapping[str, Any]) -> str | None:
    ready = find_condition(status.get("conditions") or [], READY)
    return ready["reason"] if ready is not None else None


def power_event(plan: ChangePlan, desired_power: str) -> tuple[str, str] | None:
    """(reason, message) of the Event for a runStrategy change."""
    if plan.power is None:
        return None
    if desired_power == "PoweredOff":
        return "PoweringOff", f"Powering off (KubeVirt runStrategy {plan.power})"
    return "PoweringOn", f"Powering on (KubeVirt runStrategy {plan.power})"


def _labels_and_owner_differ(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    live_labels = live.get("metadata", {}).get("labels") or {}
    for key, value in (desired["metadata"].get("labels") or {}).items():
        if live_labels.get(key) != value:
            return True
    owner_uid = desired["metadata"]["ownerReferences"][0]["uid"]
    return not owned_by(live, owner_uid)


def _previous_owner_is_vdc_vm(live: Mapping[str, Any]) -> bool:
    for reference in live.get("metadata", {}).get("ownerReferences") or []:
        if reference.get("apiVersion", "").startswith("vdcos.io/") and reference.get("controller"):
            return True
    return False


# --------------------------------------------------------------------------- the pass


class VirtualMachineReconciler:
    """Reconciles VDC VirtualMachines by key, reading state through `observe`."""

    def __init__(
        self,
        kube: KubeClient,
        observe: Callable[[Key], Observed | None],
        requeue: Callable[[Key, float], None] | None = None,
        *,
        progress_window_seconds: float = 5.0,
    ) -> None:
        self.kube = kube
        self.observe = observe
        self.requeue = requeue
        self.progress_window_seconds = progress_window_seconds
        # When the status of a converging VM was last written (or the VM created), and the
        # window until progress may be written again (doubling while it stays in transition).
        self._progress: dict[Key, tuple[float, float]] = {}
        # Restart reasons seen while applying a change to a running guest, per VMI uid:
        # KubeVirt reports its own RestartRequired later; this bridges the gap.
        self._pending_restart: dict[Key, tuple[str, tuple[str, ...]]] = {}
        # Last rejection (reason, message) reported per key, so its Event is posted once.
        self._rejected: dict[Key, tuple[str, str]] = {}

    def rejected_reasons(self) -> dict[Key, str]:
        """The reason of each VM currently rejected."""
        return {key: reason for key, (reason, _) in self._rejected.items()}

    def forget(self, key: Key) -> None:
        self._progress.pop(key, None)
        self._pending_restart.pop(key, None)
        self._rejected.pop(key, None)

    async def _event(
        self, vdc_vm: Mapping[str, Any], event_type: EventType, reason: str, message: str
    ) -> None:
        await post_event(self.kube, vdc_vm, event_type, reason, message)

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

        parsed = parse_spec(vdc_vm.get("spec") or {})
        if isinstance(parsed, Rejection):
            await self._reject(key, vdc_vm, parsed)
            status = with_admission({}, previous_conditions, None, parsed, [], generation, now)
            await patch_status(
                self.kube, VDC_VIRTUAL_MACHINES, namespace, name, previous_status, status
            )
            return
        spec = parsed

        policies = {
            policy_name: resolve_policy(policy_name, policy_spec)
            for policy_name, policy_spec in observed.storage_policies.items()
        }
        default_policy = default_policy_name(dict(observed.storage_policies))
        cluster = (
            ResolvedCluster(spec.cluster_name, observed.clusters[spec.cluster_name])
            if spec.cluster_name is not None and spec.cluster_name in observed.clusters
            else None
        )
        unresolved = unresolved_references(
            spec,
            storage_policies=policies.keys(),
            default_storage_policy_name=default_policy,
            cluster_exists=cluster is not None,
            port_groups=observed.port_groups,
        )
        rejection = None
        if not unresolved:
            rejection = storage_class_rejection(
                spec, policies, default_policy, observed.storage_classes
            ) or capacity_rejection(spec, cluster, observed.nodes)
        if rejection is not None:
            await self._reject(key, vdc_vm, rejection)
        else:
            self._rejected.pop(key, None)

        live = observed.kubevirt_vm
        vmi = observed.vmi
        plan: ChangePlan | None = None
        if not unresolved and rejection is None:
            plan, live = await self._converge(
                key, vdc_vm, spec, policies, default_policy, cluster, live, vmi
            )

        if plan is not None and plan.create:
            self._progress[key] = (time.monotonic(), self.progress_window_seconds)
            # The new KubeVirt VM's watch event brings the next pass within moments; its
            # status write then says more than "being created" would (fewer writes per VM).
            return

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

        status = vm_status_from(
            spec,
            name,
            namespace,
            generation,
            live,
            vmi,
            previous_conditions=previous_conditions,
            unresolved=unresolved,
            plan=ChangePlan(restart_reasons=reasons),
            now=now,
        )
        status = with_admission(
            status, previous_conditions, spec, rejection, unresolved, generation, now
        )
        if not status_changed(previous_status, status):
            return
        clock = time.monotonic()
        since, window = self._progress.get(key, (-math.inf, self.progress_window_seconds))
        delay = status_write_delay(previous_status, status, generation, clock - since, window)
        if delay == math.inf:
            return
        if delay > 0 and self.requeue is not None:
            self.requeue(key, delay)
            return
        await patch_status(
            self.kube, VDC_VIRTUAL_MACHINES, namespace, name, previous_status, status
        )
        # Progress written while converging is written less and less often.
        next_window = (
            min(window * 2, 30.0) if in_transition(status) else self.progress_window_seconds
        )
        self._progress[key] = (clock, next_window)

    async def _reject(self, key: Key, vdc_vm: Mapping[str, Any], rejection: Rejection) -> None:
        if self._rejected.get(key) == (rejection.reason, rejection.message):
            return
        self._rejected[key] = (rejection.reason, rejection.message)
        log.warning(
            "Rejected VirtualMachine",
            namespace=key[0],
            name=key[1],
            reason=rejection.reason,
            message=rejection.message,
        )
        await self._event(vdc_vm, "Warning", rejection.reason, rejection.message)

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
    ) -> tuple[ChangePlan | None, Mapping[str, Any] | None]:
        """Creates or updates the KubeVirt VM and the guest's pause state.

        Returns the plan of what changed and the KubeVirt VM as it now is.
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
            )
        except UnresolvedReferenceError:
            return None, live  # reported through unresolved_references
        desired["metadata"]["ownerReferences"] = [owner_reference(vdc_vm)]

        plan = plan_changes(desired, live, vmi)
        if live is None:
            live = await self.kube.apply(KUBEVIRT_VMS, desired)
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
        elif plan.changed or _labels_and_owner_differ(desired, live):
            live = await self.kube.apply(KUBEVIRT_VMS, desired)
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

        action = power_action(spec.power_state, vmi)
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
                    why=error.message,
                )
            else:
                reason = "Suspending" if action == "pause" else "Resuming"
                log.info(f"{reason} VirtualMachine", namespace=namespace, name=name)
                await self._event(vdc_vm, "Normal", reason, f"{reason} the guest ({action})")
        return plan, live


def slim_vdc_vm(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconciler keeps of a VDC VirtualMachine."""
    metadata = body.get("metadata", {})
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "generation": metadata.get("generation"),
            "deletionTimestamp": metadata.get("deletionTimestamp"),
        },
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def slim_kubevirt_vm(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconciler keeps of a KubeVirt VirtualMachine."""
    metadata = body.get("metadata", {})
    status = body.get("status") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "labels": dict(metadata.get("labels") or {}),
            "ownerReferences": list(metadata.get("ownerReferences") or []),
            "deletionTimestamp": metadata.get("deletionTimestamp"),
        },
        "spec": dict(body.get("spec") or {}),
        "status": {
            "printableStatus": status.get("printableStatus"),
            "conditions": list(status.get("conditions") or []),
        },
    }


def slim_vmi(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconciler keeps of a VirtualMachineInstance."""
    metadata = body.get("metadata", {})
    status = body.get("status") or {}
    return {
        "metadata": {
            "uid": metadata.get("uid"),
            "deletionTimestamp": metadata.get("deletionTimestamp"),
        },
        "status": {
            key: status[key]
            for key in (
                "phase",
                "nodeName",
                "interfaces",
                "conditions",
                "currentCPUTopology",
                "memory",
            )
            if key in status
        },
    }


def vm_references(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, name) of what a VDC VM spec refers to; ("policy", "") for the default policy."""
    found: list[tuple[str, str]] = []
    if spec.get("clusterName"):
        found.append(("cluster", str(spec["clusterName"])))
    for disk in spec.get("disks") or []:
        found.append(("policy", str(disk.get("storagePolicyName") or "")))
    for network in spec.get("networks") or []:
        if network.get("portGroupName"):
            found.append(("portgroup", str(network["portGroupName"])))
    return list(dict.fromkeys(found))


def label_selects_vm(labels: Mapping[str, str]) -> bool:
    """KubeVirt objects built by vdcos carry the vdcos.io/vm label."""
    return VM_LABEL in labels
