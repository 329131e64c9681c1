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

from controllers.computecluster.builders import cluster_nodes, quantity_or_zero
from controllers.computecluster.drs import ClusterState, Host, VirtualMachineLoad
from controllers.computecluster.models import ComputeClusterSpec
from controllers.computecluster.planner_view import (
    hosts_of,
    moves_in_flight,
    not_migratable_reason,
    placement_rules,
    vm_key,
)
from kubekit.quantity import to_bytes

#: KubeVirt's default vCPU to CPU-request ratio (developerConfiguration.cpuAllocationRatio).
CPU_ALLOCATION_RATIO: Final = 10
#: The VirtualMachineMigration phases of a move not yet finished.
IN_FLIGHT_PHASES: Final = frozenset({"Pending", "Scheduling", "Running"})

__all__ = [
    "IN_FLIGHT_PHASES", "RunningVM", "cluster_state", "not_migratable_reason", "running_vms",
    "vm_key",
]


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
        memory = quantity_or_zero((spec.get("memory") or {}).get("size"), to_bytes)
        reason = not_migratable_reason(vmi, host)
        key = vm_key(namespace, name)
        found.append(RunningVM(key, namespace, name, host, VirtualMachineLoad(
            key=key, host=host, cpu_millicores=cpu, memory_bytes=memory,
            cpu_request_millicores=cpu, memory_request_bytes=memory,
            labels=dict(metadata.get("labels") or {}),
            migratable=reason is None, not_migratable_reason=reason or "",
        )))
    return sorted(found, key=lambda running: running.key)


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
    hosts: tuple[Host, ...] = hosts_of(cluster_nodes(spec, nodes))
    vms = running_vms(cluster_name, vdc_vms, vmis, [host.name for host in hosts])
    others = [m for m in migrations
              if excluding_migration is None or (
                  str((m.get("metadata") or {}).get("namespace")),
                  str((m.get("metadata") or {}).get("name"))) != excluding_migration]
    loads = [vm.load for vm in vms]
    state = ClusterState(
        hosts=hosts,
        virtual_machines=tuple(loads),
        rules=placement_rules(spec.rules, loads, hosts),
        in_flight=moves_in_flight(loads, others),
    )
    return state, vms
