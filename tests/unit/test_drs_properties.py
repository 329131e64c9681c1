"""Properties of the DRS planner on random clusters (hypothesis): whatever the input, a plan never
goes beyond a host's room, never breaks an enabled Required rule or a migration limit, never
moves to an unfit host or moves a VM it must not, and is the same for the same input."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controllers.computecluster.drs import (
    ClusterState,
    DrsPlan,
    DrsSettings,
    Host,
    MoveInFlight,
    PlacementRule,
    RuleKind,
    VirtualMachineLoad,
    evacuation_moves,
    imbalance_of,
    plan,
)

GIB = 1024**3
KINDS: tuple[RuleKind, ...] = ("KeepTogether", "SeparateVirtualMachines", "VirtualMachinesToHosts",
         "VirtualMachinesNotOnHosts")


@st.composite
def clusters(draw: st.DrawFn) -> tuple[ClusterState, DrsSettings]:
    count = draw(st.integers(2, 6))
    hosts = []
    for index in range(count):
        hosts.append(Host(
            f"host-{index}",
            cpu_millicores=draw(st.sampled_from([4000, 8000, 16000])),
            memory_bytes=draw(st.sampled_from([16, 32, 64])) * GIB,
            ready=draw(st.booleans()) or draw(st.booleans()) or draw(st.booleans()),
            schedulable=draw(st.integers(0, 5)) != 0,
            in_maintenance=draw(st.integers(0, 6)) == 0,
        ))
    reserved = {h.name: [0, 0] for h in hosts}

    def fits(host: Host, cpu: int, memory: int) -> bool:
        used = reserved[host.name]
        return used[0] + cpu <= host.cpu_millicores and used[1] + memory <= host.memory_bytes

    vms: list[VirtualMachineLoad] = []
    in_flight: list[MoveInFlight] = []
    for number in range(draw(st.integers(0, 24))):
        cpu = draw(st.sampled_from([250, 500, 1000, 2000]))
        memory = draw(st.sampled_from([1, 2, 4, 8])) * GIB
        skew = draw(st.integers(0, count - 1))
        where = next((h for h in hosts[skew:] + hosts[:skew] if fits(h, cpu, memory)), None)
        if where is None:
            continue
        reserved[where.name][0] += cpu
        reserved[where.name][1] += memory
        key = f"ns/vm-{number:02d}"
        migratable = draw(st.integers(0, 6)) != 0
        vms.append(VirtualMachineLoad(
            key, where.name,
            cpu_millicores=cpu + draw(st.sampled_from([0, 0, cpu // 2, cpu])),
            memory_bytes=memory + draw(st.sampled_from([0, 0, memory // 2])),
            cpu_request_millicores=cpu, memory_request_bytes=memory,
            migratable=migratable, not_migratable_reason="" if migratable else "RWO disk",
            last_moved_at=draw(st.none() | st.floats(0, 1000)),
        ))
        if migratable and draw(st.integers(0, 7)) == 0:
            target = next((h for h in hosts if h.name != where.name and h.accepts_virtual_machines
                           and fits(h, cpu, memory)), None)
            if target is not None:
                reserved[target.name][0] += cpu
                reserved[target.name][1] += memory
                in_flight.append(MoveInFlight(key, where.name, target.name))
    keys = [vm.key for vm in vms]
    names = [h.name for h in hosts]
    rules = []
    for index in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(KINDS))
        chosen = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=4, unique=True)
                      ) if keys else []
        rules.append(PlacementRule(
            f"rule-{index}", kind, draw(st.sampled_from(["Required", "Preferred"])),
            tuple(chosen),
            tuple(draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)))
            if kind in KINDS[2:] else (),
            order=draw(st.integers(0, 3)),
        ))
    drs = DrsSettings(
        migration_threshold=draw(st.integers(1, 5)),
        max_moves_per_pass=draw(st.integers(0, 6)),
        max_outbound_per_host=draw(st.integers(1, 3)),
        max_parallel_in_cluster=draw(st.integers(1, 6)),
        cooldown_seconds=draw(st.sampled_from([0.0, 300.0, 600.0])),
        now=1000.0,
    )
    return ClusterState(tuple(hosts), tuple(vms), tuple(rules), tuple(in_flight)), drs


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _positions(state: ClusterState) -> dict[str, str]:
    flying = {move.vm: move.target for move in state.in_flight}
    return {vm.key: flying.get(vm.key, vm.host) for vm in state.virtual_machines}


@PROPERTY
@given(clusters())
def test_moves_go_only_to_fit_hosts_with_room(case: tuple[ClusterState, DrsSettings]) -> None:
    state, drs = case
    result = plan(state, drs)
    hosts = {h.name: h for h in state.hosts}
    vms = {vm.key: vm for vm in state.virtual_machines}
    where = _positions(state)
    reserved = {name: [0, 0] for name in hosts}
    for vm in state.virtual_machines:
        for name in {vm.host, where[vm.key]}:
            reserved[name][0] += vm.cpu_request_millicores
            reserved[name][1] += vm.memory_request_bytes
    for move in result.moves:
        target = hosts[move.target]
        assert target.accepts_virtual_machines, move
        assert move.source == where[move.vm] != move.target, move
        load = vms[move.vm]
        reserved[move.target][0] += load.cpu_request_millicores
        reserved[move.target][1] += load.memory_request_bytes
        assert reserved[move.target][0] <= target.cpu_millicores, move
        assert reserved[move.target][1] <= target.memory_bytes, move
        where[move.vm] = move.target


@PROPERTY
@given(clusters())
def test_limits_and_unmovable_vms_are_kept(case: tuple[ClusterState, DrsSettings]) -> None:
    state, drs = case
    result = plan(state, drs)
    vms = {vm.key: vm for vm in state.virtual_machines}
    flying = {move.vm for move in state.in_flight}
    assert len(result.moves) <= drs.max_moves_per_pass
    assert len(result.moves) <= max(0, drs.max_parallel_in_cluster - len(state.in_flight))
    outbound: dict[str, int] = {}
    for source in [m.source for m in state.in_flight] + [m.source for m in result.moves]:
        outbound[source] = outbound.get(source, 0) + 1
    for move in result.moves:
        assert outbound[move.source] <= max(drs.max_outbound_per_host, 0), move
    moved = [move.vm for move in result.moves]
    assert len(moved) == len(set(moved))
    for move in result.moves:
        load = vms[move.vm]
        assert load.migratable and move.vm not in flying, move
        assert move.priority <= drs.migration_threshold, move
        recent = load.last_moved_at is not None and (
            drs.now - load.last_moved_at < drs.cooldown_seconds)
        if move.reason == "Balance" or move.priority == 2:
            assert not recent, move


def _enabled_required(result: DrsPlan, state: ClusterState) -> list[PlacementRule]:
    disabled = {status.name for status in result.rules if status.disabled_by is not None}
    return [r for r in state.rules if r.enforcement == "Required" and r.name not in disabled]


@PROPERTY
@given(clusters())
def test_no_move_breaks_an_enabled_required_rule(case: tuple[ClusterState, DrsSettings]) -> None:
    state, drs = case
    result = plan(state, drs)
    final = _positions(state)
    leaving: dict[str, set[str]] = {}
    for vm, source in [(m.vm, m.source) for m in state.in_flight] + [
            (m.vm, m.source) for m in result.moves]:
        leaving.setdefault(source, set()).add(vm)
    for move in result.moves:
        final[move.vm] = move.target
    for rule in _enabled_required(result, state):
        members = set(rule.virtual_machines)
        moved = [move for move in result.moves if move.vm in members]
        for move in moved:
            if rule.kind == "VirtualMachinesToHosts":
                assert move.target in rule.hosts, (rule, move)
            elif rule.kind == "VirtualMachinesNotOnHosts":
                assert move.target not in rule.hosts, (rule, move)
            elif rule.kind == "SeparateVirtualMachines":
                others = {vm for vm in members - {move.vm}
                          if final.get(vm) == move.target or vm in leaving.get(move.target, ())}
                assert not others, (rule, move, others)
            else:
                assert len({m.target for m in moved}) == 1, (rule, moved)
                running = [vm for vm in members if vm in final]
                assert move.reason != "Balance" or len(running) == 1, (rule, move)


@PROPERTY
@given(clusters(), st.randoms(use_true_random=False))
def test_the_same_input_gives_the_same_plan(case: tuple[ClusterState, DrsSettings],
                                            rng: random.Random) -> None:
    state, drs = case
    hosts, vms = list(state.hosts), list(state.virtual_machines)
    rules, in_flight = list(state.rules), list(state.in_flight)
    rng.shuffle(hosts)
    rng.shuffle(vms)
    rng.shuffle(rules)
    rng.shuffle(in_flight)
    again = ClusterState(tuple(hosts), tuple(vms), tuple(rules), tuple(in_flight))
    first, second = plan(state, drs), plan(again, drs)
    # status.rules follows the order of spec.rules; all else is the same whatever the order
    assert sorted(first.rules, key=lambda r: r.name) == sorted(second.rules, key=lambda r: r.name)
    assert replace(first, rules=()) == replace(second, rules=())


@PROPERTY
@given(clusters())
def test_balance_alone_never_raises_the_imbalance(case: tuple[ClusterState, DrsSettings]) -> None:
    state, drs = case
    state = replace(state, rules=())
    result = plan(state, drs)
    if all(move.reason == "Balance" for move in result.moves):
        assert result.expected_imbalance <= result.imbalance + 1e-12
        assert result.imbalance == imbalance_of(state)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_passes_under_unchanged_load_settle_without_a_cooldown(
        case: tuple[ClusterState, DrsSettings]) -> None:
    # Each balance move lowers the imbalance by more than it costs, so passes cannot cycle (no
    # ping-pong) even with no cooldown: they stop moving, and the imbalance never goes up.
    state, drs = case
    state = replace(state, rules=(), in_flight=())
    drs = replace(drs, cooldown_seconds=0.0, migration_threshold=max(2, drs.migration_threshold),
                  max_moves_per_pass=max(1, drs.max_moves_per_pass))
    imbalance = imbalance_of(state)
    for _ in range(200):
        result = plan(state, drs)
        if not any(move.reason == "Balance" for move in result.moves):
            break
        if all(move.reason == "Balance" for move in result.moves):
            assert result.expected_imbalance < imbalance + 1e-12
        imbalance = result.expected_imbalance
        targets = {move.vm: move.target for move in result.moves}
        state = replace(state, virtual_machines=tuple(
            replace(vm, host=targets.get(vm.key, vm.host)) for vm in state.virtual_machines))
    else:
        raise AssertionError("still moving after 200 passes")


@PROPERTY
@given(clusters(), st.integers(0, 5))
def test_an_evacuation_moves_or_accounts_for_every_vm_on_the_host(
        case: tuple[ClusterState, DrsSettings], index: int) -> None:
    state, drs = case
    host = state.hosts[index % len(state.hosts)].name
    evacuation = evacuation_moves(host, state, drs)
    on_host = {key for key, where in _positions(state).items() if where == host}
    moved = {move.vm for move in evacuation.moves}
    held = {item.vm: item for item in evacuation.held}
    assert moved | set(held) == on_host and not moved & set(held)
    assert all(move.source == host and move.target != host and move.reason == "Maintenance"
               for move in evacuation.moves)
    assert evacuation.complete == (not held)
    assert len(evacuation.moves) <= drs.max_outbound_per_host
    vms = {vm.key: vm for vm in state.virtual_machines}
    for key, item in held.items():
        if not vms[key].migratable:
            assert not item.retriable and "not live-migratable" in item.reason
        assert item.reason  # always says why
