"""The DRS planner's inputs and outputs: frozen dataclasses, no behaviour.

Import them from `controllers.computecluster.drs`, which re-exports every name here. Units are
the planner's own and explicit in the field names: CPU in millicores, memory in bytes, time in
seconds since the epoch (the caller's clock: `DrsSettings.now`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

RuleKind = Literal[
    "KeepTogether", "SeparateVirtualMachines", "VirtualMachinesToHosts", "VirtualMachinesNotOnHosts"
]
Enforcement = Literal["Required", "Preferred"]
MoveReason = Literal["Balance", "RuleViolation", "Maintenance"]
#: Why a requested move cannot run, as a code a status.reason can carry (the message says more).
RefusalCode = Literal[
    "VirtualMachineNotRunning",
    "NotLiveMigratable",
    "TargetNotInCluster",
    "TargetNotReady",
    "TargetIsSource",
    "InsufficientCapacity",
    "RuleViolation",
    "NoTarget",
]

KEEP_TOGETHER: RuleKind = "KeepTogether"
SEPARATE: RuleKind = "SeparateVirtualMachines"
TO_HOSTS: RuleKind = "VirtualMachinesToHosts"
NOT_ON_HOSTS: RuleKind = "VirtualMachinesNotOnHosts"


@dataclass(frozen=True)
class Host:
    """A host (Node) of the cluster, with what it can give VMs (its allocatable)."""

    name: str
    cpu_millicores: int
    memory_bytes: int
    ready: bool = True
    schedulable: bool = True  # False when cordoned (spec.unschedulable)
    in_maintenance: bool = False
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _not_negative(f"host {self.name}", cpu_millicores=self.cpu_millicores,
                      memory_bytes=self.memory_bytes)

    @property
    def accepts_virtual_machines(self) -> bool:
        """Whether a VM may be moved here: Ready, not cordoned, not in maintenance."""
        return self.ready and self.schedulable and not self.in_maintenance


@dataclass(frozen=True)
class VirtualMachineLoad:
    """A running VM of the cluster: where it runs, the load it puts there, what it reserves.

    `cpu_millicores` / `memory_bytes` are the load DRS balances: usage with the requests as a
    floor, or the requests alone (the caller decides from `spec.drs.loadMetric`). The requests
    are what a host must have free to take the VM (the kube-scheduler's view of capacity).
    """

    key: str  # "namespace/name" of the VDC VirtualMachine
    host: str
    cpu_millicores: int
    memory_bytes: int
    cpu_request_millicores: int
    memory_request_bytes: int
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    migratable: bool = True
    not_migratable_reason: str = ""  # e.g. "disk data is ReadWriteOnce"
    last_moved_at: float | None = None  # when DRS (or a user) last migrated it

    def __post_init__(self) -> None:
        if self.key.count("/") != 1 or not all(self.key.split("/")):
            raise ValueError(f"virtual machine key {self.key!r} is not namespace/name")
        _not_negative(f"virtual machine {self.key}", cpu_millicores=self.cpu_millicores,
                      memory_bytes=self.memory_bytes,
                      cpu_request_millicores=self.cpu_request_millicores,
                      memory_request_bytes=self.memory_request_bytes)


@dataclass(frozen=True)
class PlacementRule:
    """A placement rule with its selectors already resolved to VM keys and host names.

    `order` ranks rules by age (lower is older: e.g. the position in `spec.rules`, or when the
    rule was first seen): on a conflict the older rule wins, after anti-affinity over affinity.
    """

    name: str
    kind: RuleKind
    enforcement: Enforcement
    virtual_machines: tuple[str, ...]
    hosts: tuple[str, ...] = ()  # VirtualMachinesToHosts / VirtualMachinesNotOnHosts only
    order: int = 0

    def __post_init__(self) -> None:
        if self.kind not in (KEEP_TOGETHER, SEPARATE, TO_HOSTS, NOT_ON_HOSTS):
            raise ValueError(f"rule {self.name}: type {self.kind!r} is not one of KeepTogether, "
                             "SeparateVirtualMachines, VirtualMachinesToHosts, "
                             "VirtualMachinesNotOnHosts")
        if self.enforcement not in ("Required", "Preferred"):
            raise ValueError(f"rule {self.name}: enforcement {self.enforcement!r} is not "
                             "Required or Preferred")
        if self.hosts and self.kind in (KEEP_TOGETHER, SEPARATE):
            raise ValueError(f"rule {self.name}: hosts apply only to VirtualMachinesToHosts "
                             "and VirtualMachinesNotOnHosts")


@dataclass(frozen=True)
class MoveInFlight:
    """A migration already running (or queued): it counts against the limits, and the VM is
    planned as if it were on `target` already while both hosts keep its requests reserved."""

    vm: str
    source: str
    target: str


@dataclass(frozen=True)
class DrsSettings:
    """How aggressive DRS is and the limits it keeps (KubeVirt's migration defaults)."""

    migration_threshold: int = 3  # 1: mandatory moves only .. 5: any gain
    max_moves_per_pass: int = 5
    max_outbound_per_host: int = 2  # KubeVirt parallelOutboundMigrationsPerNode
    max_parallel_in_cluster: int = 5  # KubeVirt parallelMigrationsPerCluster
    cooldown_seconds: float = 600.0  # a VM moved within this is not moved again for balance
    now: float = 0.0
    # Cost-benefit: a balance move is made when its gain, as the drop of the hosts' summed
    # squared load deviation (N * imbalance**2, which unlike the imbalance does not shrink as
    # hosts are added), beats migration_cost times the share of its host's memory it copies.
    # For a VM holding share a of its host, moved across a load gap g, the gain is about
    # 2 * a * (g - a): at 0.01 it moves when g exceeds its own share plus 0.5 percentage points,
    # so near balance small gains never pay for copying large VMs (and stop ping-pong).
    migration_cost: float = 0.01

    def __post_init__(self) -> None:
        if not 1 <= self.migration_threshold <= 5:
            raise ValueError(
                f"migrationThreshold: {self.migration_threshold} is not within 1..5"
            )
        for name in ("max_moves_per_pass", "max_outbound_per_host", "max_parallel_in_cluster"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: {getattr(self, name)} must not be negative")
        if self.migration_cost < 0:
            raise ValueError(f"migration_cost: {self.migration_cost} must not be negative")
        if self.cooldown_seconds < 0:
            raise ValueError(f"cooldown_seconds: {self.cooldown_seconds} must not be negative")


@dataclass(frozen=True)
class ClusterState:
    """Everything the planner looks at, in one value."""

    hosts: tuple[Host, ...]
    virtual_machines: tuple[VirtualMachineLoad, ...]
    rules: tuple[PlacementRule, ...] = ()
    in_flight: tuple[MoveInFlight, ...] = ()


@dataclass(frozen=True)
class Move:
    """One recommended migration, in the order the plan makes them."""

    vm: str
    source: str
    target: str
    reason: MoveReason
    priority: int  # 1 (mandatory) .. 5 (slight gain), as vSphere rates recommendations
    expected_imbalance: float  # the cluster's imbalance once this and every earlier move ran
    rule: str | None = None  # the rule a RuleViolation move repairs
    imbalance_before: float = 0.0  # the cluster's imbalance just before this move

    @property
    def summary(self) -> str:
        """What the move's Event and log line say after "Migrated by DRS ", e.g.
        "from host-1 to host-3: balance, imbalance 0.31 -> 0.12"."""
        why = {"Balance": "balance", "Maintenance": f"{self.source} enters maintenance",
               "RuleViolation": f"rule {self.rule}"}[self.reason]
        return (f"from {self.source} to {self.target}: {why}, imbalance "
                f"{self.imbalance_before:.2f} -> {self.expected_imbalance:.2f}")


def _not_negative(what: str, **values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{what}: {name} {value} must not be negative")


def decimal(value: float) -> str:
    """An imbalance as status shows it: a decimal string with 3 places, e.g. "0.082"."""
    return f"{value:.3f}"


@dataclass(frozen=True)
class RuleStatus:
    """Whether a rule holds now, which VMs break it, and whether a conflict disabled it."""

    name: str
    satisfied: bool
    violating: tuple[str, ...]
    message: str
    # The rule that won the conflict; the rule's own name when it cannot hold on its own (e.g.
    # VirtualMachinesToHosts naming no host of the cluster). None: the rule is enabled.
    disabled_by: str | None = None


@dataclass(frozen=True)
class HeldVirtualMachine:
    """A VM the plan wanted to move (maintenance, a Required rule) but could not, and why.

    `retriable` is True when only the migration limits hold it (a later pass moves it), False
    when something about the VM or the cluster does (an RWO disk, no host with room).
    """

    vm: str
    reason: str
    retriable: bool


@dataclass(frozen=True)
class DrsPlan:
    """What one DRS pass recommends."""

    imbalance: float  # now (moves in flight counted at their targets)
    target_imbalance: float
    cpu_imbalance: float
    memory_imbalance: float
    moves: tuple[Move, ...]
    rules: tuple[RuleStatus, ...]
    held: tuple[HeldVirtualMachine, ...] = ()

    @property
    def expected_imbalance(self) -> float:
        """The imbalance once every move of the plan ran."""
        return self.moves[-1].expected_imbalance if self.moves else self.imbalance


@dataclass(frozen=True)
class Evacuation:
    """The moves that empty a host entering maintenance, and the VMs still held there."""

    host: str
    moves: tuple[Move, ...]
    held: tuple[HeldVirtualMachine, ...]

    @property
    def complete(self) -> bool:
        """True when these moves leave no VM of the cluster on the host."""
        return not self.held


@dataclass(frozen=True)
class Refusal:
    """Why a move may not run: a code for status.reason and the words for status.message."""

    code: RefusalCode
    message: str


@dataclass(frozen=True)
class TargetChoice:
    """Where a vMotion without a target should go, or why nowhere can take the VM."""

    target: str | None
    reason: str  # why this host, or why none
    refused: RefusalCode | None = None  # set when target is None
