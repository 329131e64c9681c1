"""Placement rules for the DRS planner: which rules a conflict disables, whether a placement
breaks a rule, and each rule's status. Pure: positions in, verdicts out.

Conflicts are resolved the way vSphere does: rules are taken by precedence (Required before
Preferred, anti-affinity before affinity, then the older first) and each is enabled only when it
can hold together with the ones enabled before it; a rule that cannot is disabled and names the
rule it lost to. Whether the hosts have room is not a conflict (that is reported as a violation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from controllers.computecluster.drs_types import (
    KEEP_TOGETHER,
    NOT_ON_HOSTS,
    SEPARATE,
    TO_HOSTS,
    PlacementRule,
    RuleStatus,
)

ANTI_AFFINITY = frozenset({SEPARATE, NOT_ON_HOSTS})


def precedence(rule: PlacementRule) -> tuple[int, int, int, str]:
    """Sort key: the first rule wins a conflict."""
    return (
        0 if rule.enforcement == "Required" else 1,
        0 if rule.kind in ANTI_AFFINITY else 1,
        rule.order,
        rule.name,
    )


@dataclass(frozen=True)
class Resolution:
    """The rules kept and, for each disabled one, the rule it lost to."""

    enabled: tuple[PlacementRule, ...]
    disabled_by: Mapping[str, str]


def _consistent(rules: Sequence[PlacementRule], cluster_hosts: frozenset[str]) -> bool:
    """Whether some placement (ignoring capacity) satisfies every rule at once."""
    allowed: dict[str, frozenset[str]] = {}
    for rule in rules:
        if rule.kind == TO_HOSTS:
            for vm in rule.virtual_machines:
                allowed[vm] = allowed.get(vm, cluster_hosts) & frozenset(rule.hosts)
        elif rule.kind == NOT_ON_HOSTS:
            for vm in rule.virtual_machines:
                allowed[vm] = allowed.get(vm, cluster_hosts) - frozenset(rule.hosts)
    if any(not hosts for hosts in allowed.values()):
        return False
    group_of = _together_groups(rule for rule in rules if rule.kind == KEEP_TOGETHER)
    group_hosts: dict[str, frozenset[str]] = {}
    for vm, root in group_of.items():
        group_hosts[root] = group_hosts.get(root, cluster_hosts) & allowed.get(vm, cluster_hosts)
    if any(not hosts for hosts in group_hosts.values()):
        return False
    for rule in rules:
        if rule.kind != SEPARATE:
            continue
        roots = [group_of[vm] for vm in rule.virtual_machines if vm in group_of]
        if len(roots) != len(set(roots)):
            return False
        # Each member (or its keep-together group) needs a host of its own among those the
        # VM-host rules leave it. More members than hosts is not a conflict between rules (the
        # planner keeps as many apart as it can), so only count hosts the rules take away.
        members = sorted({group_of.get(vm, vm) for vm in rule.virtual_machines})
        if len(members) <= len(cluster_hosts):
            options = {
                member: group_hosts[member] if member in group_hosts
                else allowed.get(member, cluster_hosts)
                for member in members
            }
            if not _distinct_hosts_exist(options):
                return False
    return True


def _distinct_hosts_exist(options: Mapping[str, frozenset[str]]) -> bool:
    """Whether every key can get a different host from its options (bipartite matching)."""
    holder: dict[str, str] = {}

    def place(member: str, seen: set[str]) -> bool:
        for host in sorted(options[member]):
            if host in seen:
                continue
            seen.add(host)
            if host not in holder or place(holder[host], seen):
                holder[host] = member
                return True
        return False

    return all(place(member, set()) for member in sorted(options))


def _together_groups(rules: Iterable[PlacementRule]) -> dict[str, str]:
    """VM -> a representative of its keep-together group (rules sharing a VM merge)."""
    parent: dict[str, str] = {}

    def root(vm: str) -> str:
        while parent[vm] != vm:
            parent[vm] = parent[parent[vm]]
            vm = parent[vm]
        return vm

    for rule in rules:
        members = sorted(rule.virtual_machines)
        for vm in members:
            parent.setdefault(vm, vm)
        for vm in members[1:]:
            a, b = root(members[0]), root(vm)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {vm: root(vm) for vm in parent}


def resolve_conflicts(rules: Sequence[PlacementRule], cluster_hosts: Iterable[str]) -> Resolution:
    """Enable rules in precedence order; a rule that cannot hold with those enabled is disabled.

    A new rule changes where its VMs (and their keep-together groups) may run, and so only the
    keep-apart rules over those groups; each check looks at that neighbourhood alone, which keeps
    hundreds of rules over thousands of VMs fast.
    """
    hosts = frozenset(cluster_hosts)
    enabled: list[PlacementRule] = []
    rank: dict[str, int] = {}
    by_vm: dict[str, list[PlacementRule]] = {}
    disabled_by: dict[str, str] = {}
    for rule in sorted(rules, key=precedence):
        related = sorted(_neighbourhood(rule, by_vm), key=lambda r: rank[r.name])
        if _consistent([*related, rule], hosts):
            rank[rule.name] = len(enabled)
            enabled.append(rule)
            for vm in set(rule.virtual_machines):
                by_vm.setdefault(vm, []).append(rule)
            continue
        # Name the first enabled rule that, with the ones before it, already rules this one out.
        for index in range(len(related)):
            if not _consistent([*related[: index + 1], rule], hosts):
                disabled_by[rule.name] = related[index].name
                break
        else:  # inconsistent alone, e.g. VirtualMachinesToHosts naming no host of the cluster
            disabled_by[rule.name] = rule.name
    return Resolution(tuple(enabled), disabled_by)


def _neighbourhood(rule: PlacementRule, by_vm: Mapping[str, list[PlacementRule]]
                   ) -> list[PlacementRule]:
    """The enabled rules that decide whether `rule` can hold with them: the keep-together groups
    of its VMs, the keep-apart rules over those, and every rule on the VMs all these name."""

    def together_closure(start: Iterable[str]) -> set[str]:
        seen = set(start)
        queue = sorted(seen)
        while queue:
            for other in by_vm.get(queue.pop(), ()):
                if other.kind == KEEP_TOGETHER:
                    for member in other.virtual_machines:
                        if member not in seen:
                            seen.add(member)
                            queue.append(member)
        return seen

    start = set(rule.virtual_machines)
    groups = together_closure(start)
    apart = {other.name: other for vm in sorted(groups) for other in by_vm.get(vm, ())
             if other.kind == SEPARATE}
    if rule.kind == SEPARATE or apart:
        members = {vm for other in apart.values() for vm in other.virtual_machines}
        groups |= together_closure(members | start)
    found: dict[str, PlacementRule] = {}
    for vm in sorted(groups):
        for other in by_vm.get(vm, ()):
            if other.kind != SEPARATE or other.name in apart:
                found[other.name] = other
    return list(found.values())


class RuleBook:
    """The enabled rules indexed by VM, to check a placement in time proportional to its rules."""

    def __init__(self, enabled: Sequence[PlacementRule]) -> None:
        self.rules = tuple(enabled)
        self._by_vm: dict[str, list[PlacementRule]] = {}
        for rule in self.rules:
            for vm in sorted(set(rule.virtual_machines)):
                self._by_vm.setdefault(vm, []).append(rule)

    def rules_of(self, vm: str) -> Sequence[PlacementRule]:
        return self._by_vm.get(vm, ())

    def breaks(
        self,
        vm: str,
        host: str,
        positions: Mapping[str, str],
        leaving: Mapping[str, frozenset[str]],
        enforcement: str,
        ignoring: str | None = None,
    ) -> str | None:
        """Why putting `vm` on `host` breaks an enabled rule of this enforcement, or None.

        `leaving` maps a host to VMs migrating off it: they are still there until the migration
        ends, so an anti-affinity rule counts them (as the kube-scheduler counts their pods).
        """
        for rule in self._by_vm.get(vm, ()):
            if rule.enforcement != enforcement or rule.name == ignoring:
                continue
            reason = _breaks_rule(rule, vm, host, positions, leaving)
            if reason is not None:
                return reason
        return None


def _breaks_rule(
    rule: PlacementRule,
    vm: str,
    host: str,
    positions: Mapping[str, str],
    leaving: Mapping[str, frozenset[str]],
) -> str | None:
    label = f"rule {rule.name} ({rule.enforcement})"
    if rule.kind == TO_HOSTS and host not in rule.hosts:
        return f"{label} keeps it on {', '.join(sorted(rule.hosts))}"
    if rule.kind == NOT_ON_HOSTS and host in rule.hosts:
        return f"{label} keeps it off {host}"
    if rule.kind == SEPARATE:
        others = leaving.get(host, frozenset())
        for other in sorted(rule.virtual_machines):
            if other != vm and (positions.get(other) == host or other in others):
                return f"{label} keeps it apart from {other}, on {host}"
    if rule.kind == KEEP_TOGETHER:
        for other in sorted(rule.virtual_machines):
            where = positions.get(other)
            if other != vm and where is not None and where != host:
                return f"{label} keeps it with {other}, on {where}"
    return None


def violations(rule: PlacementRule, positions: Mapping[str, str]) -> tuple[str, ...]:
    """The VMs that break `rule` where they run (sorted); only running VMs count."""
    running = sorted(vm for vm in set(rule.virtual_machines) if vm in positions)
    if rule.kind == TO_HOSTS:
        return tuple(vm for vm in running if positions[vm] not in rule.hosts)
    if rule.kind == NOT_ON_HOSTS:
        return tuple(vm for vm in running if positions[vm] in rule.hosts)
    if rule.kind == SEPARATE:
        seen: set[str] = set()
        extra: list[str] = []
        for vm in running:  # the first VM (by key) on a host keeps it; the others must go
            if positions[vm] in seen:
                extra.append(vm)
            seen.add(positions[vm])
        return tuple(extra)
    anchor = together_anchor(running, positions)
    return tuple(vm for vm in running if positions[vm] != anchor)


def together_anchor(members: Iterable[str], positions: Mapping[str, str]) -> str | None:
    """The host most members of a keep-together group run on (ties: the first by name)."""
    counts: dict[str, int] = {}
    for vm in members:
        if vm in positions:
            counts[positions[vm]] = counts.get(positions[vm], 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda host: (-counts[host], host))


def describe(rule: PlacementRule, violating: Sequence[str], positions: Mapping[str, str]) -> str:
    """A one-line status message a user reads in `status.rules[].message`."""
    if not violating:
        return f"{len([vm for vm in rule.virtual_machines if vm in positions])} VMs comply"
    shown = ", ".join(f"{vm} on {positions[vm]}" for vm in violating[:5])
    more = f" and {len(violating) - 5} more" if len(violating) > 5 else ""
    if rule.kind == TO_HOSTS:
        return f"outside its hosts: {shown}{more}"
    if rule.kind == NOT_ON_HOSTS:
        return f"on a forbidden host: {shown}{more}"
    if rule.kind == SEPARATE:
        return f"sharing a host with another VM of the rule: {shown}{more}"
    anchor = together_anchor(rule.virtual_machines, positions)
    return f"not with the others on {anchor}: {shown}{more}"


def statuses(
    rules: Sequence[PlacementRule],
    resolution: Resolution,
    positions: Mapping[str, str],
) -> tuple[RuleStatus, ...]:
    """Status of every rule (in the order given) where the VMs run now."""
    result = []
    for rule in rules:
        violating = violations(rule, positions)
        loser_of = resolution.disabled_by.get(rule.name)
        message = describe(rule, violating, positions)
        if loser_of == rule.name:
            message = f"disabled: no host of the cluster can satisfy it; {message}"
        elif loser_of is not None:
            message = f"disabled: conflicts with rule {loser_of}, which wins; {message}"
        result.append(
            RuleStatus(rule.name, not violating, violating, message, disabled_by=loser_of)
        )
    return tuple(result)
