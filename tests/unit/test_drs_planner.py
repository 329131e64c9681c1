"""The DRS planner's behaviour on clusters a user would recognise: balance, limits, unfit hosts,
cooldown and stability over many passes, maintenance, vMotion target choice and refusals."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import replace

import pytest

from controllers.computecluster.drs import (
    ClusterState,
    DrsPlan,
    DrsSettings,
    Host,
    MoveInFlight,
    PlacementRule,
    VirtualMachineLoad,
    balance_priority,
    choose_target,
    decimal,
    evacuation_moves,
    imbalance_of,
    plan,
    refusal,
    target_imbalance,
)


def refusal_message(vm: str, target: str, state: ClusterState) -> str | None:
    """The words of the planner's refusal (None: the move may run)."""
    refused = refusal(vm, target, state)
    return None if refused is None else refused.message

GIB = 1024**3


def host(name: str, **changes: object) -> Host:
    return replace(Host(name, cpu_millicores=16_000, memory_bytes=64 * GIB), **changes)  # type: ignore[arg-type]


def vm(key: str, where: str, cpu: int = 2000, memory_gib: int = 4, **changes: object
       ) -> VirtualMachineLoad:
    load = VirtualMachineLoad(key, where, cpu, memory_gib * GIB, cpu, memory_gib * GIB)
    return replace(load, **changes)  # type: ignore[arg-type]


def skewed(hosts: int = 4, vms: int = 12) -> ClusterState:
    """Every VM on the first host: the cluster a fresh `vdcos up` with one host used looks like."""
    return ClusterState(
        tuple(host(f"host-{i}") for i in range(hosts)),
        tuple(vm(f"ns/vm-{i:02d}", "host-0", cpu=1000, memory_gib=4) for i in range(vms)),
    )


def completed(state: ClusterState, result: DrsPlan, now: float) -> ClusterState:
    """The cluster once every move of `result` ran (the VMs on their targets, just moved)."""
    targets = {move.vm: move.target for move in result.moves}
    return replace(state, virtual_machines=tuple(
        replace(load, host=targets[load.key], last_moved_at=now) if load.key in targets else load
        for load in state.virtual_machines
    ))


def run_passes(state: ClusterState, settings: DrsSettings, passes: int, interval: float = 60
               ) -> tuple[ClusterState, list[DrsPlan]]:
    """DRS passes every `interval` seconds, each pass's moves done before the next."""
    plans = []
    for number in range(passes):
        now = number * interval
        result = plan(state, replace(settings, now=now))
        plans.append(result)
        state = completed(state, result, now)
    return state, plans


def test_a_skewed_cluster_is_balanced_from_the_heavy_host_to_the_light_ones() -> None:
    state = skewed()
    result = plan(state)
    assert result.imbalance > result.target_imbalance
    assert result.target_imbalance == pytest.approx(0.2 / math.sqrt(4))
    assert 1 <= len(result.moves) <= 5
    assert all(move.source == "host-0" and move.target != "host-0" for move in result.moves)
    assert {move.reason for move in result.moves} == {"Balance"}
    assert all(2 <= move.priority <= 3 for move in result.moves)
    expected = [move.expected_imbalance for move in result.moves]
    assert expected == sorted(expected, reverse=True) and expected[-1] < result.imbalance


def test_the_default_threshold_reaches_the_target_within_three_passes() -> None:
    # Two outbound migrations per host: a host with all the VMs sheds two a pass.
    state = ClusterState(
        tuple(host(f"host-{i}") for i in range(4)),
        tuple(vm(f"ns/vm-{i:02d}", f"host-{i % 2}", cpu=1500, memory_gib=6) for i in range(12)),
    )
    final, plans = run_passes(state, DrsSettings(), passes=3)
    assert imbalance_of(final) <= plans[0].target_imbalance
    assert sum(len(p.moves) for p in plans) <= 6


def test_a_balanced_cluster_makes_no_move_for_a_hundred_passes() -> None:
    state = skewed(hosts=4, vms=16)
    state, _ = run_passes(state, DrsSettings(), passes=10)
    assert imbalance_of(state) <= target_imbalance(3, 4)
    # 100 more passes under the same load, well past every cooldown: not one move.
    _, plans = run_passes(state, DrsSettings(), passes=100, interval=3600)
    assert [move for p in plans for move in p.moves] == []


def test_uniform_load_with_noise_under_the_target_makes_no_move() -> None:
    rng = random.Random(7)
    state = ClusterState(
        tuple(host(f"host-{i}") for i in range(8)),
        tuple(vm(f"ns/vm-{i:03d}", f"host-{i % 8}", cpu=1000 + rng.randint(-60, 60),
                 memory_gib=4) for i in range(96)),
    )
    _, plans = run_passes(state, DrsSettings(migration_threshold=4), passes=100, interval=3600)
    assert [move for p in plans for move in p.moves] == []


def test_threshold_one_makes_mandatory_moves_only_and_five_any_gain() -> None:
    state = skewed()
    assert plan(state, DrsSettings(migration_threshold=1)).moves == ()
    gentle = plan(state, DrsSettings(migration_threshold=2))
    eager = plan(state, DrsSettings(migration_threshold=5, max_outbound_per_host=10,
                                    max_moves_per_pass=10, max_parallel_in_cluster=10))
    assert len(eager.moves) > len(gentle.moves)
    assert eager.target_imbalance == 0


def test_priority_follows_vsphere_formula() -> None:
    # 6 - ceil(imbalance / 0.1 * sqrt(N)), within 2..5
    assert balance_priority(0.05, 4) == 5
    assert balance_priority(0.15, 4) == 3
    assert balance_priority(0.9, 4) == 2
    assert balance_priority(0.0, 4) == 5


def test_no_move_to_a_host_that_is_not_ready_cordoned_or_in_maintenance() -> None:
    state = ClusterState(
        (host("host-0"), host("host-1", ready=False), host("host-2", schedulable=False),
         host("host-3", in_maintenance=True), host("host-4")),
        tuple(vm(f"ns/vm-{i}", "host-0") for i in range(6)),
    )
    result = plan(state)
    assert result.moves and {move.target for move in result.moves} == {"host-4"}


def test_no_move_beyond_the_target_hosts_requests() -> None:
    small = Host("host-1", cpu_millicores=3000, memory_bytes=64 * GIB)
    state = ClusterState(
        (host("host-0"), small),
        tuple(vm(f"ns/vm-{i}", "host-0", cpu=2000) for i in range(6)),
    )
    result = plan(state, DrsSettings(migration_threshold=5))
    assert len(result.moves) == 1  # one 2000m VM fits in 3000m, a second does not
    after = completed(state, result, 0)
    assert "host-1 lacks room" in (refusal_message("ns/vm-1", "host-1", after) or "")


def test_a_vm_that_cannot_live_migrate_stays_and_says_why() -> None:
    state = ClusterState(
        (host("host-0"), host("host-1")),
        tuple(vm(f"ns/vm-{i}", "host-0", migratable=False,
                 not_migratable_reason="disk data is ReadWriteOnce") for i in range(4)),
    )
    assert plan(state).moves == ()
    assert refusal_message("ns/vm-0", "host-1", state) == (
        "virtual machine ns/vm-0 is not live-migratable: disk data is ReadWriteOnce")
    evacuation = evacuation_moves("host-0", state)
    assert evacuation.moves == () and not evacuation.complete
    assert {held.reason for held in evacuation.held} == {
        "not live-migratable: disk data is ReadWriteOnce"}
    assert not any(held.retriable for held in evacuation.held)


def test_moves_in_flight_count_against_the_limits() -> None:
    state = replace(skewed(hosts=6, vms=24), in_flight=(
        MoveInFlight("ns/vm-00", "host-0", "host-1"),
        MoveInFlight("ns/vm-01", "host-0", "host-2"),
    ))
    # host-0 already has its 2 outbound migrations: nothing else may leave it now.
    assert plan(state, DrsSettings(migration_threshold=5)).moves == ()
    spread = ClusterState(
        tuple(host(f"host-{i}") for i in range(8)),
        tuple(vm(f"ns/vm-{i:02d}", f"host-{i % 4}", cpu=1000) for i in range(32)),
        in_flight=tuple(MoveInFlight(f"ns/vm-{i:02d}", f"host-{i}", "host-7") for i in range(3)),
    )
    result = plan(spread, DrsSettings(migration_threshold=5, max_moves_per_pass=10))
    assert len(result.moves) == 2  # 5 in the cluster at a time, 3 already run
    outbound: dict[str, int] = {}
    for move in result.moves:
        outbound[move.source] = outbound.get(move.source, 0) + 1
    assert all(count + (1 if source in ("host-0", "host-1", "host-2") else 0) <= 2
               for source, count in outbound.items())


def test_a_vm_moved_within_the_cooldown_is_not_moved_again() -> None:
    state = replace(skewed(), virtual_machines=tuple(
        replace(load, last_moved_at=1000.0) for load in skewed().virtual_machines))
    assert plan(state, DrsSettings(now=1200.0, cooldown_seconds=600)).moves == ()
    assert plan(state, DrsSettings(now=1700.0, cooldown_seconds=600)).moves != ()


def test_a_move_must_pay_for_the_memory_it_copies() -> None:
    # Moving either VM off host-0 gives the same gain: the one with less memory to copy goes.
    state = ClusterState(
        (host("host-0"), host("host-1")),
        (vm("ns/big", "host-0", cpu=0, memory_gib=20), vm("ns/small", "host-0", cpu=0,
                                                         memory_gib=1)),
    )
    moves = plan(state, DrsSettings(migration_threshold=5)).moves
    assert [(move.vm, move.target) for move in moves] == [("ns/small", "host-1")]
    # When copying costs more than any gain, nothing moves.
    assert plan(skewed(), DrsSettings(migration_cost=100.0)).moves == ()


def test_the_same_input_in_any_order_gives_the_same_plan() -> None:
    state = skewed(hosts=5, vms=20)
    shuffled = list(state.virtual_machines)
    random.Random(3).shuffle(shuffled)
    hosts = list(state.hosts)
    random.Random(4).shuffle(hosts)
    assert plan(replace(state, hosts=tuple(hosts), virtual_machines=tuple(shuffled))) == plan(state)


def test_maintenance_empties_the_host_over_passes_within_the_limits() -> None:
    state = ClusterState(
        tuple(host(f"host-{i}") for i in range(4)),
        tuple(vm(f"ns/vm-{i:02d}", f"host-{i % 4}", cpu=1000) for i in range(16)),
    )
    first = evacuation_moves("host-1", state)
    assert len(first.moves) == 2  # two outbound migrations per host at a time
    assert all(move.reason == "Maintenance" and move.priority == 1 for move in first.moves)
    assert all(held.retriable and held.reason.startswith("waiting") for held in first.held)
    maintained = replace(state, hosts=tuple(
        replace(h, in_maintenance=h.name == "host-1", schedulable=h.name != "host-1")
        for h in state.hosts))
    final, plans = run_passes(maintained, DrsSettings(), passes=3)
    assert not [load for load in final.virtual_machines if load.host == "host-1"]
    assert evacuation_moves("host-1", final).complete
    assert all(move.target != "host-1" for p in plans for move in p.moves)


def test_evacuation_of_an_unknown_host_names_it() -> None:
    with pytest.raises(ValueError, match="hostName: host-9"):
        evacuation_moves("host-9", skewed())


def test_a_vmotion_without_a_target_goes_where_the_imbalance_falls_most() -> None:
    state = ClusterState(
        (host("host-0"), host("host-1"), host("host-2")),
        (vm("ns/a", "host-0"), vm("ns/b", "host-0"), vm("ns/c", "host-1")),
    )
    choice = choose_target("ns/a", state)
    assert choice.target == "host-2"
    assert choose_target("ns/missing", state).reason == (
        "virtual machine ns/missing does not run in the cluster")


@pytest.mark.parametrize(("target", "changes", "reason"), [
    ("host-9", {}, "host host-9 is not in the cluster"),
    ("host-1", {"ready": False}, "host host-1 is not Ready"),
    ("host-1", {"schedulable": False}, "host host-1 is cordoned"),
    ("host-1", {"in_maintenance": True}, "host host-1 is in maintenance"),
    ("host-1", {"cpu_millicores": 1000},
     "host host-1 lacks room: needs 2000m CPU and 4.0Gi memory, has 1000m and 64.0Gi free"),
    ("host-0", {}, "virtual machine ns/a already runs on host-0"),
])
def test_a_vmotion_to_an_unfit_host_is_refused_with_the_reason(
        target: str, changes: dict[str, object], reason: str) -> None:
    state = ClusterState((host("host-0"), host("host-1", **changes)), (vm("ns/a", "host-0"),))
    assert refusal_message("ns/a", target, state) == reason


def test_a_vmotion_to_a_fit_host_is_not_refused_even_over_the_limits() -> None:
    state = ClusterState(
        (host("host-0"), host("host-1")),
        (vm("ns/a", "host-0"), vm("ns/b", "host-0"), vm("ns/c", "host-0")),
        in_flight=(MoveInFlight("ns/b", "host-0", "host-1"), MoveInFlight("ns/c", "host-0",
                                                                          "host-1")),
    )
    assert refusal_message("ns/a", "host-1", state) is None  # it waits (Pending), it is not refused


@pytest.mark.parametrize(("field", "value"), [
    ("migration_threshold", 0), ("migration_threshold", 6), ("max_moves_per_pass", -1),
    ("cooldown_seconds", -5.0),
])
def test_bad_settings_name_the_field(field: str, value: object) -> None:
    name = "migrationThreshold" if field == "migration_threshold" else field
    with pytest.raises(ValueError, match=name):
        DrsSettings(**{field: value})  # type: ignore[arg-type]


def test_a_vm_on_a_host_that_is_not_ready_is_not_migrated() -> None:
    state = ClusterState(
        (host("host-0", ready=False, in_maintenance=True), host("host-1")),
        (vm("ns/a", "host-0"),),
    )
    evacuation = evacuation_moves("host-0", state)
    assert evacuation.moves == ()
    assert [(h.reason, h.retriable) for h in evacuation.held] == [
        ("its host host-0 is not Ready", False)]
    assert refusal_message("ns/a", "host-1", state) == (
        "virtual machine ns/a cannot migrate: its host host-0 is not Ready")
    assert choose_target("ns/a", state).target is None


def test_each_move_says_what_its_event_says() -> None:
    state = skewed()
    first = plan(state).moves[0]
    assert first.imbalance_before == plan(state).imbalance
    assert first.summary == (
        f"from host-0 to {first.target}: balance, imbalance "
        f"{first.imbalance_before:.2f} -> {first.expected_imbalance:.2f}")
    evacuated = evacuation_moves("host-0", state).moves[0]
    assert evacuated.summary.startswith(f"from host-0 to {evacuated.target}: host-0 enters "
                                        "maintenance, imbalance ")
    assert decimal(0.08234) == "0.082"


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Host("host-0", cpu_millicores=-1, memory_bytes=1), "host host-0: cpu_millicores -1"),
    (lambda: vm("no-namespace", "host-0"), "'no-namespace' is not namespace/name"),
    (lambda: vm("ns/a", "host-0", memory_gib=-4), "ns/a: memory_bytes"),
    (lambda: PlacementRule("r", "Apart", "Required", ("ns/a",)),  # type: ignore[arg-type]
     "rule r: type 'Apart'"),
    (lambda: PlacementRule("r", "KeepTogether", "Must", ("ns/a",)),  # type: ignore[arg-type]
     "rule r: enforcement 'Must'"),
    (lambda: PlacementRule("r", "KeepTogether", "Required", ("ns/a",), ("host-0",)),
     "rule r: hosts apply only"),
])
def test_bad_input_names_what_is_wrong(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build()
