"""The HA planner (pure, no I/O): restart order, placement under shortage, admission.

- `restart_tiers`: the protected VMs of a failed host grouped by priority, Highest first
  (Disabled VMs are left out: HA never restarts them).
- `place_restarts`: hosts for VMs in priority order, first the highest; a VM that fits
  nowhere waits Pending with a reason, and the lower ones may still take the room left.
- `failover_capacity`: how many host failures the cluster absorbs right now (its load fits
  on what is left after losing the largest hosts).
- `admission_rejection`: whether powering on one more VM would leave less room than the
  admission-control policy keeps.

Resources are integers: CPU in millicores, memory in bytes, as pod requests count them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from controllers.computecluster.ha_models import AdmissionControl, RestartPriority

#: Restart order: Highest first. Disabled is not restarted at all.
PRIORITY_ORDER: Final[tuple[RestartPriority, ...]] = (
    "Highest",
    "High",
    "Medium",
    "Low",
    "Lowest",
)


@dataclass(frozen=True)
class Demand:
    """CPU (millicores) and memory (bytes) a VM's launcher pod requests."""

    cpu: int
    memory: int

    def __add__(self, other: Demand) -> Demand:
        return Demand(self.cpu + other.cpu, self.memory + other.memory)


ZERO: Final = Demand(0, 0)


@dataclass(frozen=True)
class ProtectedVM:
    """A VM of a failed host, as the planner sees it."""

    key: tuple[str, str]  # (namespace, name)
    priority: RestartPriority
    demand: Demand


@dataclass(frozen=True)
class HostRoom:
    """A host that can take restarts: its allocatable and what is already requested on it."""

    name: str
    capacity: Demand
    allocated: Demand

    @property
    def free(self) -> Demand:
        return Demand(self.capacity.cpu - self.allocated.cpu,
                      self.capacity.memory - self.allocated.memory)


@dataclass(frozen=True)
class Placement:
    """Where each VM goes (`placed`), and why the others wait (`pending`)."""

    placed: Mapping[tuple[str, str], str]
    pending: Mapping[tuple[str, str], str]


def priority_rank(priority: RestartPriority) -> int:
    """0 for Highest .. 4 for Lowest; Disabled ranks after everything."""
    return PRIORITY_ORDER.index(priority) if priority in PRIORITY_ORDER else len(PRIORITY_ORDER)


def effective_priority(
    vm_priority: RestartPriority | None, cluster_default: RestartPriority
) -> RestartPriority:
    """A VM's priority: its own, or the cluster's default when it sets none."""
    return vm_priority if vm_priority is not None else cluster_default


def restart_tiers(vms: Iterable[ProtectedVM]) -> list[tuple[RestartPriority, list[ProtectedVM]]]:
    """The restartable VMs by priority tier, Highest first; names sorted within a tier."""
    tiers: dict[RestartPriority, list[ProtectedVM]] = {}
    for vm in vms:
        if vm.priority != "Disabled":
            tiers.setdefault(vm.priority, []).append(vm)
    return [
        (priority, sorted(tiers[priority], key=lambda vm: vm.key))
        for priority in PRIORITY_ORDER
        if priority in tiers
    ]


def place_restarts(vms: Sequence[ProtectedVM], hosts: Sequence[HostRoom]) -> Placement:
    """Hosts for the VMs, highest priority first, each on the host with the most free CPU.

    A VM that fits on no host waits, with a reason that says what it needs; a smaller VM of a
    lower priority may still take room that is left (HA restarts what it can).
    """
    free = {host.name: host.free for host in hosts}
    placed: dict[tuple[str, str], str] = {}
    pending: dict[tuple[str, str], str] = {}
    ordered = sorted(
        (vm for vm in vms if vm.priority != "Disabled"),
        key=lambda vm: (priority_rank(vm.priority), vm.key),
    )
    for vm in ordered:
        fitting = [
            name for name, room in free.items()
            if room.cpu >= vm.demand.cpu and room.memory >= vm.demand.memory
        ]
        if not fitting:
            pending[vm.key] = (
                f"no host has room for {vm.demand.cpu}m CPU and {vm.demand.memory // 2**20}Mi "
                f"memory (priority {vm.priority}); waiting for capacity"
            )
            continue
        target = max(fitting, key=lambda name: (free[name].cpu, free[name].memory, name))
        room = free[target]
        free[target] = Demand(room.cpu - vm.demand.cpu, room.memory - vm.demand.memory)
        placed[vm.key] = target
    return Placement(placed, pending)


def _totals(hosts: Sequence[HostRoom]) -> tuple[Demand, Demand]:
    capacity = allocated = ZERO
    for host in hosts:
        capacity = capacity + host.capacity
        allocated = allocated + host.allocated
    return capacity, allocated


def _largest(hosts: Sequence[HostRoom], count: int) -> Demand:
    """CPU and memory of the `count` largest hosts (each resource on its own: the worst case)."""
    cpu = sum(sorted((host.capacity.cpu for host in hosts), reverse=True)[:count])
    memory = sum(sorted((host.capacity.memory for host in hosts), reverse=True)[:count])
    return Demand(cpu, memory)


def fits_after_losing(hosts: Sequence[HostRoom], failures: int, load: Demand) -> bool:
    """Whether `load` fits on the hosts left after the `failures` largest are lost."""
    if failures >= len(hosts):
        return load.cpu <= 0 and load.memory <= 0
    capacity, _ = _totals(hosts)
    lost = _largest(hosts, failures)
    return (load.cpu <= capacity.cpu - lost.cpu
            and load.memory <= capacity.memory - lost.memory)


def failover_capacity(hosts: Sequence[HostRoom]) -> int:
    """Host failures the cluster absorbs now: its whole load fits after losing that many of
    its largest hosts (vSphere's "host failures cluster tolerates")."""
    _, allocated = _totals(hosts)
    failures = 0
    while failures + 1 < len(hosts) and fits_after_losing(hosts, failures + 1, allocated):
        failures += 1
    return failures


def admission_rejection(
    policy: AdmissionControl,
    host_failures_to_tolerate: int,
    hosts: Sequence[HostRoom],
    demand: Demand,
) -> str | None:
    """Why powering on a VM needing `demand` is refused, or None when the policy allows it."""
    if policy.policy == "Disabled" or not hosts:
        return None
    capacity, allocated = _totals(hosts)
    after = allocated + demand
    if policy.policy == "Percentage":
        cpu_limit = capacity.cpu * (100 - policy.cpu_percent) // 100
        memory_limit = capacity.memory * (100 - policy.memory_percent) // 100
        if after.cpu > cpu_limit:
            return (f"powering on needs {demand.cpu}m CPU; the cluster keeps "
                    f"{policy.cpu_percent}% of its CPU free for failover "
                    f"({after.cpu}m of {capacity.cpu}m would be requested)")
        if after.memory > memory_limit:
            return (f"powering on needs {demand.memory // 2**20}Mi memory; the cluster keeps "
                    f"{policy.memory_percent}% of its memory free for failover")
        return None
    if not fits_after_losing(hosts, host_failures_to_tolerate, after):
        return (f"powering on would leave too little room to restart the VMs of "
                f"{host_failures_to_tolerate} failed host(s) "
                f"(spec.ha.hostFailuresToTolerate of the ComputeCluster)")
    return None


def kubevirt_demand(vcpus: int, memory_bytes: int, cpu_allocation_ratio: int = 10) -> Demand:
    """What KubeVirt's launcher pod requests for a VM: vCPUs / cpuAllocationRatio (KubeVirt's
    default 10) and the guest's memory (overhead left out: the estimate errs on admitting)."""
    return Demand(vcpus * 1000 // cpu_allocation_ratio, memory_bytes)
