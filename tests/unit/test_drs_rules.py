"""Placement rules in the DRS planner: violations repaired (Required first), rules kept by
balance and vMotion, conflicts resolved with the loser named, infeasible repairs reported."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.computecluster.drs import (
    ClusterState,
    DrsSettings,
    Host,
    PlacementRule,
    VirtualMachineLoad,
    choose_target,
    evacuation_moves,
    plan,
    refusal,
)


def refusal_message(vm: str, target: str, state: ClusterState) -> str | None:
    """The words of the planner's refusal (None: the move may run)."""
    refused = refusal(vm, target, state)
    return None if refused is None else refused.message

GIB = 1024**3


def host(name: str, cpu: int = 16_000) -> Host:
    return Host(name, cpu_millicores=cpu, memory_bytes=64 * GIB)


def vm(key: str, where: str, cpu: int = 1000, migratable: bool = True) -> VirtualMachineLoad:
    return VirtualMachineLoad(key, where, cpu, 4 * GIB, cpu, 4 * GIB, migratable=migratable,
                              not_migratable_reason="" if migratable else "a host device")


def rule(name: str, kind: str, vms: tuple[str, ...], hosts: tuple[str, ...] = (),
         enforcement: str = "Required", order: int = 0) -> PlacementRule:
    return PlacementRule(name, kind, enforcement, vms, hosts, order)  # type: ignore[arg-type]


def cluster(*vms: VirtualMachineLoad, rules: tuple[PlacementRule, ...] = (), hosts: int = 3
            ) -> ClusterState:
    return ClusterState(tuple(host(f"host-{i}") for i in range(hosts)), vms, rules)


def test_a_required_anti_affinity_rule_added_to_colocated_vms_is_repaired_first() -> None:
    state = cluster(vm("ns/db-0", "host-0"), vm("ns/db-1", "host-0"), vm("ns/db-2", "host-0"),
                    rules=(rule("db-apart", "SeparateVirtualMachines",
                                ("ns/db-0", "ns/db-1", "ns/db-2")),))
    result = plan(state)
    before = next(r for r in result.rules if r.name == "db-apart")
    assert not before.satisfied and before.violating == ("ns/db-1", "ns/db-2")
    assert "sharing a host" in before.message
    assert [(m.vm, m.reason, m.priority, m.rule) for m in result.moves[:2]] == [
        ("ns/db-1", "RuleViolation", 1, "db-apart"), ("ns/db-2", "RuleViolation", 1, "db-apart")]
    assert len({"host-0", result.moves[0].target, result.moves[1].target}) == 3


def test_required_repairs_even_at_threshold_one_and_in_cooldown() -> None:
    state = cluster(vm("ns/a", "host-0"), replace(vm("ns/b", "host-0"), last_moved_at=10.0),
                    rules=(rule("apart", "SeparateVirtualMachines", ("ns/a", "ns/b")),))
    result = plan(state, DrsSettings(migration_threshold=1, now=20.0))
    assert [m.reason for m in result.moves] == ["RuleViolation"]


def test_keep_together_brings_the_vms_to_the_host_most_of_them_share() -> None:
    state = cluster(vm("ns/a", "host-1"), vm("ns/b", "host-1"), vm("ns/c", "host-2"),
                    rules=(rule("together", "KeepTogether", ("ns/a", "ns/b", "ns/c")),))
    result = plan(state)
    assert [(m.vm, m.target, m.reason) for m in result.moves if m.reason != "Balance"] == [
        ("ns/c", "host-1", "RuleViolation")]
    # and balance never pulls one of them away alone
    assert all(m.vm not in ("ns/a", "ns/b", "ns/c") for m in result.moves[1:])


def test_keep_together_goes_to_the_pinned_vm() -> None:
    state = cluster(vm("ns/a", "host-1"), vm("ns/b", "host-1"),
                    vm("ns/c", "host-2", migratable=False),
                    rules=(rule("together", "KeepTogether", ("ns/a", "ns/b", "ns/c")),))
    moves = [m for m in plan(state).moves if m.reason == "RuleViolation"]
    assert {(m.vm, m.target) for m in moves} == {("ns/a", "host-2"), ("ns/b", "host-2")}


def test_vm_host_rules_are_repaired_when_a_host_is_relabelled() -> None:
    state = cluster(vm("ns/a", "host-0"), vm("ns/b", "host-1"),
                    rules=(rule("gpu", "VirtualMachinesToHosts", ("ns/a",), ("host-2",)),
                           rule("not-1", "VirtualMachinesNotOnHosts", ("ns/b",), ("host-1",))))
    moves = {(m.vm, m.target) for m in plan(state).moves if m.reason == "RuleViolation"}
    assert ("ns/a", "host-2") in moves
    assert ("ns/b", "host-1") not in moves and any(vm == "ns/b" for vm, _ in moves)


def test_balance_keeps_required_and_preferred_rules() -> None:
    vms = [vm(f"ns/web-{i}", "host-0") for i in range(6)]
    state = cluster(*vms, rules=(
        rule("stay", "VirtualMachinesToHosts", ("ns/web-0", "ns/web-1"), ("host-0",)),
        rule("not-2", "VirtualMachinesNotOnHosts", ("ns/web-2", "ns/web-3"), ("host-2",),
             enforcement="Preferred"),
    ))
    result = plan(state, DrsSettings(migration_threshold=5, max_moves_per_pass=10,
                                     max_outbound_per_host=10, max_parallel_in_cluster=10))
    assert result.moves
    assert all(m.vm not in ("ns/web-0", "ns/web-1") for m in result.moves)
    assert all(m.target != "host-2" for m in result.moves if m.vm in ("ns/web-2", "ns/web-3"))


def test_a_preferred_rule_is_repaired_after_the_required_ones_and_kept_when_possible() -> None:
    state = cluster(vm("ns/a", "host-0"), vm("ns/b", "host-0"), vm("ns/c", "host-1"),
                    vm("ns/d", "host-1"),
                    rules=(rule("ab", "SeparateVirtualMachines", ("ns/a", "ns/b"),
                                enforcement="Preferred"),
                           rule("cd", "SeparateVirtualMachines", ("ns/c", "ns/d"))))
    result = plan(state)
    assert [(m.rule, m.priority) for m in result.moves[:2]] == [("cd", 1), ("ab", 2)]
    assert plan(state, DrsSettings(migration_threshold=1)).moves[-1].rule == "cd"


def test_anti_affinity_beats_an_older_affinity_and_status_names_the_winner() -> None:
    state = cluster(vm("ns/a", "host-0"), vm("ns/b", "host-0"),
                    rules=(rule("together", "KeepTogether", ("ns/a", "ns/b"), order=0),
                           rule("apart", "SeparateVirtualMachines", ("ns/a", "ns/b"), order=1)))
    result = plan(state)
    together = next(r for r in result.rules if r.name == "together")
    apart = next(r for r in result.rules if r.name == "apart")
    assert together.disabled_by == "apart" and "conflicts with rule apart" in together.message
    assert apart.disabled_by is None and not apart.satisfied
    assert [m.rule for m in result.moves if m.reason == "RuleViolation"] == ["apart"]


def test_of_two_conflicting_vm_host_rules_the_older_wins() -> None:
    state = cluster(vm("ns/a", "host-0"),
                    rules=(rule("newer", "VirtualMachinesToHosts", ("ns/a",), ("host-1",),
                                order=5),
                           rule("older", "VirtualMachinesToHosts", ("ns/a",), ("host-2",),
                                order=1)))
    result = plan(state)
    assert {r.name: r.disabled_by for r in result.rules} == {"newer": "older", "older": None}
    assert [(m.vm, m.target) for m in result.moves] == [("ns/a", "host-2")]


def test_a_required_rule_beats_a_preferred_one() -> None:
    state = cluster(vm("ns/a", "host-0"),
                    rules=(rule("soft", "VirtualMachinesToHosts", ("ns/a",), ("host-1",),
                                enforcement="Preferred", order=0),
                           rule("hard", "VirtualMachinesNotOnHosts", ("ns/a",), ("host-1",),
                                order=9)))
    assert {r.name: r.disabled_by for r in plan(state).rules} == {"soft": "hard", "hard": None}


def test_a_rule_naming_no_host_of_the_cluster_is_disabled_and_says_so() -> None:
    state = cluster(vm("ns/a", "host-0"),
                    rules=(rule("gone", "VirtualMachinesToHosts", ("ns/a",), ("host-9",)),))
    gone = plan(state).rules[0]
    assert gone.disabled_by == "gone" and "no host of the cluster" in gone.message
    assert plan(state).moves == ()


def test_a_repair_without_room_is_reported_not_forced() -> None:
    state = ClusterState(
        (host("host-0"), host("host-1", cpu=500)),
        (vm("ns/a", "host-0"), vm("ns/b", "host-0")),
        (rule("apart", "SeparateVirtualMachines", ("ns/a", "ns/b")),),
    )
    result = plan(state)
    assert result.moves == ()
    assert [(h.vm, h.retriable) for h in result.held] == [("ns/b", False)]
    assert "rule apart" in result.held[0].reason and "lacks room" in result.held[0].reason


def test_a_vmotion_that_would_break_a_required_rule_is_refused() -> None:
    state = cluster(vm("ns/a", "host-0"), vm("ns/b", "host-1"),
                    rules=(rule("apart", "SeparateVirtualMachines", ("ns/a", "ns/b")),))
    assert refusal_message("ns/a", "host-1", state) == (
        "rule apart (Required) keeps it apart from ns/b, on host-1")
    assert choose_target("ns/a", state).target == "host-2"


def test_maintenance_never_breaks_a_required_rule() -> None:
    state = cluster(vm("ns/a", "host-0"), vm("ns/b", "host-1"), hosts=2,
                    rules=(rule("apart", "SeparateVirtualMachines", ("ns/a", "ns/b")),))
    evacuation = evacuation_moves("host-0", state)
    assert evacuation.moves == () and not evacuation.complete
    assert not evacuation.held[0].retriable
    assert "rule apart (Required) keeps it apart from ns/b" in evacuation.held[0].reason


def test_maintenance_may_break_a_preferred_rule_when_it_must() -> None:
    state = cluster(vm("ns/a", "host-0"), vm("ns/b", "host-1"), hosts=2,
                    rules=(rule("apart", "SeparateVirtualMachines", ("ns/a", "ns/b"),
                                enforcement="Preferred"),))
    assert [(m.vm, m.target) for m in evacuation_moves("host-0", state).moves] == [
        ("ns/a", "host-1")]


def test_vms_kept_apart_but_bound_to_one_host_conflict() -> None:
    state = cluster(vm("ns/a", "host-0"), vm("ns/b", "host-1"),
                    rules=(rule("apart", "SeparateVirtualMachines", ("ns/a", "ns/b"), order=2),
                           rule("pinned", "VirtualMachinesToHosts", ("ns/a", "ns/b"),
                                ("host-1",), order=1)))
    assert {r.name: r.disabled_by for r in plan(state).rules} == {
        "apart": None, "pinned": "apart"}


def test_more_vms_to_keep_apart_than_hosts_is_not_a_conflict() -> None:
    state = cluster(*(vm(f"ns/v{i}", "host-0") for i in range(4)), hosts=2,
                    rules=(rule("apart", "SeparateVirtualMachines",
                                tuple(f"ns/v{i}" for i in range(4))),))
    result = plan(state)
    assert result.rules[0].disabled_by is None and not result.rules[0].satisfied
    assert [m.vm for m in result.moves if m.reason == "RuleViolation"] == ["ns/v1"]
    assert {h.vm for h in result.held} == {"ns/v2", "ns/v3"}


def test_a_required_repair_over_the_limits_waits_for_a_later_pass() -> None:
    apart = tuple(f"ns/v{i}" for i in range(4))
    state = cluster(*(vm(key, "host-0") for key in apart), hosts=5,
                    rules=(rule("apart", "SeparateVirtualMachines", apart),))
    result = plan(state)
    assert [m.vm for m in result.moves] == ["ns/v1", "ns/v2"]  # 2 outbound per host
    assert [(h.vm, h.retriable) for h in result.held] == [("ns/v3", True)]
    assert result.held[0].reason == "rule apart: waiting: 2 migrations already leave host-0"


def _resolve_naively(rules: list[PlacementRule], hosts: frozenset[str]) -> dict[str, str | None]:
    """Every check against every enabled rule: the definition resolve_conflicts must match."""
    from controllers.computecluster.drs_rules import _consistent, precedence

    enabled: list[PlacementRule] = []
    verdict: dict[str, str | None] = {}
    for candidate in sorted(rules, key=precedence):
        if _consistent([*enabled, candidate], hosts):
            enabled.append(candidate)
            verdict[candidate.name] = None
            continue
        verdict[candidate.name] = next(
            (enabled[i].name for i in range(len(enabled))
             if not _consistent([*enabled[: i + 1], candidate], hosts)), candidate.name)
    return verdict


RULE_KINDS = ("KeepTogether", "SeparateVirtualMachines", "VirtualMachinesToHosts",
              "VirtualMachinesNotOnHosts")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(RULE_KINDS), st.sampled_from(["Required", "Preferred"]),
    st.sets(st.integers(0, 7), min_size=1, max_size=4),
    st.sets(st.integers(0, 3), min_size=1, max_size=3), st.integers(0, 3)), max_size=8))
def test_conflicts_resolve_as_if_every_rule_were_checked_against_every_other(
        drawn: list[tuple[str, str, set[int], set[int], int]]) -> None:
    from controllers.computecluster.drs_rules import resolve_conflicts

    rules = [
        rule(f"r{index}", kind, tuple(f"ns/v{i}" for i in sorted(vms)),
             tuple(f"host-{h}" for h in sorted(hosts)) if kind in RULE_KINDS[2:] else (),
             enforcement, order)
        for index, (kind, enforcement, vms, hosts, order) in enumerate(drawn)
    ]
    cluster_hosts = frozenset(f"host-{h}" for h in range(4))
    resolution = resolve_conflicts(rules, cluster_hosts)
    fast = {r.name: resolution.disabled_by.get(r.name) for r in rules}
    assert fast == _resolve_naively(rules, cluster_hosts)
