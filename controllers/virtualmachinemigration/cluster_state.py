"""The DRS planner's view of one ComputeCluster, built from what the caches hold (pure).

vMotion and maintenance ask the planner (`controllers.computecluster.drs`) where a VM may
go; this turns Nodes, VDC VMs, their VMIs, the cluster's rules and the migrations in flight
into its `ClusterState`. A VM's requests are estimated as KubeVirt sizes its launcher pod:
100m CPU per vCPU (KubeVirt's default CPU allocation ratio of 10) and its guest memory; the
load DRS balances is the requests (the DRS pass itself reads usage).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from controllers.computecluster.builders import cluster_nodes, selector_matches
from controllers.computecluster.drs import (
    ClusterState,
    Host,
    MoveInFlight,
    PlacementRule,
    VirtualMachineLoad,
)
from controllers.computecluster.models import ComputeClusterSpec
from kubekit.quantity import QuantityError, to_bytes, to_millis

#: KubeVirt's default vCPU to CPU-request ratio (developerConfiguration.cpuAllocationRatio).
CPU_ALLOCATION_RATIO: Final = 10
IN_FLIGHT_PHASES: Final = frozenset({"Pending", "Scheduling", "Running"})


def vm_key(namespace: str, name: str) -> str:
    """How the planner names a VM: "namespace/name"."""
    return f"{namespace}/{name}"


def _quantity(value: Any, convert: Any) -> int:
    try:
        return int(convert(value)) if value is not None else 0
    except QuantityError:
        return 0


def _condition(obj: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def not_migratable_reason(vmi: Mapping[str, Any] | None, host: str) -> str | None:
    """Why KubeVirt will not live-migrate the VMI (its LiveMigratable condition), in words a
    vSphere user reads; None when it can migrate."""
    migratable = _condition(vmi, "LiveMigratable")
    if migratable is None or migratable.get("status") == "True":
        return None
    message = str(migratable.get("message") or "")
    if migratable.get("reason") == "DisksNotLiveMigratable":
        claim = _claim_named_in(message)
        named = f" (PVC {claim})" if claim else ""
        return f"disk data is ReadWriteOnce on {host}{named}"
    return message or str(migratable.get("reason") or "KubeVirt refuses to migrate it")


def _claim_named_in(message: str) -> str | None:
    """The PVC KubeVirt's DisksNotLiveMigratable message names ("... PVC <name> is not
    shared ...")."""
    words = message.split()
    for index, word in enumerate(words[:-1]):
        if word == "PVC":
            return words[index + 1].rstrip(",:")
    return None


@dataclass(frozen=True)
class RunningVM:
    """A VDC VM of the cluster that runs, as the planner needs it."""

    key: str
    namespace: str
    name: str
    host: str
    load: VirtualMachineLoad


def running_vms(
    cluster_name: str | None,
    vdc_vms: Iterable[Mapping[str, Any]],
    vmis: Mapping[tuple[str, str], Mapping[str, Any]],
    hosts: Iterable[str],
) -> list[RunningVM]:
    """The VMs of the cluster whose VMI runs on one of its hosts, sorted by key (cluster
    None: the VMs that name no cluster)."""
    members = set(hosts)
    found: list[RunningVM] = []
    for vm in vdc_vms:
        metadata = vm.get("metadata") or {}
        spec = vm.get("spec") or {}
        if (spec.get("clusterName") or None) != (cluster_name or None):
            continue
        namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
        vmi = vmis.get((namespace, name))
        status = (vmi or {}).get("status") or {}
        host = str(status.get("nodeName") or "")
        if status.get("phase") != "Running" or host not in members:
            continue
        vcpus = int((spec.get("cpu") or {}).get("count") or 1)
        cpu = vcpus * 1000 // CPU_ALLOCATION_RATIO
        memory = _quantity((spec.get("memory") or {}).get("size"), to_bytes)
        reason = not_migratable_reason(vmi, host)
        key = vm_key(namespace, name)
        found.append(RunningVM(key, namespace, name, host, VirtualMachineLoad(
            key=key, host=host, cpu_millicores=cpu, memory_bytes=memory,
            cpu_request_millicores=cpu, memory_request_bytes=memory,
            labels=dict(metadata.get("labels") or {}),
            migratable=reason is None, not_migratable_reason=reason or "",
        )))
    return sorted(found, key=lambda running: running.key)


def cluster_hosts(spec: ComputeClusterSpec, nodes: Iterable[Mapping[str, Any]]) -> list[Host]:
    """The cluster's hosts: allocatable, Ready, cordoned."""
    hosts = []
    for node in cluster_nodes(spec, nodes):
        status = node.get("status") or {}
        allocatable = status.get("allocatable") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in status.get("conditions") or [])
        hosts.append(Host(
            name=str(node["metadata"]["name"]),
            cpu_millicores=_quantity(allocatable.get("cpu"), to_millis),
            memory_bytes=_quantity(allocatable.get("memory"), to_bytes),
            ready=ready,
            schedulable=not (node.get("spec") or {}).get("unschedulable"),
            labels=dict(node["metadata"].get("labels") or {}),
        ))
    return hosts


def placement_rules(
    spec: ComputeClusterSpec, vms: Iterable[RunningVM], hosts: Iterable[Host]
) -> tuple[PlacementRule, ...]:
    """The cluster's rules with their selectors resolved; older (earlier) rules first."""
    vms, hosts = list(vms), list(hosts)
    resolved = []
    for order, rule in enumerate(spec.rules):
        members = tuple(vm.key for vm in vms
                        if selector_matches(rule.virtual_machine_selector, vm.load.labels))
        picked: tuple[str, ...] = ()
        if rule.host_selector is not None:
            selector = rule.host_selector
            picked = tuple(host.name for host in hosts if selector_matches(selector, host.labels))
        resolved.append(PlacementRule(
            name=rule.name, kind=rule.type, enforcement=rule.enforcement,
            virtual_machines=members, hosts=picked, order=order))
    return tuple(resolved)


def moves_in_flight(migrations: Iterable[Mapping[str, Any]]) -> tuple[MoveInFlight, ...]:
    """VirtualMachineMigrations accepted and not finished (they hold their targets)."""
    moves = []
    for migration in migrations:
        status = migration.get("status") or {}
        if status.get("phase") not in IN_FLIGHT_PHASES:
            continue
        source, target = status.get("sourceHost"), status.get("targetHost")
        if not source or not target:
            continue
        namespace = str((migration.get("metadata") or {}).get("namespace"))
        name = str((migration.get("spec") or {}).get("virtualMachineName"))
        moves.append(MoveInFlight(vm_key(namespace, name), str(source), str(target)))
    return tuple(sorted(moves, key=lambda move: move.vm))


def cluster_state(
    cluster_name: str | None,
    spec: ComputeClusterSpec,
    nodes: Iterable[Mapping[str, Any]],
    vdc_vms: Iterable[Mapping[str, Any]],
    vmis: Mapping[tuple[str, str], Mapping[str, Any]],
    migrations: Iterable[Mapping[str, Any]],
    *,
    excluding_migration: tuple[str, str] | None = None,
) -> tuple[ClusterState, list[RunningVM]]:
    """The planner's input for one cluster, and its running VMs.

    `excluding_migration` (namespace, name) leaves that migration out of the moves in
    flight: the one being decided must not count against itself.
    """
    hosts = cluster_hosts(spec, nodes)
    vms = running_vms(cluster_name, vdc_vms, vmis, [host.name for host in hosts])
    others = [m for m in migrations
              if excluding_migration is None or (
                  str((m.get("metadata") or {}).get("namespace")),
                  str((m.get("metadata") or {}).get("name"))) != excluding_migration]
    state = ClusterState(
        hosts=tuple(hosts),
        virtual_machines=tuple(vm.load for vm in vms),
        rules=placement_rules(spec, vms, hosts),
        in_flight=moves_in_flight(others),
    )
    return state, vms
