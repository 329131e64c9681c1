"""Whether the controller accepts a VDC VM spec (pure, no I/O): checks a schema cannot make.

- `parse_spec`: the spec, or a rejection naming the field of a cross-field rule.
- `unresolved_references`: referents that do not exist yet (cluster, policy, port group, a
  StorageClass its StoragePolicy is about to create): a temporary wait that heals.
- `capacity_rejection`, `storage_class_rejection`: what no later event will fix by itself
  (more CPU than any host has, a StorageClass nobody creates): Ready=False and an Event.
- `port_group_rejection`: a NIC on a port group whose namespaceSelector does not pick the
  VM's namespace (the port group's owner decides who may attach; the VM waits for that).
- `mac_address_rejection`: a NIC given a MAC another VM's NIC already has.
- `failover_capacity_rejection`: a power-on that would eat the room HA keeps for failover.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from controllers.computecluster.builders import ResolvedCluster, cluster_nodes
from controllers.computecluster.ha import Demand, HostRoom, admission_rejection, kubevirt_demand
from controllers.distributedportgroup.admission import admits_namespace
from controllers.distributedportgroup.models import DistributedPortGroupSpec
from controllers.storagepolicy.builders import ResolvedStoragePolicy
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.builders import storage_policy_for
from controllers.virtualmachine.models import VirtualMachineSpec
from kubekit.quantity import QuantityError, to_bytes, to_millis


@dataclass(frozen=True)
class Rejection:
    """A spec the controller will not build (no KubeVirt object is created for it)."""

    reason: str
    message: str


@dataclass(frozen=True)
class MissingReference:
    """A referent that does not exist yet: the reason names its kind, the message the field."""

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


def unresolved_references(
    spec: VirtualMachineSpec,
    *,
    storage_policies: Collection[str],
    default_storage_policy_name: str | None,
    cluster_exists: bool,
    port_groups: Collection[str] | None = None,
) -> list[MissingReference]:
    """Each field whose referent is missing; empty when all resolve.

    `port_groups` None skips the port-group check (when the caller cannot list them).
    """
    problems: list[MissingReference] = []
    if spec.cluster_name is not None and not cluster_exists:
        problems.append(
            MissingReference(
                "ComputeClusterNotFound",
                f'spec.clusterName: ComputeCluster "{spec.cluster_name}" not found',
            )
        )
    for index, disk in enumerate(spec.disks):
        policy = storage_policy_for(disk, default_storage_policy_name)
        if policy is None:
            problems.append(
                MissingReference(
                    "DefaultStoragePolicyNotFound",
                    f"spec.disks[{index}].storagePolicyName: unset and no StoragePolicy is "
                    "marked default",
                )
            )
        elif policy not in storage_policies:
            problems.append(
                MissingReference(
                    "StoragePolicyNotFound",
                    f'spec.disks[{index}].storagePolicyName: StoragePolicy "{policy}" not found',
                )
            )
    if port_groups is not None:
        for index, network in enumerate(spec.networks):
            name = network.port_group_name
            if name is not None and name not in port_groups:
                problems.append(
                    MissingReference(
                        "DistributedPortGroupNotFound",
                        f'spec.networks[{index}].portGroupName: DistributedPortGroup "{name}" '
                        "not found",
                    )
                )
    return problems


def pending_storage_classes(
    spec: VirtualMachineSpec,
    policies: Mapping[str, ResolvedStoragePolicy],
    policy_specs: Mapping[str, StoragePolicySpec],
    default_policy: str | None,
    storage_classes: Collection[str],
) -> list[MissingReference]:
    """Missing StorageClasses that the StoragePolicy controller creates (a provisioner is set).

    Right after `kubectl apply -f examples/` a VM may be reconciled before its policy's class
    exists; that is a wait, like any missing reference, not a rejection.
    """
    pending: list[MissingReference] = []
    for index, disk in enumerate(spec.disks):
        name = storage_policy_for(disk, default_policy) or ""
        policy, policy_spec = policies.get(name), policy_specs.get(name)
        if policy is not None and not policy.storage_class_name:
            # A policy on the cluster's default class, while there is none (or several).
            pending.append(
                MissingReference(
                    "DefaultStorageClassMissing",
                    f'spec.disks[{index}]: StoragePolicy "{policy.name}" uses the cluster\'s '
                    "default StorageClass, and there is not exactly one",
                )
            )
        elif (
            policy is not None
            and policy_spec is not None
            and policy_spec.provisioner is not None
            and policy.storage_class_name not in storage_classes
        ):
            pending.append(
                MissingReference(
                    "StorageClassPending",
                    f'spec.disks[{index}]: StorageClass "{policy.storage_class_name}" of '
                    f'StoragePolicy "{policy.name}" is not created yet',
                )
            )
    return pending


def storage_class_rejection(
    spec: VirtualMachineSpec,
    policies: Mapping[str, ResolvedStoragePolicy],
    default_policy: str | None,
    storage_classes: Collection[str],
) -> Rejection | None:
    """A rejection when a disk's policy adopts a StorageClass that does not exist.

    Call it after `pending_storage_classes`: classes a policy creates are waited for.
    """
    for index, disk in enumerate(spec.disks):
        policy = policies.get(storage_policy_for(disk, default_policy) or "")
        if policy is not None and policy.storage_class_name not in storage_classes:
            return Rejection(
                "StorageClassNotFound",
                f'spec.disks[{index}]: StorageClass "{policy.storage_class_name}" of '
                f'StoragePolicy "{policy.name}" does not exist',
            )
    return None


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


def port_group_rejection(
    spec: VirtualMachineSpec,
    namespace: str,
    port_groups: Mapping[str, DistributedPortGroupSpec | None],
    namespace_labels: Mapping[str, str],
) -> Rejection | None:
    """A rejection when a NIC names a port group that does not admit the VM's namespace.

    `port_groups` maps names to specs (None: a spec the API holds but that does not parse,
    which admits nobody). Missing port groups are `unresolved_references`' to report.
    """
    for index, network in enumerate(spec.networks):
        name = network.port_group_name
        if name is None or name not in port_groups:
            continue
        port_group = port_groups[name]
        if port_group is None or not admits_namespace(port_group, namespace_labels):
            return Rejection(
                "PortGroupNotAllowed",
                f'spec.networks[{index}].portGroupName: DistributedPortGroup "{name}" does not '
                f'admit namespace "{namespace}" (its namespaceSelector does not select it)',
            )
    return None


def mac_address_rejection(
    spec: VirtualMachineSpec,
    key: tuple[str, str],
    mac_users: Callable[[str], Collection[tuple[str, str]]],
) -> Rejection | None:
    """A rejection when a NIC's given macAddress is another VM's (two guests, one address)."""
    for index, network in enumerate(spec.networks):
        if network.mac_address is None:
            continue
        others = sorted(user for user in mac_users(network.mac_address.lower()) if user != key)
        if others:
            namespace, name = others[0]
            return Rejection(
                "MACAddressInUse",
                f"spec.networks[{index}].macAddress: {network.mac_address} is used by "
                f'VirtualMachine "{namespace}/{name}"',
            )
    return None


def _host_rooms(cluster_status: Mapping[str, Any]) -> list[HostRoom]:
    """The Ready hosts of a ComputeCluster's status as the HA planner counts them."""
    rooms = []
    for host in cluster_status.get("hosts") or []:
        if not host.get("ready"):
            continue
        capacity, allocated = host.get("capacity") or {}, host.get("allocated") or {}
        try:
            rooms.append(HostRoom(
                str(host.get("name")),
                Demand(to_millis(capacity.get("cpu", "0")), to_bytes(capacity.get("memory", "0"))),
                Demand(to_millis(allocated.get("cpu", "0")),
                       to_bytes(allocated.get("memory", "0"))),
            ))
        except QuantityError:
            continue
    return rooms


def failover_capacity_rejection(
    spec: VirtualMachineSpec,
    cluster: ResolvedCluster | None,
    cluster_status: Mapping[str, Any] | None,
    powering_on: bool,
) -> Rejection | None:
    """A rejection when powering the VM on would leave less room than HA admission control
    keeps for failover (`spec.ha.admissionControl` of its ComputeCluster).

    Only a power-on is judged (a new VM, or one whose KubeVirt VM is Halted); a running VM
    and HA's own restarts are never refused.
    """
    if cluster is None or not powering_on or spec.power_state != "PoweredOn":
        return None
    ha = cluster.spec.ha
    if not ha.enabled:
        return None
    demand = kubevirt_demand(spec.cpu.count, to_bytes(spec.memory.size))
    reason = admission_rejection(
        ha.admission_control, ha.host_failures_to_tolerate,
        _host_rooms(cluster_status or {}), demand,
    )
    if reason is None:
        return None
    return Rejection(
        "InsufficientFailoverCapacity", f'ComputeCluster "{cluster.name}": {reason}'
    )
