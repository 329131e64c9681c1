"""The parts of the DRS planner's input that every caller builds alike (pure).

Three callers ask the planner (`drs.py`) about one cluster: the DRS pass (`pass_inputs`),
vMotion and maintenance (`virtualmachinemigration/cluster_state`). They measure a VM's load
differently (usage and launcher-pod requests for DRS, an estimate from the VM's spec for the
others, which keep no pod cache), but hosts, placement rules, moves in flight and why a VM
cannot move are read from the same objects the same way: here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from controllers.computecluster.builders import node_ready, quantity_or_zero, selector_matches
from controllers.computecluster.drs_types import (
    Host,
    MoveInFlight,
    PlacementRule,
    VirtualMachineLoad,
)
from controllers.computecluster.models import Rule
from kubekit.quantity import to_bytes, to_millis

Obj = Mapping[str, Any]

_FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed"})


def vm_key(namespace: str, name: str) -> str:
    """How the planner names a VM: "namespace/name"."""
    return f"{namespace}/{name}"


def condition_of(obj: Obj | None, kind: str) -> Obj | None:
    """The status condition of that type, or None."""
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            found: Obj = condition
            return found
    return None


def not_migratable_reason(vmi: Obj | None, host: str) -> str | None:
    """Why KubeVirt will not live-migrate the VMI (its LiveMigratable condition), in words a
    vSphere user reads; None when it can migrate."""
    migratable = condition_of(vmi, "LiveMigratable")
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


def hosts_of(nodes: Iterable[Obj]) -> tuple[Host, ...]:
    """The planner's hosts (allocatable, Ready, cordoned, labels), sorted by name."""
    hosts = []
    for node in nodes:
        metadata = node.get("metadata") or {}
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        hosts.append(Host(
            name=str(metadata.get("name")),
            cpu_millicores=quantity_or_zero(allocatable.get("cpu"), to_millis),
            memory_bytes=quantity_or_zero(allocatable.get("memory"), to_bytes),
            ready=node_ready(node),
            schedulable=not (node.get("spec") or {}).get("unschedulable", False),
            labels=dict(metadata.get("labels") or {}),
        ))
    return tuple(sorted(hosts, key=lambda host: host.name))


def placement_rules(
    rules: Sequence[Rule], vms: Sequence[VirtualMachineLoad], hosts: Sequence[Host]
) -> tuple[PlacementRule, ...]:
    """The spec's rules with their selectors resolved; spec order is age (earlier: older)."""
    resolved = []
    for order, rule in enumerate(rules):
        members = tuple(
            vm.key for vm in vms if selector_matches(rule.virtual_machine_selector, vm.labels)
        )
        picked: tuple[str, ...] = ()
        if rule.host_selector is not None:
            # The hosts the selector picks, for both host rule kinds (the planner negates).
            picked = tuple(
                host.name for host in hosts if selector_matches(rule.host_selector, host.labels)
            )
        resolved.append(PlacementRule(
            name=rule.name, kind=rule.type, enforcement=rule.enforcement,
            virtual_machines=members, hosts=picked, order=order,
        ))
    return tuple(resolved)


def moves_in_flight(
    vms: Sequence[VirtualMachineLoad],
    migrations: Iterable[Obj],
    kubevirt_migrations: Iterable[Obj] = (),
) -> tuple[MoveInFlight, ...]:
    """Unfinished migrations of the cluster's running VMs, one per VM: KubeVirt's own
    (VirtualMachineInstanceMigrations) and vdcos VirtualMachineMigrations. They count
    against the limits, and their VMs are counted on their targets."""
    hosts = {vm.key: vm.host for vm in vms}
    moves: dict[str, MoveInFlight] = {}
    for migration in kubevirt_migrations:
        status = migration.get("status") or {}
        if status.get("phase") in _FINISHED_PHASES:
            continue
        namespace = str((migration.get("metadata") or {}).get("namespace") or "")
        key = vm_key(namespace, str((migration.get("spec") or {}).get("vmiName") or ""))
        if key not in hosts:
            continue
        state = status.get("migrationState") or {}
        selector = (migration.get("spec") or {}).get("addedNodeSelector") or {}
        target = str(state.get("targetNode") or selector.get("kubernetes.io/hostname") or "")
        moves[key] = MoveInFlight(key, str(state.get("sourceNode") or hosts[key]), target)
    for migration in migrations:
        status = migration.get("status") or {}
        if status.get("phase") in _FINISHED_PHASES:
            continue
        namespace = str((migration.get("metadata") or {}).get("namespace") or "")
        spec = migration.get("spec") or {}
        key = vm_key(namespace, str(spec.get("virtualMachineName") or ""))
        if key not in hosts or (key in moves and moves[key].target):
            continue
        target = str(status.get("targetHost") or spec.get("targetHost") or "")
        moves[key] = MoveInFlight(key, str(status.get("sourceHost") or hosts[key]), target)
    return tuple(moves[key] for key in sorted(moves))
