"""What a DRS pass observed, turned into the planner's input (pure).

`drs_pass.py` reads the objects (hosts, the cluster's VDC VMs, their VMIs and virt-launcher
pods, PodMetrics, migrations, the KubeVirt CR); this module turns them into a
`drs.ClusterState` and `drs.DrsSettings`:

- a VM's load is what metrics.k8s.io measured of its virt-launcher pod (the sum of its
  containers, as `kubectl top pod` shows), never less than what the pod requests
  (loadMetric Usage: a VM idle at the sample still holds its reservation); or the requests
  alone (loadMetric Requests, or while metrics.k8s.io does not answer);
- a migration not finished (a VirtualMachineMigration, or a KubeVirt migration of the VMI)
  is a move in flight: it counts against the limits, and its VM is counted on the target;
- the limits are KubeVirt's `spec.configuration.migrations` when set, else its defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from controllers.computecluster.builders import pod_requests, quantity_or_zero
from controllers.computecluster.drs import ClusterState, DrsSettings, VirtualMachineLoad
from controllers.computecluster.models import DRS, Rule
from controllers.computecluster.planner_view import (
    hosts_of,
    moves_in_flight,
    not_migratable_reason,
    placement_rules,
    vm_key,
)
from kubekit.quantity import to_bytes, to_millis

Obj = Mapping[str, Any]

LAUNCHER_SELECTOR: Final = "kubevirt.io=virt-launcher"
#: KubeVirt's defaults (pkg/virt-config/virt-config.go) when its CR sets none.
DEFAULT_PARALLEL_MIGRATIONS_PER_CLUSTER: Final = 5
DEFAULT_PARALLEL_OUTBOUND_PER_NODE: Final = 2
#: A VM moved less than this ago is not moved again to balance (no ping-pong: a moved VM's
#: warm-up load must not get it moved back).
COOLDOWN_SECONDS: Final = 600.0


@dataclass(frozen=True)
class Observation:
    """What one pass read, as API objects."""

    nodes: Sequence[Obj]  # the cluster's hosts (see builders.cluster_nodes)
    virtual_machines: Sequence[Obj]  # the VDC VirtualMachines naming the cluster
    vmis: Mapping[tuple[str, str], Obj]  # by (namespace, name)
    launcher_pods: Sequence[Obj]
    pod_metrics: Sequence[Obj] | None  # None: metrics.k8s.io did not answer
    migrations: Sequence[Obj] = ()  # vdcos VirtualMachineMigrations
    kubevirt_migrations: Sequence[Obj] = ()  # KubeVirt VirtualMachineInstanceMigrations
    kubevirt: Obj | None = None


@dataclass(frozen=True)
class Inputs:
    """The planner's input, and what the status says about how it was measured."""

    state: ClusterState
    settings: DrsSettings
    notes: tuple[str, ...] = ()
    loads_by_host: Mapping[str, tuple[int, int]] = field(default_factory=dict)


def _metadata(obj: Obj) -> Obj:
    metadata: Obj = obj.get("metadata") or {}
    return metadata


def _key(obj: Obj) -> tuple[str, str]:
    metadata = _metadata(obj)
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def pod_usage(metrics: Obj) -> tuple[int, int]:
    """(millicores, bytes) of a PodMetrics: the sum of its containers."""
    cpu = memory = 0
    for container in metrics.get("containers") or []:
        usage = container.get("usage") or {}
        cpu += quantity_or_zero(usage.get("cpu"), to_millis)
        memory += quantity_or_zero(usage.get("memory"), to_bytes)
    return cpu, memory


def _timestamp(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _last_moves(migrations: Iterable[Obj], kubevirt_migrations: Iterable[Obj]) -> dict[str, float]:
    """When each VM (namespace/name) last finished moving: the cooldown starts there."""
    last: dict[str, float] = {}

    def note(key: str, when: float | None) -> None:
        if when is not None and when > last.get(key, 0.0):
            last[key] = when

    for migration in migrations:
        status = migration.get("status") or {}
        if status.get("phase") != "Succeeded":
            continue
        namespace = str(_metadata(migration).get("namespace") or "")
        name = str((migration.get("spec") or {}).get("virtualMachineName") or "")
        note(vm_key(namespace, name), _timestamp(status.get("completionTime")))
    for migration in kubevirt_migrations:
        status = migration.get("status") or {}
        if status.get("phase") != "Succeeded":
            continue
        namespace = str(_metadata(migration).get("namespace") or "")
        name = str((migration.get("spec") or {}).get("vmiName") or "")
        state = status.get("migrationState") or {}
        note(
            vm_key(namespace, name),
            _timestamp(state.get("endTimestamp"))
            or _timestamp(_metadata(migration).get("creationTimestamp")),
        )
    return last


def vm_loads(
    observation: Observation, *, use_metrics: bool
) -> tuple[tuple[VirtualMachineLoad, ...], tuple[str, ...]]:
    """The running VMs of the cluster with their load, and notes on how it was measured."""
    notes: list[str] = []
    pods: dict[tuple[str, str, str], Obj] = {}
    for pod in observation.launcher_pods:
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        namespace = str(_metadata(pod).get("namespace") or "")
        vm_name = str((_metadata(pod).get("labels") or {}).get("vm.kubevirt.io/name") or "")
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        pods[(namespace, vm_name, node)] = pod
    usage: dict[tuple[str, str], tuple[int, int]] = {}
    if use_metrics and observation.pod_metrics is None:
        notes.append("metrics.k8s.io did not answer: load is the VMs' requests")
    for metrics in observation.pod_metrics or ():
        usage[_key(metrics)] = pod_usage(metrics)
    last_moved = _last_moves(observation.migrations, observation.kubevirt_migrations)

    loads = []
    for vm in observation.virtual_machines:
        namespace, name = _key(vm)
        vmi = observation.vmis.get((namespace, name))
        if vmi is None or (vmi.get("status") or {}).get("phase") != "Running":
            continue
        host = str((vmi.get("status") or {}).get("nodeName") or "")
        launcher = pods.get((namespace, name, host))
        if not host or launcher is None:
            continue
        cpu_request, memory_request = pod_requests(launcher)
        cpu, memory = cpu_request, memory_request
        measured = usage.get(_key(launcher)) if use_metrics else None
        if measured is not None:
            cpu, memory = max(cpu, measured[0]), max(memory, measured[1])
        reason = not_migratable_reason(vmi, host)
        loads.append(
            VirtualMachineLoad(
                key=vm_key(namespace, name),
                host=host,
                cpu_millicores=cpu,
                memory_bytes=memory,
                cpu_request_millicores=cpu_request,
                memory_request_bytes=memory_request,
                labels=dict(_metadata(vm).get("labels") or {}),
                migratable=reason is None,
                not_migratable_reason=reason or "",
                last_moved_at=last_moved.get(vm_key(namespace, name)),
            )
        )
    return tuple(sorted(loads, key=lambda load: load.key)), tuple(notes)


def settings_of(drs: DRS, kubevirt: Obj | None, now: float) -> DrsSettings:
    """The planner's settings: the cluster's threshold, KubeVirt's migration limits."""
    migrations = (((kubevirt or {}).get("spec") or {}).get("configuration") or {}).get(
        "migrations"
    ) or {}
    per_cluster = migrations.get("parallelMigrationsPerCluster")
    per_node = migrations.get("parallelOutboundMigrationsPerNode")
    parallel = int(per_cluster) if per_cluster is not None else (
        DEFAULT_PARALLEL_MIGRATIONS_PER_CLUSTER
    )
    return DrsSettings(
        migration_threshold=drs.migration_threshold,
        max_moves_per_pass=parallel,
        max_outbound_per_host=int(per_node)
        if per_node is not None
        else DEFAULT_PARALLEL_OUTBOUND_PER_NODE,
        max_parallel_in_cluster=parallel,
        cooldown_seconds=COOLDOWN_SECONDS,
        now=now,
    )


def planner_inputs(
    rules: Sequence[Rule], drs: DRS, observation: Observation, now: float
) -> Inputs:
    """Everything the planner needs for one pass of this cluster."""
    hosts = hosts_of(observation.nodes)
    vms, notes = vm_loads(observation, use_metrics=drs.load_metric == "Usage")
    loads: dict[str, list[int]] = {host.name: [0, 0] for host in hosts}
    for vm in vms:
        if vm.host in loads:
            loads[vm.host][0] += vm.cpu_millicores
            loads[vm.host][1] += vm.memory_bytes
    state = ClusterState(
        hosts=hosts,
        virtual_machines=vms,
        rules=placement_rules(rules, vms, hosts),
        in_flight=moves_in_flight(vms, observation.migrations, observation.kubevirt_migrations),
    )
    return Inputs(
        state,
        settings_of(drs, observation.kubevirt, now),
        notes,
        {name: (cpu, memory) for name, (cpu, memory) in loads.items()},
    )
