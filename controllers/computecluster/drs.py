"""The DRS planner: hosts, VM loads, placement rules and moves in flight in; ordered moves out.

Pure: no I/O, no clock (the caller passes `DrsSettings.now`), no Kubernetes objects. The
controllers turn a `DrsPlan` into status and VirtualMachineInstanceMigrations.

Model (vSphere's classic DRS, the facts in shared/notes/vcompute.md):
- Host load per resource = sum of its VMs' load / the host's allocatable. Only hosts that take
  VMs (Ready, not cordoned, not in maintenance, with allocatable) count and receive moves.
- Imbalance = the quadratic mean of the CPU and memory standard deviations,
  sqrt((sd_cpu**2 + sd_mem**2) / 2): the standard deviation of all 2N host loads, each about its
  own resource's mean. It equals either one when they agree, never hides a skewed resource the
  way a plain mean of the two would as much, and unlike max() it is smooth, so every move's gain
  is exact and computed in O(1) from running sums (a greedy step costs no full recompute).
- Target at threshold L = 0.1 * (5 - L) / sqrt(N). A balance move's priority is
  6 - ceil(imbalance * sqrt(N) / 0.1), kept within 2..5 because priority 1 is for mandatory
  moves (maintenance, Required rules); a move is made when its priority <= L, so level 1 makes
  mandatory moves only and level 5 any gain.

A pass, in order: evacuate hosts in maintenance, repair Required rules, repair Preferred rules
(priority 2), then balance greedily while the imbalance is above the target: each step takes the
move with the best gain net of its cost (DrsSettings.migration_cost: the gain against the memory
to copy), and stops when no move gains more than it costs; then one or two of the chosen moves
are exchanged for better ones while that lowers the imbalance further.
Every move keeps the hard limits: the target takes VMs and has room for the VM's requests (a
migrating VM holds its requests on both hosts until done); no enabled Required rule breaks;
balance and Preferred repairs do not break a Preferred rule; the VM is live-migratable; at most
max_outbound_per_host migrations leave a host and max_parallel_in_cluster run at once, counting
moves in flight; at most max_moves_per_pass are planned; a VM in flight or moved within
cooldown_seconds is not moved for balance or a Preferred rule (maintenance and Required rules
still move it). Ties break by VM key then host name, so the same input gives the same plan.

Interface (types in drs_types.py, rules in drs_rules.py, all re-exported here):
- plan(ClusterState, DrsSettings) -> DrsPlan: one pass; `moves` in order, `rules` status,
  `held` (VMs a mandatory move could not move now, each with why and whether a later pass can).
- evacuation_moves(host, state, settings) -> Evacuation: the moves that empty a host entering
  maintenance within the limits, and the VMs still there with what holds each.
- choose_target(vm, state, settings) -> TargetChoice: the host for a vMotion without a target.
- refusal(vm, target, state, settings) -> Refusal | None: why a vMotion to `target` is refused
  (a code for status.reason and the message).
- imbalance_of(state), target_imbalance(threshold, hosts), balance_priority(imbalance, hosts).
Not here: HA failover capacity (whether emptying a host leaves room to restart a failed one's
VMs) is for the caller to check; and a balance move never moves a VM of a Required
keep-together group on its own (groups do not move as a unit yet).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from controllers.computecluster.drs_rules import (
    RuleBook,
    precedence,
    resolve_conflicts,
    statuses,
    together_anchor,
    violations,
)
from controllers.computecluster.drs_types import (
    KEEP_TOGETHER,
    NOT_ON_HOSTS,
    SEPARATE,
    TO_HOSTS,
    ClusterState,
    DrsPlan,
    DrsSettings,
    Enforcement,
    Evacuation,
    HeldVirtualMachine,
    Host,
    Move,
    MoveInFlight,
    MoveReason,
    PlacementRule,
    Refusal,
    RefusalCode,
    RuleKind,
    RuleStatus,
    TargetChoice,
    VirtualMachineLoad,
    decimal,
)

__all__ = [
    "KEEP_TOGETHER",
    "NOT_ON_HOSTS",
    "SEPARATE",
    "TO_HOSTS",
    "ClusterState",
    "DrsPlan",
    "DrsSettings",
    "Enforcement",
    "Evacuation",
    "HeldVirtualMachine",
    "Host",
    "Move",
    "MoveInFlight",
    "MoveReason",
    "PlacementRule",
    "Refusal",
    "RefusalCode",
    "RuleKind",
    "RuleStatus",
    "TargetChoice",
    "VirtualMachineLoad",
    "balance_priority",
    "choose_target",
    "decimal",
    "evacuation_moves",
    "imbalance_of",
    "plan",
    "refusal",
    "target_imbalance",
]

GIB = 1024**3
# How many of the most and least loaded hosts a balance step pairs: a best move goes from a
# heavy host to a light one, and this bounds a step at large scale. Small clusters see all.
BALANCE_CANDIDATE_HOSTS = 12
# Rounds of move exchange after the greedy (each keeps only a strict improvement).
EXCHANGE_ROUNDS = 3
DEFAULT_SETTINGS = DrsSettings()


def target_imbalance(threshold: int, hosts: int) -> float:
    """vSphere's classic target: 0.1 * (5 - L) / sqrt(N)."""
    return 0.1 * (5 - threshold) / math.sqrt(hosts) if hosts else 0.0


def balance_priority(imbalance: float, hosts: int) -> int:
    """The priority of a balance move made at this imbalance (2..5)."""
    if hosts == 0:
        return 5
    steps = math.ceil(imbalance * math.sqrt(hosts) / 0.1 - 1e-9)
    return max(2, min(5, 6 - steps))


class _Cluster:
    """The working placement of one pass: loads, reservations, positions, limits used."""

    def __init__(self, state: ClusterState, settings: DrsSettings) -> None:
        self.settings = settings
        self.hosts = {host.name: host for host in sorted(state.hosts, key=lambda h: h.name)}
        self.vms = {vm.key: vm for vm in sorted(state.virtual_machines, key=lambda v: v.key)}
        self.active = sorted(
            name for name, host in self.hosts.items()
            if host.accepts_virtual_machines and host.cpu_millicores > 0
            and host.memory_bytes > 0
        )
        self._active_set = frozenset(self.active)
        self.cpu_load = dict.fromkeys(self.hosts, 0)
        self.memory_load = dict.fromkeys(self.hosts, 0)
        self.cpu_reserved = dict.fromkeys(self.hosts, 0)
        self.memory_reserved = dict.fromkeys(self.hosts, 0)
        self.positions: dict[str, str] = {}
        self.residents: dict[str, set[str]] = {}  # host -> VMs placed there (planned)
        self.leaving: dict[str, frozenset[str]] = {}
        self.outbound = dict.fromkeys(self.hosts, 0)
        self.migrating = 0
        self.moved: set[str] = set()
        in_flight = {move.vm: move for move in sorted(state.in_flight, key=lambda m: m.vm)}
        for vm in self.vms.values():
            if vm.host not in self.hosts:
                continue  # runs outside the cluster: not ours to balance
            move = in_flight.get(vm.key)
            where = move.target if move is not None and move.target in self.hosts else vm.host
            self.positions[vm.key] = where
            self.residents.setdefault(where, set()).add(vm.key)
            self.cpu_load[where] += vm.cpu_millicores
            self.memory_load[where] += vm.memory_bytes
            for host in {vm.host, where}:
                self.cpu_reserved[host] += vm.cpu_request_millicores
                self.memory_reserved[host] += vm.memory_request_bytes
            if where != vm.host:
                self.leaving[vm.host] = self.leaving.get(vm.host, frozenset()) | {vm.key}
        for move in in_flight.values():
            self.moved.add(move.vm)
            if move.source in self.outbound:
                self.outbound[move.source] += 1
            self.migrating += 1
        self._sums()

    # -- imbalance, kept as running sums of loads and squared loads over the active hosts --

    def _fractions(self, host: str) -> tuple[float, float]:
        spec = self.hosts[host]
        return self.cpu_load[host] / spec.cpu_millicores, self.memory_load[host] / spec.memory_bytes

    def _sums(self) -> None:
        self.sum_cpu = self.sum_memory = self.squares_cpu = self.squares_memory = 0.0
        for host in self.active:
            cpu, memory = self._fractions(host)
            self.sum_cpu += cpu
            self.sum_memory += memory
            self.squares_cpu += cpu * cpu
            self.squares_memory += memory * memory

    def deviations(self) -> tuple[float, float]:
        count = len(self.active)
        if count == 0:
            return 0.0, 0.0
        mean_cpu, mean_memory = self.sum_cpu / count, self.sum_memory / count
        var_cpu = max(0.0, self.squares_cpu / count - mean_cpu * mean_cpu)
        var_memory = max(0.0, self.squares_memory / count - mean_memory * mean_memory)
        return math.sqrt(var_cpu), math.sqrt(var_memory)

    def imbalance(self) -> float:
        cpu, memory = self.deviations()
        return math.sqrt((cpu * cpu + memory * memory) / 2)

    def imbalance_after(self, vm: VirtualMachineLoad, source: str, target: str) -> float:
        """The imbalance if `vm` moved from `source` to `target` (O(1))."""
        count = len(self.active)
        if count == 0:
            return 0.0
        sums = [self.sum_cpu, self.sum_memory]
        squares = [self.squares_cpu, self.squares_memory]
        for host, sign in ((source, -1), (target, 1)):
            if host not in self._active_set:
                continue
            spec = self.hosts[host]
            before = self._fractions(host)
            after = (
                before[0] + sign * vm.cpu_millicores / spec.cpu_millicores,
                before[1] + sign * vm.memory_bytes / spec.memory_bytes,
            )
            for index in (0, 1):
                sums[index] += after[index] - before[index]
                squares[index] += after[index] ** 2 - before[index] ** 2
        variance = 0.0
        for index in (0, 1):
            mean = sums[index] / count
            variance += max(0.0, squares[index] / count - mean * mean)
        return math.sqrt(variance / 2)

    # -- what a move needs --

    def room_for(self, vm: VirtualMachineLoad, host: str) -> str | None:
        spec = self.hosts[host]
        free_cpu = spec.cpu_millicores - self.cpu_reserved[host]
        free_memory = spec.memory_bytes - self.memory_reserved[host]
        if vm.cpu_request_millicores <= free_cpu and vm.memory_request_bytes <= free_memory:
            return None
        return (
            f"host {host} lacks room: needs {vm.cpu_request_millicores}m CPU and "
            f"{_gib(vm.memory_request_bytes)} memory, has {max(0, free_cpu)}m and "
            f"{_gib(max(0, free_memory))} free"
        )

    def limit_reached(self, source: str, planned: int) -> str | None:
        settings = self.settings
        if self.migrating >= settings.max_parallel_in_cluster:
            return (
                f"waiting: {settings.max_parallel_in_cluster} migrations already run in the cluster"
            )
        if self.outbound.get(source, 0) >= settings.max_outbound_per_host:
            return (
                f"waiting: {settings.max_outbound_per_host} migrations already leave {source}"
            )
        if planned >= settings.max_moves_per_pass:
            return f"waiting: this pass already plans {settings.max_moves_per_pass} moves"
        return None

    def in_cooldown(self, vm: VirtualMachineLoad) -> bool:
        return vm.last_moved_at is not None and (
            self.settings.now - vm.last_moved_at < self.settings.cooldown_seconds
        )

    def apply(self, vm: VirtualMachineLoad, target: str) -> None:
        source = self.positions[vm.key]
        self.cpu_load[source] -= vm.cpu_millicores
        self.memory_load[source] -= vm.memory_bytes
        self.cpu_load[target] += vm.cpu_millicores
        self.memory_load[target] += vm.memory_bytes
        # The source keeps its reservation: the VM runs there until the migration ends.
        self.cpu_reserved[target] += vm.cpu_request_millicores
        self.memory_reserved[target] += vm.memory_request_bytes
        self.leaving[source] = self.leaving.get(source, frozenset()) | {vm.key}
        self.positions[vm.key] = target
        self.residents[source].discard(vm.key)
        self.residents.setdefault(target, set()).add(vm.key)
        self.outbound[source] += 1
        self.migrating += 1
        self.moved.add(vm.key)
        self._sums()

    def unapply(self, vm: VirtualMachineLoad, source: str) -> None:
        """Take back a planned move of `vm` from `source` (the exact inverse of apply)."""
        target = self.positions[vm.key]
        self.cpu_load[target] -= vm.cpu_millicores
        self.memory_load[target] -= vm.memory_bytes
        self.cpu_load[source] += vm.cpu_millicores
        self.memory_load[source] += vm.memory_bytes
        self.cpu_reserved[target] -= vm.cpu_request_millicores
        self.memory_reserved[target] -= vm.memory_request_bytes
        self.leaving[source] = self.leaving[source] - {vm.key}
        self.positions[vm.key] = source
        self.residents[target].discard(vm.key)
        self.residents[source].add(vm.key)
        self.outbound[source] -= 1
        self.migrating -= 1
        self.moved.discard(vm.key)
        self._sums()

    def accepts(self, host: str) -> bool:
        return host in self._active_set


class _Planner:
    """One pass: the phases in order, each appending moves to the shared working placement."""

    def __init__(self, state: ClusterState, settings: DrsSettings) -> None:
        self.state = state
        self.settings = settings
        self.cluster = _Cluster(state, settings)
        self.resolution = resolve_conflicts(state.rules, self.cluster.hosts)
        self.book = RuleBook(self.resolution.enabled)
        self.moves: list[Move] = []
        self.held: dict[str, HeldVirtualMachine] = {}

    # -- checks --

    def hard_reason(self, vm: VirtualMachineLoad, target: str, ignoring: str | None = None
                    ) -> Refusal | None:
        """Why `vm` may not go to `target` at all (None: it may)."""
        cluster = self.cluster
        host = cluster.hosts.get(target)
        if host is None:
            return Refusal("TargetNotInCluster", f"host {target} is not in the cluster")
        if not host.ready:
            return Refusal("TargetNotReady", f"host {target} is not Ready")
        if not host.schedulable:
            return Refusal("TargetNotReady", f"host {target} is cordoned")
        if host.in_maintenance:
            return Refusal("TargetNotReady", f"host {target} is in maintenance")
        if not cluster.accepts(target):
            return Refusal("InsufficientCapacity",
                           f"host {target} has no allocatable CPU or memory")
        room = cluster.room_for(vm, target)
        if room is not None:
            return Refusal("InsufficientCapacity", room)
        return self._rule_refusal(vm, target, "Required", ignoring)

    def soft_reason(self, vm: VirtualMachineLoad, target: str, ignoring: str | None = None
                    ) -> Refusal | None:
        return self._rule_refusal(vm, target, "Preferred", ignoring)

    def _rule_refusal(self, vm: VirtualMachineLoad, target: str, enforcement: Enforcement,
                      ignoring: str | None) -> Refusal | None:
        cluster = self.cluster
        broken = self.book.breaks(vm.key, target, cluster.positions, cluster.leaving,
                                  enforcement, ignoring)
        return None if broken is None else Refusal("RuleViolation", broken)

    def best_target(self, vm: VirtualMachineLoad, keep_preferred: bool,
                    ignoring: str | None = None, among: Iterable[str] | None = None
                    ) -> tuple[str | None, str, RefusalCode | None]:
        """The fit target that leaves the lowest imbalance and why; or None, why no host fits
        and the code of that (the hosts' common one, else NoTarget)."""
        cluster = self.cluster
        source = cluster.positions[vm.key]
        best: tuple[float, str] | None = None
        refusals: list[Refusal] = []
        for target in among if among is not None else cluster.active:
            if target == source:
                continue
            refused = self.hard_reason(vm, target, ignoring)
            if refused is None and keep_preferred:
                refused = self.soft_reason(vm, target, ignoring)
            if refused is not None:
                refusals.append(refused)
                continue
            after = cluster.imbalance_after(vm, source, target)
            if best is None or (after, target) < best:
                best = (after, target)
        if best is None:
            shown = "; ".join(r.message for r in refusals[:3]) + (
                f"; and {len(refusals) - 3} more" if len(refusals) > 3 else "")
            codes = {r.code for r in refusals}
            code: RefusalCode = codes.pop() if len(codes) == 1 else "NoTarget"
            return None, f"no host can take it: {shown or 'the cluster has no other host'}", code
        return best[1], f"lowest imbalance after the move ({best[0]:.3f})", None

    def movable(self, vm: VirtualMachineLoad, respect_cooldown: bool) -> str | None:
        """Why the VM cannot be moved at all in this pass (None: it can)."""
        if not vm.migratable:
            return f"not live-migratable: {vm.not_migratable_reason or 'KubeVirt refuses it'}"
        source = self.cluster.hosts[self.cluster.positions[vm.key]]
        if not source.ready:  # its virt-handler cannot send it: HA's case, not a migration
            return f"its host {source.name} is not Ready"
        if vm.key in self.cluster.moved:
            return "waiting: it is migrating"
        if respect_cooldown and self.cluster.in_cooldown(vm):
            return "moved recently (cooldown)"
        return None

    def record(self, vm: VirtualMachineLoad, target: str, reason: MoveReason, priority: int,
               rule: str | None = None) -> None:
        source = self.cluster.positions[vm.key]
        before = self.cluster.imbalance()
        self.cluster.apply(vm, target)
        self.held.pop(vm.key, None)
        self.moves.append(Move(vm.key, source, target, reason, priority,
                               self.cluster.imbalance(), rule, before))

    def hold(self, vm: str, reason: str, rule: PlacementRule | None = None) -> None:
        """Note what keeps `vm` from a mandatory move: only the limits ("waiting: ...") are
        retriable; the first reason found is the one reported."""
        if vm not in self.held:
            shown = reason if rule is None else f"rule {rule.name}: {reason}"
            self.held[vm] = HeldVirtualMachine(vm, shown, reason.startswith("waiting"))

    def try_move(self, vm: VirtualMachineLoad, reason: MoveReason, priority: int,
                 rule: PlacementRule | None, respect_cooldown: bool,
                 among: Iterable[str] | None = None) -> bool:
        """Move `vm` to its best fit target (keeping Preferred rules when possible)."""
        why = self.movable(vm, respect_cooldown)
        if why is None:
            why = self.cluster.limit_reached(self.cluster.positions[vm.key], len(self.moves))
        if why is not None:
            self.hold(vm.key, why, rule)
            return False
        # A keep-together repair moves one member at a time to where the others go: only that
        # rule is checked by the caller; every other rule, and this one of any other kind, holds.
        ignoring = rule.name if rule is not None and rule.kind == KEEP_TOGETHER else None
        candidates = None if among is None else list(among)
        target, why, _ = self.best_target(vm, True, ignoring, candidates)
        if target is None and (rule is None or rule.enforcement == "Required"):
            target, why, _ = self.best_target(vm, False, ignoring, candidates)
        if target is None:
            self.hold(vm.key, why, rule)
            return False
        self.record(vm, target, reason, priority, rule.name if rule is not None else None)
        return True

    # -- phases --

    def evacuate(self, only_host: str | None = None) -> None:
        cluster = self.cluster
        leaving = [
            vm for key, vm in cluster.vms.items()
            if key in cluster.positions
            and cluster.hosts[cluster.positions[key]].in_maintenance
            and (only_host is None or cluster.positions[key] == only_host)
        ]
        # The largest first: they are the hardest to place while the others still have room.
        leaving.sort(key=lambda vm: (-vm.memory_request_bytes, -vm.cpu_request_millicores,
                                     vm.key))
        for vm in leaving:
            self.try_move(vm, "Maintenance", 1, None, respect_cooldown=False)

    def repair(self, enforcement: Enforcement) -> None:
        rules = [r for r in self.resolution.enabled if r.enforcement == enforcement]
        priority = 1 if enforcement == "Required" else 2
        if priority > self.settings.migration_threshold and enforcement == "Preferred":
            return
        for rule in sorted(rules, key=precedence):
            if rule.kind == KEEP_TOGETHER:
                self.repair_together(rule, priority)
                continue
            for key in violations(rule, self.cluster.positions):
                self.try_move(self.cluster.vms[key], "RuleViolation", priority, rule,
                              respect_cooldown=enforcement == "Preferred")

    def repair_together(self, rule: PlacementRule, priority: int) -> None:
        cluster = self.cluster
        members = sorted(vm for vm in set(rule.virtual_machines) if vm in cluster.positions)
        if not violations(rule, cluster.positions):
            return
        pinned = {cluster.positions[vm] for vm in members if not cluster.vms[vm].migratable}
        if len(pinned) > 1:
            for vm in members:
                self.hold(vm, "its VMs are pinned to different hosts "
                              f"({', '.join(sorted(pinned))})", rule)
            return
        anchor = next(iter(pinned)) if pinned else together_anchor(members, cluster.positions)
        assert anchor is not None
        # The host most of them share first (fewest moves), then the others by name.
        candidates = [anchor] if pinned else [anchor] + [h for h in cluster.active if h != anchor]
        for host in candidates:
            if not cluster.accepts(host) and not pinned:
                continue
            outside = [cluster.vms[key] for key in members if cluster.positions[key] != host]
            if all(self.hard_reason(load, host, rule.name) is None for load in outside):
                for load in outside:
                    self.try_move(load, "RuleViolation", priority, rule,
                                  respect_cooldown=rule.enforcement == "Preferred",
                                  among=[host])
                return
        for vm in members:
            if cluster.positions[vm] != anchor:
                self.hold(vm, "no host has room for all its VMs together", rule)

    def balance(self) -> None:
        """Greedy best moves while above the target, improved by exchanging moves, then
        replayed best-first so each move's priority and expected imbalance hold in order."""
        cluster = self.cluster
        settings = self.settings
        if settings.migration_threshold < 2:
            return
        count = len(cluster.active)
        target = target_imbalance(settings.migration_threshold, count)
        budget = min(settings.max_moves_per_pass - len(self.moves),
                     settings.max_parallel_in_cluster - cluster.migrating)
        chosen: list[tuple[VirtualMachineLoad, str, str]] = []
        while len(chosen) < budget and cluster.imbalance() > target:
            best = self.best_balance_move()
            if best is None:
                break
            vm, host = best
            chosen.append((vm, cluster.positions[vm.key], host))
            cluster.apply(vm, host)
        if not chosen:
            return
        if cluster.imbalance() > target:
            chosen = self.exchange(chosen)
        for vm, source, _target in reversed(chosen):
            cluster.unapply(vm, source)
        self.replay(chosen, target, count)

    def exchange(self, chosen: list[tuple[VirtualMachineLoad, str, str]]
                 ) -> list[tuple[VirtualMachineLoad, str, str]]:
        """Local search on the greedy's moves (applied): take back one or two of them and
        re-choose as many greedily; keep the change when the imbalance falls. Greedy alone
        misses plans where two moves must trade targets (measured against the exact oracle)."""
        cluster = self.cluster
        for _round in range(EXCHANGE_ROUNDS):
            before = cluster.imbalance()
            improved = False
            drops = [(i,) for i in range(len(chosen))] + [
                (i, j) for i in range(len(chosen)) for j in range(i + 1, len(chosen))]
            for drop in drops:
                kept = [move for index, move in enumerate(chosen) if index not in drop]
                for index in drop:
                    cluster.unapply(chosen[index][0], chosen[index][1])
                added: list[tuple[VirtualMachineLoad, str, str]] = []
                for _ in drop:
                    best = self.best_balance_move()
                    if best is None:
                        break
                    vm, host = best
                    added.append((vm, cluster.positions[vm.key], host))
                    cluster.apply(vm, host)
                if cluster.imbalance() < before - 1e-9:
                    chosen = kept + added
                    improved = True
                    break
                for vm, source, _target in reversed(added):
                    cluster.unapply(vm, source)
                for index in drop:
                    cluster.apply(chosen[index][0], chosen[index][2])
            if not improved:
                break
        return chosen

    def replay(self, chosen: list[tuple[VirtualMachineLoad, str, str]], target: float,
               count: int) -> None:
        """Record the chosen moves, each time the one that lowers the imbalance most, until the
        target is reached (a move past it would be one too many)."""
        cluster = self.cluster
        left = list(chosen)
        while left:
            current = cluster.imbalance()
            if current <= target:
                return
            index = min(range(len(left)), key=lambda i: (
                cluster.imbalance_after(left[i][0], left[i][1], left[i][2]), left[i][0].key))
            vm, _source, host = left.pop(index)
            self.record(vm, host, "Balance", balance_priority(current, count))

    def best_balance_move(self) -> tuple[VirtualMachineLoad, str] | None:
        """The fit move with the largest gain net of its cost (None: no move pays).

        The gain is the drop of F = sum over resources of (sum of squared host loads - (sum of
        loads)**2 / N), which is 2 * N * imbalance**2, computed in O(1) per candidate from the
        running sums; it is the hot loop of the planner, hence written out.
        """
        cluster = self.cluster
        settings = self.settings
        count = len(cluster.active)
        sum_cpu, sum_memory = cluster.sum_cpu, cluster.sum_memory
        mean_cpu, mean_memory = sum_cpu / count, sum_memory / count
        fractions = {host: cluster._fractions(host) for host in cluster.active}
        ranked = sorted(cluster.active, key=lambda h: (
            -(fractions[h][0] - mean_cpu + fractions[h][1] - mean_memory), h))
        width = BALANCE_CANDIDATE_HOSTS
        sources = ranked if count <= 2 * width else ranked[:width]
        targets = ranked if count <= 2 * width else ranked[-width:]
        best: tuple[float, str, str] | None = None
        best_vm: VirtualMachineLoad | None = None
        for source in sources:
            if cluster.outbound[source] >= settings.max_outbound_per_host:
                continue
            source_host = cluster.hosts[source]
            source_cpu, source_memory = fractions[source]
            for key in sorted(cluster.residents.get(source, ())):
                vm = cluster.vms[key]
                if self.movable(vm, respect_cooldown=True) is not None:
                    continue
                cost = settings.migration_cost * vm.memory_request_bytes / source_host.memory_bytes
                out_cpu = vm.cpu_millicores / source_host.cpu_millicores
                out_memory = vm.memory_bytes / source_host.memory_bytes
                source_change = (out_cpu * (out_cpu - 2 * source_cpu)
                                 + out_memory * (out_memory - 2 * source_memory))
                for target in targets:
                    if target == source:
                        continue
                    target_host = cluster.hosts[target]
                    target_cpu, target_memory = fractions[target]
                    in_cpu = vm.cpu_millicores / target_host.cpu_millicores
                    in_memory = vm.memory_bytes / target_host.memory_bytes
                    shift_cpu, shift_memory = in_cpu - out_cpu, in_memory - out_memory
                    change = (source_change
                              + in_cpu * (in_cpu + 2 * target_cpu)
                              + in_memory * (in_memory + 2 * target_memory)
                              - (shift_cpu * (2 * sum_cpu + shift_cpu)
                                 + shift_memory * (2 * sum_memory + shift_memory)) / count)
                    net = -change / 2 - cost
                    if net <= 1e-12:
                        continue
                    if best is not None and (-net, key, target) >= best:
                        continue
                    if self.hard_reason(vm, target) is not None:
                        continue
                    if self.soft_reason(vm, target) is not None:
                        continue
                    best = (-net, key, target)
                    best_vm = vm
        if best is None or best_vm is None:
            return None
        return best_vm, best[2]

    def plan(self) -> DrsPlan:
        cluster = self.cluster
        before = cluster.imbalance()
        cpu, memory = cluster.deviations()
        rule_status = statuses(self.state.rules, self.resolution, dict(cluster.positions))
        self.evacuate()
        self.repair("Required")
        self.repair("Preferred")
        self.balance()
        return DrsPlan(
            imbalance=before,
            target_imbalance=target_imbalance(self.settings.migration_threshold,
                                              len(cluster.active)),
            cpu_imbalance=cpu,
            memory_imbalance=memory,
            moves=tuple(self.moves),
            rules=rule_status,
            held=tuple(self.held[key] for key in sorted(self.held)),
        )


def plan(state: ClusterState, settings: DrsSettings = DEFAULT_SETTINGS) -> DrsPlan:
    """One DRS pass: the moves to make, in order, with the rules' status."""
    return _Planner(state, settings).plan()


def imbalance_of(state: ClusterState) -> float:
    """The cluster's imbalance where the VMs run (moves in flight counted at their targets)."""
    return _Cluster(state, DrsSettings()).imbalance()


def evacuation_moves(host: str, state: ClusterState,
                     settings: DrsSettings = DEFAULT_SETTINGS) -> Evacuation:
    """The moves that empty `host` (taken as in maintenance), within the limits; and the VMs
    that stay, each with what holds it."""
    hosts = tuple(replace(h, in_maintenance=True) if h.name == host else h for h in state.hosts)
    planner = _Planner(replace(state, hosts=hosts), settings)
    if host not in planner.cluster.hosts:
        raise ValueError(f"hostName: {host} is not a host of the cluster")
    planner.evacuate(only_host=host)
    remaining = [key for key, where in planner.cluster.positions.items() if where == host]
    held = tuple(
        planner.held.get(key) or HeldVirtualMachine(key, "waiting: it is migrating here", True)
        for key in sorted(remaining)
    )
    return Evacuation(host, tuple(planner.moves), held)


def refusal(vm: str, target: str, state: ClusterState,
            settings: DrsSettings = DEFAULT_SETTINGS) -> Refusal | None:
    """Why a vMotion of `vm` to `target` is refused, or None when it may run. The migration
    limits are not a refusal: a move over them waits (Pending)."""
    planner = _Planner(state, settings)
    refused = _vmotion_refusal(planner, vm)
    if refused is not None:
        return refused
    if planner.cluster.positions[vm] == target:
        return Refusal("TargetIsSource", f"virtual machine {vm} already runs on {target}")
    return planner.hard_reason(planner.cluster.vms[vm], target)


def choose_target(vm: str, state: ClusterState,
                  settings: DrsSettings = DEFAULT_SETTINGS) -> TargetChoice:
    """Where a vMotion without a target goes: the fit host leaving the lowest imbalance (one that
    keeps the Preferred rules when there is one), or None with the reason."""
    planner = _Planner(state, settings)
    refused = _vmotion_refusal(planner, vm)
    if refused is not None:
        return TargetChoice(None, refused.message, refused.code)
    load = planner.cluster.vms[vm]
    target, reason, code = planner.best_target(load, keep_preferred=True)
    if target is None:
        target, reason, code = planner.best_target(load, keep_preferred=False)
    return TargetChoice(target, reason, code)


def _vmotion_refusal(planner: _Planner, vm: str) -> Refusal | None:
    """Why the VM cannot be moved on request at all (before looking at targets)."""
    load = planner.cluster.vms.get(vm)
    if load is None or vm not in planner.cluster.positions:
        return Refusal("VirtualMachineNotRunning",
                       f"virtual machine {vm} does not run in the cluster")
    if not load.migratable:
        return Refusal("NotLiveMigratable", f"virtual machine {vm} is not live-migratable: " + (
            load.not_migratable_reason or "KubeVirt refuses it"))
    source = planner.cluster.hosts[planner.cluster.positions[vm]]
    if not source.ready:
        return Refusal("TargetNotReady",
                       f"virtual machine {vm} cannot migrate: its host {source.name} is not Ready")
    return None


def _gib(value: int) -> str:
    return f"{value / GIB:.1f}Gi"
